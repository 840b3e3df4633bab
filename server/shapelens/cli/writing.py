"""`--fix` and `--diff`: the fixed bytes of a file, checked before anything is written, and an
atomic write that keeps the file's mode."""

from __future__ import annotations

import ast
import difflib
import os
import stat
import tempfile
from dataclasses import dataclass

from shapelens.cli.sources import SourceFile, apply_to_original, python_lines
from shapelens.notebook.ipynb import NotebookError, read_notebook, with_sources
from shapelens.report.fixes import apply_edits
from shapelens.report.model import TextEdit


@dataclass
class FixOutcome:
    src: SourceFile
    new_text: str | None = None  # None: nothing to write
    data: bytes | None = None
    refused: str | None = None  # why the fix was not written


def fix_file(src: SourceFile, edits: list[tuple[dict, str]]) -> FixOutcome:
    """The fixed file, or why it is refused: a file that did not decode, a fix its encoding
    cannot hold, or a result Python would not parse."""
    if src.problem:
        return FixOutcome(src, refused=src.problem)
    new = apply_to_original(src, edits)
    if new == src.original:
        return FixOutcome(src)
    try:
        data = src.encode(new)
    except UnicodeEncodeError as exc:
        return FixOutcome(src, refused=f"the fix writes {exc.object[exc.start:exc.end]!r}, which {src.encoding} "
                                       "cannot encode")
    try:
        ast.parse(data)  # bytes: Python applies the coding line and the BOM itself
    except (SyntaxError, ValueError) as exc:
        return FixOutcome(src, refused=f"the fixed file would not parse ({getattr(exc, 'msg', exc)}); left as it was")
    return FixOutcome(src, new, data)


def fix_notebook(src: SourceFile, edits: list[TextEdit]) -> FixOutcome:
    """The notebook with the edits applied to their cells' `source` and nothing else changed; refused
    when an edit is outside every cell or the result would not read back or parse."""
    nb = src.notebook
    if src.problem or nb is None:
        return FixOutcome(src, refused=src.problem or "not a notebook")
    by_cell: dict[int, list[TextEdit]] = {}
    for e in edits:
        if e.cell is None or not 0 < e.cell <= len(nb.cells):
            return FixOutcome(src, refused="a fix lies outside the notebook's cells")
        by_cell.setdefault(e.cell - 1, []).append(e)
    sources = {i: apply_edits(nb.cells[i].source, cell_edits) for i, cell_edits in by_cell.items()}
    new = with_sources(nb, sources)
    if new == src.original:
        return FixOutcome(src)
    expected = [sources.get(i, c.source) for i, c in enumerate(nb.cells)]
    try:
        fixed = read_notebook(new)
        ast.parse(fixed.program.text)
    except (NotebookError, SyntaxError, ValueError) as exc:
        return FixOutcome(src, refused=f"the fixed notebook would not read back ({exc}); left as it was")
    if [c.source for c in fixed.cells] != expected:
        return FixOutcome(src, refused="the fixed notebook would not hold the fixed cells; left as it was")
    return FixOutcome(src, new, src.encode(new))


def write_atomically(path: str, data: bytes) -> None:
    """Write beside the file, then rename over it: a reader (or a crash) sees the old file or the
    new one, never half of one. A symlink is kept and its target written; the mode is kept."""
    real = os.path.realpath(path)
    mode = stat.S_IMODE(os.stat(real).st_mode)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(real), prefix=f".{os.path.basename(real)}.", suffix=".shapelens")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, real)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def unified_diff(display: str, old: str, new: str) -> str:
    """`diff -u` of the original and fixed text (line endings as in the file, so it applies with
    `patch`/`git apply`)."""
    out = []
    for line in difflib.unified_diff(python_lines(old), python_lines(new),
                                     fromfile=f"a/{display}", tofile=f"b/{display}"):
        out.append(line if line.endswith(("\n", "\r")) else line + "\n\\ No newline at end of file\n")
    return "".join(out)
