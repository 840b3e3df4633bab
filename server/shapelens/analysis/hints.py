"""`# shapelens:` hint comments.

    class Model(nn.Module):  # shapelens: Model(vocab_size=1000, d_model=64)
    def forward(self, x):    # shapelens: x=float[B,3,224,224], ids=long[B,T]

A hint applies to the line it ends, or, written on a line of its own, to the line below.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass, field

_HINT = re.compile(r"#\s*shapelens:\s*(?P<body>.*)$")
_INPUT = re.compile(r"(?P<name>[A-Za-z_]\w*)\s*=\s*(?P<dtype>[A-Za-z_]\w*)\s*\[(?P<dims>[^\]]*)\]")


@dataclass(frozen=True)
class InputSpec:
    dtype: str  # float, long, int, bool, half, bfloat16, ...
    dims: tuple[int | str, ...]  # ints are taken as written, names are symbolic (B, T, ...)


@dataclass
class Hint:
    line: int  # the line the hint applies to (1-based)
    text: str
    ctor: ast.Call | None = None  # `Model(vocab_size=1000)`
    inputs: dict[str, InputSpec] = field(default_factory=dict)
    error: str | None = None


def parse_hint(line: int, body: str) -> Hint:
    hint = Hint(line, body)
    stripped = body.strip()
    if re.match(r"[A-Za-z_][\w.]*\s*\(", stripped):
        try:
            node = ast.parse(stripped, mode="eval").body
        except SyntaxError as exc:
            hint.error = f"cannot parse the hint `{stripped}`: {exc.msg}"
            return hint
        if isinstance(node, ast.Call):
            hint.ctor = node
        return hint
    for m in _INPUT.finditer(stripped):
        dims: list[int | str] = []
        for d in m.group("dims").split(","):
            d = d.strip()
            if not d:
                continue
            dims.append(int(d) if d.isdigit() else d)
        hint.inputs[m.group("name")] = InputSpec(m.group("dtype"), tuple(dims))
    if not hint.inputs:
        hint.error = (
            f"cannot read the hint `{stripped}`; write `Model(arg=value, ...)` or "
            "`x=float[B,3,224,224], ids=long[B,T]`"
        )
    return hint


def collect_hints(text: str) -> dict[int, Hint]:
    """Hints by the line they apply to."""
    hints: dict[int, Hint] = {}
    lines = text.splitlines()
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return hints
    for tok in tokens:
        if tok.type != tokenize.COMMENT:
            continue
        m = _HINT.match(tok.string)
        if not m:
            continue
        line = tok.start[0]
        own_line = lines[line - 1][: tok.start[1]].strip() == ""
        target = line + 1 if own_line else line
        hints[target] = parse_hint(target, m.group("body"))
    return hints
