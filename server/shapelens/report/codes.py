"""The stable diagnostic codes: one entry each, with its severity and what it means.

Code strings are written only here: everything else names the constants below, so a mistyped
code is a NameError at import, and `severity` refuses a code it does not know instead of
guessing one."""

from __future__ import annotations

from dataclasses import dataclass

DOCS_URL = "https://github.com/shapelens/shapelens/blob/main/docs/codes.md"

FEATURE_MISMATCH = "feature-mismatch"
EMBED_DIM_MISMATCH = "embed-dim-mismatch"
INDEX_OUT_OF_RANGE = "index-out-of-range"
INDEX_DTYPE = "index-dtype"
INVALID_LAYER_CONFIG = "invalid-layer-config"
SHAPE_ERROR = "shape-error"
PROBE_INCOMPLETE = "probe-incomplete"
SYNTAX_ERROR = "syntax-error"
INVALID_NOTEBOOK = "invalid-notebook"
UNUSED_IGNORE = "unused-ignore"


class UnknownCode(KeyError):
    """A diagnostic code that is not in CODES: a bug in shapelens, never a user's error."""


@dataclass(frozen=True)
class Code:
    name: str
    severity: str  # error | warning | information | hint
    summary: str

    @property
    def url(self) -> str:
        return f"{DOCS_URL}#{self.name}"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


CODES: dict[str, Code] = {
    c.name: c
    for c in [
        Code(FEATURE_MISMATCH, "error", "a layer's declared input width differs from the width it receives"),
        Code(EMBED_DIM_MISMATCH, "error", "MultiheadAttention / transformer embed_dim or d_model differs from its input"),
        Code(INDEX_OUT_OF_RANGE, "error", "an index into nn.Embedding is outside 0..num_embeddings-1"),
        Code(INDEX_DTYPE, "error", "nn.Embedding receives a non-integer index tensor"),
        Code(INVALID_LAYER_CONFIG, "error", "constructor arguments that torch rejects"),
        Code(SHAPE_ERROR, "error", "any other tensor operation that fails on the probed shapes"),
        Code(PROBE_INCOMPLETE, "information", "something the probe could not decide; the message says what hint helps"),
        Code(SYNTAX_ERROR, "error", "the file does not parse (or does not decode), so it was not probed"),
        Code(INVALID_NOTEBOOK, "error", "a .ipynb file that is not valid JSON or not an nbformat 4 notebook"),
        Code(UNUSED_IGNORE, "hint", "a `# shapelens: ignore` comment that suppresses nothing"),
    ]
}


def code(name: str) -> Code:
    try:
        return CODES[name]
    except KeyError:
        raise UnknownCode(name) from None


def severity(name: str) -> str:
    return code(name).severity


def is_error(name: str) -> bool:
    return code(name).is_error
