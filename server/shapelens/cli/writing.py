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
