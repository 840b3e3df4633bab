"""The model view's data (the `shapelens/modelView` request): one probed nn.Module as a layer
tree, repeated blocks collapsed, each row with the source line that defines it and whether a
mismatch sits there. Pure: report parts and the parsed source in, JSON-ready dicts out.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from shapelens.lsp import render
from shapelens.lsp.locate import Pos, Source, within
from shapelens.report.model import ClassSummary, Finding, Range, ShapeEntry
from shapelens.report.repeats import Node, Run, collapse, collapse_rows


@dataclass
class ViewRow:
    name: str
    depth: int
    type: str
    input: str
    output: str
    params: int
    line: int | None  # 0-based line of the statement that builds the layer, in the probed text
    mismatch: str | None  # the message of an error finding on that statement

    def key(self) -> tuple:
        return (self.type, self.input, self.output, self.params, self.mismatch is not None)


def class_ranges(src: Source) -> dict[str, Range]:
    """Every class definition by name (the first one wins, as Python's would be shadowed last)."""
    out: dict[str, Range] = {}
    for node in ast.walk(src.tree) if src.tree else ():
        if isinstance(node, ast.ClassDef):
            out.setdefault(node.name, src.range(node))
    return out


def _statement(src: Source, pos: Pos) -> Range | None:
    stmt = next((n for n in reversed(src.chain(pos)) if isinstance(n, ast.stmt)), None)
    return src.range(stmt) if stmt is not None else None


class _Lines:
    """Where each row's layer is built: `self.<attr> = ...` in the class that owns the attribute
    (the model for depth 1, the parent row's type below), else the parent's line."""

    def __init__(self, src: Source, entries: list[ShapeEntry], errors: list[Finding]) -> None:
        self.src, self.entries, self.errors = src, [e for e in entries if e.kind == "layer"], errors
        self.classes = class_ranges(src)

    def statement(self, owner: str, attr: str) -> Range | None:
        area = self.classes.get(owner)
        if area is None or attr.isdigit():
            return None
        entry = next((e for e in self.entries if e.name == f"self.{attr}" and within(e.range, area)), None)
        if entry is None:
            return None
        start = entry.range["start"]
        return _statement(self.src, (start["line"], start["character"])) or entry.range

    def mismatch(self, stmt: Range | None) -> str | None:
        if stmt is None:
            return None
        # The finding's own range only: its related locations are where inputs came from.
        hit = next((f for f in self.errors if within(f.range, stmt)), None)
        return hit.message if hit else None


def model_view(summary: ClassSummary, src: Source, entries: list[ShapeEntry], findings: list[Finding],
               device: str | None) -> dict:
    lines = _Lines(src, entries, [f for f in findings if f.severity == "error" and f.path == summary.path])
    top = next((r for r in summary.rows if r.depth == 0), None)
    rows: list[ViewRow] = []
    owners: list[tuple[int, str, int | None]] = [(0, summary.name, summary.range["start"]["line"])]
    for r in summary.rows:
        if r.depth == 0:
            continue
        while owners and owners[-1][0] >= r.depth:
            owners.pop()
        _, owner, parent_line = owners[-1] if owners else (0, summary.name, None)
        stmt = lines.statement(owner, r.name.rsplit(".", 1)[-1])
        line = stmt["start"]["line"] if stmt else parent_line
        rows.append(ViewRow(r.name, r.depth, r.layer, render.dims_text(r.input_shape, r.input_symbolic),
                            render.dims_text(r.output_shape, r.output_symbolic), r.params, line,
                            lines.mismatch(stmt)))
        owners.append((r.depth, r.layer, line))
    return {
        "name": summary.name,
        "line": summary.range["start"]["line"],
        "device": device or "meta",
        "totalParams": summary.total_params,
        "paramBytes": summary.param_bytes,
        "weights": render.nbytes(summary.param_bytes),
        "assumed": summary.assumed,
        # Constructor arguments the probe made up because nothing in the workspace builds the class.
        "assumedArgs": dict(summary.assumed_args),
        "input": render.dims_text(top.input_shape, top.input_symbolic) if top else "—",
        "output": render.dims_text(top.output_shape, top.output_symbolic) if top else "—",
        "mismatches": sum(1 for r in rows if r.mismatch),
        "rows": [_run_json(run) for run in collapse_rows(rows, ViewRow.key)],
    }


def _row_json(row: ViewRow) -> dict:
    return {"name": row.name, "type": row.type, "input": row.input, "output": row.output, "params": row.params,
            "line": row.line, "mismatch": row.mismatch}


def _run_json(run: Run[ViewRow]) -> dict:
    out = {**_row_json(run.first.row), "count": run.count, "children": [_run_json(c) for c in run.children]}
    if run.count > 1:
        out["members"] = [_member_json(m) for m in run.members]
    return out


def _member_json(node: Node[ViewRow]) -> dict:
    return {**_row_json(node.row), "count": 1,
            "children": [_run_json(c) for c in collapse(node.children, ViewRow.key)]}
