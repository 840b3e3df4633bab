"""A checked file's bytes and how to write them back: the declared (PEP 263) encoding, a UTF-8
BOM, each line's own ending. The engine gets the text as Python reads it (universal newlines);
a fix is applied to the original text, so nothing else in the file changes."""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass

from shapelens.notebook.ipynb import Notebook, NotebookError, read_notebook
from shapelens.report.codes import INVALID_NOTEBOOK, SYNTAX_ERROR

NOTEBOOK_SUFFIX = ".ipynb"
_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass
class SourceFile:
    path: str  # as given (or the --stdin-filename)
    raw: bytes
    encoding: str = "utf-8"  # "utf-8-sig" when the file starts with a BOM
    original: str = ""  # decoded, line endings as in the file
    problem: str | None = None  # why it does not decode: the file is then never written
    problem_at: tuple[int, int] = (0, 0)  # 0-based line and column of the bad byte
    problem_code: str = SYNTAX_ERROR
    notebook: Notebook | None = None  # a .ipynb file: its cells, and the program they make

    @property
    def text(self) -> str:
        """What the engine probes: universal newlines, as `tokenize.open` would give; for a
        notebook, its code cells as one program."""
        if self.notebook is not None:
            return self.notebook.program.text
        return _BREAK.sub("\n", self.original)

    @property
    def newline(self) -> str:
        """The file's most common line ending (for lines a fix adds)."""
        endings = _BREAK.findall(self.original)
        return max(("\n", "\r\n", "\r"), key=endings.count) if endings else "\n"

    def encode(self, text: str) -> bytes:
        return text.encode(self.encoding)


def decode(path: str, raw: bytes) -> SourceFile:
    """Decode as Python would; a file that does not decode comes back with `problem` set and
    its text decoded with replacement characters (so positions still make sense)."""
    if path.endswith(NOTEBOOK_SUFFIX):
        return decode_notebook(path, raw)
    src = SourceFile(path, raw)
    try:
        src.encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
        src.original = raw.decode(src.encoding)
        return src
    except SyntaxError as exc:  # an unknown encoding, or a BOM with a cookie that contradicts it
        src.problem = f"cannot decode the file: {exc.msg}"
    except LookupError as exc:
        src.problem = f"cannot decode the file: {exc}"
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start)
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1)
        src.problem_at = (line, col)
        name = "utf-8" if src.encoding == "utf-8-sig" else src.encoding
        src.problem = (f"cannot decode the file as {name}: byte 0x{raw[exc.start]:02x} at line {line + 1}, "
                       f"column {col + 1} (declare the encoding with a `# -*- coding: ... -*-` line)")
    src.original = raw.decode("utf-8", "replace")
    return src


def decode_notebook(path: str, raw: bytes) -> SourceFile:
    """A .ipynb file (UTF-8 JSON); one that does not read as nbformat 4 has `problem` set."""
    src = SourceFile(path, raw, encoding="utf-8-sig" if raw.startswith(b"\xef\xbb\xbf") else "utf-8")
    try:
        src.original = raw.decode(src.encoding)
        src.notebook = read_notebook(src.original)
    except UnicodeDecodeError as exc:
        src.original = raw.decode("utf-8", "replace")
        src.problem, src.problem_code = f"not a notebook: byte 0x{raw[exc.start]:02x} is not UTF-8", INVALID_NOTEBOOK
    except NotebookError as exc:
        src.problem, src.problem_code, src.problem_at = str(exc), INVALID_NOTEBOOK, (exc.line, exc.column)
    return src


def read_file(path: str) -> SourceFile:
    with open(path, "rb") as f:
        return decode(path, f.read())


def apply_to_original(src: SourceFile, edits: list[tuple[dict, str]]) -> str:
    """Apply edits (LSP ranges into `src.text`, new text) to the original text. Line breaks are
    not counted by LSP columns, so a position means the same in both texts; a line break an edit
    inserts takes the ending of the line it lands on."""
    # str.splitlines also breaks at \x0c, \x1c.. and \u2028; Python's lines break only at \r\n, \r, \n.
    lines = python_lines(src.original) or [""]
    starts, total = [], 0
    for line in lines:
        starts.append(total)
        total += len(line)

    def offset(pos: dict) -> int:
        if pos["line"] >= len(lines):
            return total
        line = lines[pos["line"]]
        body = line.rstrip("\r\n")
        units = 0
        for i, ch in enumerate(body):
            if units >= pos["character"]:
                return starts[pos["line"]] + i
            units += 2 if ord(ch) > 0xFFFF else 1
        return starts[pos["line"]] + len(body)

    def ending(pos: dict) -> str:
        if pos["line"] < len(lines):
            m = _BREAK.search(lines[pos["line"]])
            if m:
                return m.group()
        return src.newline

    spans = sorted(((offset(r["start"]), offset(r["end"]), new.replace("\n", ending(r["start"])))
                    for r, new in edits), key=lambda s: (s[0], s[1]))
    kept: list[tuple[int, int, str]] = []
    for start, end, new in spans:
        if kept and start < kept[-1][1]:
            continue  # overlapping edits after the first are dropped, as in the editor's fix-all
        kept.append((start, end, new))
    out = src.original
    for start, end, new in reversed(kept):
        out = out[:start] + new + out[end:]
    return out


def python_lines(text: str) -> list[str]:
    out, at = [], 0
    for m in _BREAK.finditer(text):
        out.append(text[at:m.end()])
        at = m.end()
    if at < len(text):
        out.append(text[at:])
    return out
