"""Repeated blocks collapsed: a model summary's rows with runs of identical consecutive siblings
(`blocks.0` … `blocks.11`: same class, same arguments, same shapes) folded into one row,
`blocks.0–11 · Block × 12`, followed by the table of one block. Pure: summary rows in, rows out,
so the hover, the model summary and the editor's model view fold the same way.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from shapelens.report.model import SummaryRow
from shapelens.report.repeats import Run, collapse_rows

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


def _key(row: SummaryRow) -> Hashable:
    """What two rows must share to repeat: how they were built (the signature) and what they did.
    Children are compared by the same key (`repeats.signature`), so a block repeats only when every
    layer inside it does too."""
    return (row.signature, row.layer, row.params, _tuple(row.input_shape), _tuple(row.output_shape),
            _tuple(row.input_symbolic), _tuple(row.output_symbolic))


def _tuple(xs: list | None) -> tuple | None:
    return None if xs is None else tuple(xs)


def _flatten(runs: list[Run[SummaryRow]]) -> list[FoldedRow]:
    out: list[FoldedRow] = []
    for run in runs:
        last = run.members[-1].row.name if run.count > 1 else None
        out.append(FoldedRow(run.first.row, run.count, last, sum(m.row.params for m in run.members)))
        out += _flatten(run.children)  # one block's own rows, themselves folded
    return out


def fold(rows: list[SummaryRow]) -> list[FoldedRow]:
    """The same runs as the editor's model view (`report.repeats`), as flat pre-order rows."""
    return _flatten(collapse_rows(rows, _key))
