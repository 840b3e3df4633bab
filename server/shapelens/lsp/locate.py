"""What a position in the source refers to, in terms of a report's entries. Pure `ast`.

The report has one entry per assignment target (and per forward parameter); a hover may land on
any use of it. `self.X` maps to the entry `self.X` of the same class; a plain name maps to the
nearest preceding assignment of that name in the same function (or at module level).
"""

from __future__ import annotations

import ast
import difflib
from dataclasses import dataclass

from shapelens.analysis.source import parse, span
from shapelens.report.model import ClassSummary, Finding, Range, ShapeEntry
from shapelens.report.positions import LineIndex

Pos = tuple[int, int]  # (line, UTF-16 character), 0-based
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _pos(p: dict) -> Pos:
    return p["line"], p["character"]


def contains(rng: Range, pos: Pos) -> bool:
    """End inclusive: a cursor just after a name still hovers it."""
    return _pos(rng["start"]) <= pos <= _pos(rng["end"])


def within(inner: Range, outer: Range) -> bool:
    return _pos(outer["start"]) <= _pos(inner["start"]) and _pos(inner["end"]) <= _pos(outer["end"])


@dataclass
class Source:
    """The text a report was computed on, parsed once per report."""

    text: str

    def __post_init__(self) -> None:
        self.index = LineIndex(self.text)
        try:
            self.tree: ast.Module | None = parse(self.text)
        except (SyntaxError, ValueError):
            self.tree = None

    def range(self, node: ast.AST) -> Range:
        return self.index.to_range(span(node))

    def chain(self, pos: Pos) -> list[ast.AST]:
        """The nodes containing `pos`, outermost first."""
        out: list[ast.AST] = []
        nodes: list[ast.AST] = list(self.tree.body) if self.tree else []
        while nodes:
            node = next((n for n in nodes if hasattr(n, "lineno") and contains(self.range(n), pos)), None)
            if node is None:
                break
            out.append(node)
            nodes = list(ast.iter_child_nodes(node))
        return out

    def scope_of(self, pos: Pos) -> ast.AST | None:
        """The innermost function around `pos`; None at module level (class bodies included)."""
        return next((n for n in reversed(self.chain(pos)) if isinstance(n, _SCOPES)), None)


Target = ShapeEntry | ClassSummary


def entry_at(src: Source, pos: Pos, entries: list[ShapeEntry],
             classes: list[ClassSummary]) -> tuple[Target, Range] | None:
    """The entry or class summary at `pos`, and the range of what is hovered there."""
    hit = next((e for e in entries if contains(e.range, pos)), None)
    if hit is not None:  # an assignment target or a forward parameter itself
        return hit, hit.range
    cls = next((c for c in classes if contains(c.range, pos)), None)
    if cls is not None:
        return cls, cls.range
    if src.tree is None:
        return None
    chain = src.chain(pos)
    use = _use(src, chain, pos, entries)
    if use is not None:
        return use
    # Anywhere else in `target = nn.Linear(...)`: the constructor call of a layer.
    assign = next((n for n in reversed(chain) if isinstance(n, (ast.Assign, ast.AnnAssign))), None)
    if assign is not None and assign.value is not None:
        targets = assign.targets if isinstance(assign, ast.Assign) else [assign.target]
        for t in targets:
            layer = next((e for e in entries if e.kind == "layer" and e.range == src.range(t)), None)
            if layer is not None:
                return layer, src.range(assign.value)
    return None


def _use(src: Source, chain: list[ast.AST], pos: Pos, entries: list[ShapeEntry]) -> tuple[ShapeEntry, Range] | None:
    attr = next((n for n in reversed(chain) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
                 and n.value.id == "self"), None)
    if attr is not None:
        owner = next((n for n in reversed(chain) if isinstance(n, ast.ClassDef)), None)
        if owner is None:
            return None
        area = src.range(owner)
        found = next((e for e in entries if e.name == f"self.{attr.attr}" and within(e.range, area)), None)
        return (found, src.range(attr)) if found else None
    name = chain[-1] if chain and isinstance(chain[-1], ast.Name) else None
    if name is None:
        return None
    scope = src.scope_of(pos)
    # In `h = g(h)` the argument is the previous `h`: the statement holding the use binds later.
    stmt = next((n for n in reversed(chain) if isinstance(n, ast.stmt)), None)
    binding_later = src.range(stmt) if stmt is not None else None
    before = [e for e in entries if e.name == name.id and _pos(e.range["start"]) <= pos
              and not (binding_later and within(e.range, binding_later))
              and src.scope_of(_pos(e.range["start"])) is scope]
    return (max(before, key=lambda e: _pos(e.range["start"])), src.range(name)) if before else None


def forward_tensors(src: Source, entries: list[ShapeEntry]) -> list[ShapeEntry]:
    """Tensor entries assigned inside a `forward` body (its parameters excluded)."""
    if src.tree is None:
        return []
    bodies = [(src.range(fn.body[0])["start"], src.range(fn)["end"]) for fn in ast.walk(src.tree)
              if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and fn.name == "forward"]
    return [e for e in entries if e.kind == "tensor" and e.name != "_"
            and any(within(e.range, {"start": s, "end": end}) for s, end in bodies)]


def finding_at(findings: list[Finding], pos: Pos) -> Finding | None:
    """The finding under `pos` that tells its mismatch as a chain of steps (the squiggle's hover)."""
    return next((f for f in findings if f.chain and contains(f.range, pos)), None)


def class_at(src: Source, pos: Pos, classes: list[ClassSummary]) -> ClassSummary | None:
    """The summary of the class whose definition holds `pos` (innermost first)."""
    for node in reversed(src.chain(pos)):
        if isinstance(node, ast.ClassDef):
            hit = next((c for c in classes if c.name == node.name and within(c.range, src.range(node))), None)
            if hit is not None:
                return hit
    return None


class LineMap:
    """Lines of the text a report was computed on <-> lines of the document now. Unchanged lines
    map; edited ones do not, so stale shapes are never shown on a line that changed."""

    def __init__(self, old: str, new: str) -> None:
        self.identity = old == new
        self._to_new: dict[int, int] = {}
        self._to_old: dict[int, int] = {}
        if self.identity:
            return
        matcher = difflib.SequenceMatcher(None, old.splitlines(), new.splitlines(), autojunk=False)
        for tag, i1, i2, j1, _ in matcher.get_opcodes():
            if tag == "equal":
                for k in range(i2 - i1):
                    self._to_new[i1 + k] = j1 + k
                    self._to_old[j1 + k] = i1 + k

    def to_old(self, line: int) -> int | None:
        return line if self.identity else self._to_old.get(line)

    def to_new(self, line: int) -> int | None:
        return line if self.identity else self._to_new.get(line)

    def range_to_new(self, rng: Range) -> Range | None:
        start, end = self.to_new(rng["start"]["line"]), self.to_new(rng["end"]["line"])
        if start is None or end is None:
            return None
        return {"start": {"line": start, "character": rng["start"]["character"]},
                "end": {"line": end, "character": rng["end"]["character"]}}
