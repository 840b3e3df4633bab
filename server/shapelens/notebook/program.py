"""A notebook probed as one program: its code cells in order, one after the other, each cell's
lines kept as they are (so a column in a cell is the same column in the program) except IPython
syntax, which Python would not parse: `%magic` and `!shell` lines (also `x = !ls`), `obj?` help
and a `%%cell magic` cell become blank lines (of `%%time`, `%%timeit`, `%%capture` and `%%prun`
cells only the first line: IPython runs their body as Python). Markdown and raw cells are not part of it.

The line map goes both ways: program line -> (cell index, line in the cell), and back. Findings
and shapes of the program are moved into their cells with `localize`."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from shapelens.report.model import ChainStep, Finding, Fix, Range, Related, ShapeEntry, TextEdit

_LINE_MAGIC = re.compile(r"\s*(?:[%!]|[\w.]+\s*=\s*[%!])")
_HELP = re.compile(r"\s*(?:\?{1,2}[\w.%]+|[\w.%()\[\]]+\?{1,2})\s*$")
_BREAK = re.compile(r"\r\n|\r")
# Cell magics whose body IPython runs as Python in the notebook's namespace; any other (%%bash,
# %%writefile, %%html, ...) makes the cell something else.
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun"})


@dataclass(frozen=True)
class Cell:
    source: str
    code: bool = True  # a Python code cell; markdown, raw and other languages' cells are skipped


def cell_lines(source: str) -> list[str]:
    """A cell's lines as an editor numbers them: a trailing newline starts one more (empty) line."""
    return _BREAK.sub("\n", source).split("\n")


def blank_ipython(lines: list[str]) -> list[str]:
    """The lines with IPython syntax blanked. An indented magic becomes `pass` at its indent, so a
    block holding only a magic still parses."""
    if lines and lines[0].lstrip().startswith("%%"):
        name = lines[0].lstrip()[2:].split(maxsplit=1)[0] if lines[0].strip() != "%%" else ""
        if name not in PYTHON_CELL_MAGICS:
            return [""] * len(lines)
        return ["", *blank_ipython(lines[1:])]  # the body is Python that IPython runs
    out, continued = [], False
    for line in lines:
        if continued or _LINE_MAGIC.match(line) or _HELP.match(line):
            indent = line[: len(line) - len(line.lstrip())]
            out.append(indent + "pass" if indent and not continued else "")
            continued = line.rstrip().endswith("\\")
        else:
            out.append(line)
    return out


@dataclass
class Program:
    cells: list[Cell]
    text: str
    starts: list[int | None]  # each cell's first program line (None: not in the program)
    counts: list[int]  # each cell's number of lines in the program
    _code: list[int] = field(default_factory=list)  # indices of the cells in the program, in order

    def __post_init__(self) -> None:
        self._code = [i for i, s in enumerate(self.starts) if s is not None]

    def cell_at(self, line: int) -> tuple[int, int] | None:
        """(cell index, line in the cell) of a program line."""
        firsts = [self.starts[i] or 0 for i in self._code]
        k = bisect.bisect_right(firsts, line) - 1
        if k < 0:
            return None
        cell = self._code[k]
        inside = line - firsts[k]
        return (cell, inside) if inside < self.counts[cell] else None

    def program_line(self, cell: int, line: int) -> int | None:
        start = self.starts[cell] if 0 <= cell < len(self.starts) else None
        return start + line if start is not None and 0 <= line < self.counts[cell] else None

    def to_cell(self, rng: Range) -> tuple[int, Range] | None:
        """The cell a program range lies in and the range inside it; a range running past its
        cell's end is cut there."""
        found = self.cell_at(rng["start"]["line"])
        if found is None:
            return None
        cell, line = found
        first = self.starts[cell] or 0
        end = dict(rng["end"])
        if end["line"] - first >= self.counts[cell]:
            last = self.counts[cell] - 1
            end = {"line": first + last, "character": len(cell_lines(self.cells[cell].source)[last])}
        return cell, {"start": {"line": line, "character": rng["start"]["character"]},
                      "end": {"line": end["line"] - first, "character": end["character"]}}

    def to_program(self, cell: int, rng: Range) -> Range | None:
        start = self.program_line(cell, rng["start"]["line"])
        end = self.program_line(cell, rng["end"]["line"])
        if start is None or end is None:
            return None
        return {"start": {"line": start, "character": rng["start"]["character"]},
                "end": {"line": end, "character": rng["end"]["character"]}}

    def class_cells(self, ranges: dict[str, Range]) -> dict[str, tuple[int, Range]]:
        """Program ranges by name (classes) moved into their cells."""
        out = {}
        for name, rng in ranges.items():
            found = self.to_cell(rng)
            if found is not None:
                out[name] = found
        return out


