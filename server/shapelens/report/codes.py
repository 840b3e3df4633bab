"""The stable diagnostic codes: one entry each, with its severity and what it means."""

from __future__ import annotations

from dataclasses import dataclass

DOCS_URL = "https://github.com/shapelens/shapelens#diagnostic-codes"


@dataclass(frozen=True)
class Code:
    name: str
    severity: str  # error | warning | information | hint
    summary: str

    @property
    def url(self) -> str:
        return f"{DOCS_URL.split('#')[0]}#{self.name}"


CODES: dict[str, Code] = {
    c.name: c
    for c in [
        Code("feature-mismatch", "error", "a layer's declared input width differs from the width it receives"),
        Code("embed-dim-mismatch", "error", "MultiheadAttention / transformer embed_dim or d_model differs from its input"),
        Code("index-out-of-range", "error", "an index into nn.Embedding is outside 0..num_embeddings-1"),
        Code("index-dtype", "error", "nn.Embedding receives a non-integer index tensor"),
        Code("invalid-layer-config", "error", "constructor arguments that torch rejects"),
        Code("shape-error", "error", "any other tensor operation that fails on the probed shapes"),
        Code("probe-incomplete", "information", "something the probe could not decide; the message says what hint helps"),
        Code("syntax-error", "error", "the file does not parse (or does not decode), so it was not probed"),
        Code("unused-ignore", "hint", "a `# shapelens: ignore` comment that suppresses nothing"),
    ]
}


def severity(code: str) -> str:
    return CODES[code].severity if code in CODES else "error"
