"""Repeated blocks collapsed: a model summary's rows with runs of identical consecutive siblings
(`blocks.0` … `blocks.11`: same class, same arguments, same shapes) folded into one row,
`blocks.0–11 · Block × 12`, followed by the table of one block. Pure: summary rows in, rows out,
so the hover, the model summary and the editor's model view fold the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from shapelens.report.model import SummaryRow

DASH = "–"  # en dash: `blocks.0–11`


@dataclass
class FoldedRow:
    row: SummaryRow  # the first row of the run (or the row itself)
    count: int = 1  # how many identical siblings this row stands for
    last: str | None = None  # the name of the run's last sibling
    params: int = 0  # parameters of the whole run: exact totals, not one block's

    @property
    def name(self) -> str:
        if self.count == 1 or self.last is None:
            return self.row.name
        return f"{self.row.name}{DASH}{self.last.rsplit('.', 1)[-1]}"

    @property
    def label(self) -> str:
        """`Block × 12`, or the layer type of a single row."""
        return f"{self.row.layer} × {self.count}" if self.count > 1 else self.row.layer

    def to_json(self) -> dict:
        r = self.row
        return {"name": self.name, "layer": r.layer, "depth": r.depth, "count": self.count,
                "input_shape": r.input_shape, "output_shape": r.output_shape,
                "input_symbolic": r.input_symbolic, "output_symbolic": r.output_symbolic, "params": self.params}


def _parent_and_index(name: str) -> tuple[str, int] | None:
    parent, _, last = name.rpartition(".")
    return (parent, int(last)) if last.isdigit() else None


def _same(a: SummaryRow, b: SummaryRow) -> bool:
    return (a.signature is not None and a.signature == b.signature and a.layer == b.layer
            and a.depth == b.depth and a.input_shape == b.input_shape and a.output_shape == b.output_shape
            and a.input_symbolic == b.input_symbolic and a.output_symbolic == b.output_symbolic)


def _subtree_end(rows: list[SummaryRow], i: int) -> int:
    """The index after row i's descendants (rows come in pre-order, as named_modules lists them)."""
    j = i + 1
    while j < len(rows) and rows[j].depth > rows[i].depth:
        j += 1
    return j


def fold(rows: list[SummaryRow]) -> list[FoldedRow]:
    out: list[FoldedRow] = []
    i = 0
    while i < len(rows):
        row = rows[i]
        end = _subtree_end(rows, i)
        key = _parent_and_index(row.name)
        run_end, count, last, params = end, 1, None, row.params
        if key is not None:
            j = end
            while j < len(rows):
                nxt = _parent_and_index(rows[j].name)
                if nxt != (key[0], key[1] + count) or not _same(row, rows[j]):
                    break
                count += 1
                last = rows[j].name
                params += rows[j].params
                j = _subtree_end(rows, j)
            run_end = j
        out.append(FoldedRow(row, count, last, params))
        # One block's own rows, themselves folded (a block may repeat a layer too).
        out += fold(rows[i + 1:end])
        i = run_end if count > 1 else end
    return out