def program_of(cells: list[Cell]) -> Program:
    lines: list[str] = []
    starts: list[int | None] = []
    counts: list[int] = []
    for cell in cells:
        if not cell.code:
            starts.append(None)
            counts.append(0)
            continue
        own = blank_ipython(cell_lines(cell.source))
        starts.append(len(lines))
        counts.append(len(own))
        lines += own
    return Program(cells, "\n".join(lines) + "\n" if lines else "", starts, counts)


# -- findings and shapes into cells -------------------------------------------------------------
Name = Callable[[int], str] | None  # cell index -> the path its items get (LSP: the cell's URI)


class _Mover:
    """Moves the items of `path` (the notebook) into cells: each range made cell-relative, with
    the cell as a 1-based number (`cell`) or, given `name`, as the item's path."""

    def __init__(self, program: Program, path: str, name: Name) -> None:
        self.program, self.path, self.name = program, path, name

    def place(self, path: str | None, rng: Range) -> tuple[str | None, int | None, Range] | None:
        if path not in (None, self.path):
            return path, None, rng
        found = self.program.to_cell(rng)
        if found is None:
            return None
        cell, inside = found
        return (self.name(cell), None, inside) if self.name else (path, cell + 1, inside)

    def fix(self, fix: Fix, owner: str) -> Fix | None:
        """None when the fix's edits do not all land in one cell (half a fix is worse than none)."""
        placed = [self.place(fix.path or owner, e.range) for e in fix.edits]
        if any(p is None for p in placed) or len({(p[0], p[1]) for p in placed if p}) > 1:
            return None
        edits = [TextEdit(p[2], e.new_text, cell=p[1]) for p, e in zip(placed, fix.edits) if p]
        path = placed[0][0] if placed and placed[0] else fix.path
        return Fix(fix.title, edits, path if self.name or fix.path else None)


def localize(finding: Finding, program: Program, name: Name = None) -> Finding:
    """`finding` (of the notebook's program) with its ranges in cells. A finding outside every
    cell stays at the first code cell's start."""
    mover = _Mover(program, finding.path, name)
    own = mover.place(finding.path, finding.range) or mover.place(finding.path, _first_line(program))
    path, cell, rng = own or (finding.path, None, finding.range)
    related = []
    for r in finding.related:
        placed = mover.place(r.path or finding.path, r.range)
        if placed is not None:
            related.append(Related(placed[2], r.message, placed[0] if name or r.path else None, cell=placed[1]))
    chain = []
    for step in finding.chain:
        placed = mover.place(step.path or finding.path, step.range)
        if placed is not None:
            chain.append(ChainStep(step.label, step.shape, placed[2], placed[0] if name or step.path else None,
                                   cell=placed[1]))
    fixes = [moved for fix in finding.fixes if (moved := mover.fix(fix, finding.path)) is not None]
    return replace(finding, path=path or finding.path, range=rng, cell=cell, related=related, chain=chain,
                   fixes=fixes)


def localize_shape(entry: ShapeEntry, program: Program, name: Name = None) -> ShapeEntry | None:
    placed = _Mover(program, entry.path, name).place(entry.path, entry.range)
    if placed is None:
        return None
    return replace(entry, path=placed[0] or entry.path, range=placed[2], cell=placed[1])


def _first_line(program: Program) -> Range:
    line = next((s for s in program.starts if s is not None), 0)
    return {"start": {"line": line, "character": 0}, "end": {"line": line, "character": 0}}
