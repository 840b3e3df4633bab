"""Reading a .ipynb file and writing changed cells back. Plain `json` plus a small scanner that
remembers where each cell's `source` sits in the file, so a fix rewrites only the strings it
changes: indentation, key order, escaping, outputs and metadata stay byte for byte as they were.

Only nbformat 4 is read (what Jupyter has written since 2015); anything else, and any file that
is not JSON, is a `NotebookError` with the place to look."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from json.decoder import scanstring  # type: ignore[attr-defined]  # the C scanner, not in the stubs

from shapelens.notebook.program import Cell, Program, program_of

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_LITERALS = ("true", "false", "null", "NaN", "Infinity", "-Infinity")  # `json` reads the last three too
Span = tuple[int, int]  # [start, end) offsets into the file's text


class NotebookError(ValueError):
    def __init__(self, message: str, text: str = "", offset: int = 0) -> None:
        super().__init__(message)
        self.line = text.count("\n", 0, offset)
        self.column = offset - (text.rfind("\n", 0, offset) + 1)


@dataclass
class SourceSpans:
    """Where one cell's `source` is: the whole value, and each string when it is a list."""

    value: Span
    items: list[Span] | None  # None: `source` is one string
    strings: list[str] | None = None  # the list's strings


@dataclass
class Notebook:
    text: str  # the file's JSON text
    cells: list[Cell]
    spans: list[SourceSpans]  # by cell
    program: Program


def read_notebook(text: str) -> Notebook:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookError(f"not a notebook: invalid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
                            text, exc.pos) from None
    except RecursionError:
        raise NotebookError("not a notebook: the JSON is nested too deeply") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        old = isinstance(data, dict) and "worksheets" in data
        raise NotebookError("not a notebook: nbformat 3 is not read; convert it with `jupyter nbconvert --to notebook`"
                            if old else "not a notebook: the JSON has no `cells` list (nbformat 4)")
    if data.get("nbformat") != 4:
        raise NotebookError(f"not a notebook: nbformat {data.get('nbformat')!r} is not read (only nbformat 4)")
    scanner = _Scanner(text)
    scanner.value(0, ())
    python = _language(data.get("metadata")) in (None, "python")
    cells, spans = [], []
    for i, cell in enumerate(data["cells"]):
        source = cell.get("source") if isinstance(cell, dict) else None
        where = scanner.spans.get(("cells", i), (0, 0))[0]
        if not isinstance(cell, dict) or not isinstance(cell.get("cell_type"), str):
            raise NotebookError(f"not a notebook: cell {i + 1} has no `cell_type`", text, where)
        if isinstance(source, list) and all(isinstance(s, str) for s in source):
            joined = "".join(source)
            items: list[Span] | None = [scanner.spans[("cells", i, "source", j)] for j in range(len(source))]
        elif isinstance(source, str):
            joined, items = source, None
        else:
            raise NotebookError(f"not a notebook: cell {i + 1}'s `source` is not a string or a list of strings",
                                text, where)
        cells.append(Cell(joined, code=python and cell["cell_type"] == "code"))
        spans.append(SourceSpans(scanner.spans[("cells", i, "source")], items,
                                 list(source) if items is not None else None))
    return Notebook(text, cells, spans, program_of(cells))


def _language(metadata) -> str | None:
    if not isinstance(metadata, dict):
        return None
    for key, field in (("language_info", "name"), ("kernelspec", "language")):
        value = metadata.get(key)
        if isinstance(value, dict) and isinstance(value.get(field), str):
            return value[field].lower()
    return None


def with_sources(nb: Notebook, sources: dict[int, str]) -> str:
    """The file's text with the given cells' sources replaced (cell index -> new source)."""
    ascii_only = nb.text.isascii() and "\\u" in nb.text
    pieces: list[tuple[Span, str]] = []
    for i, new in sources.items():
        if new == nb.cells[i].source:
            continue
        spans = nb.spans[i]
        if spans.items is None:
            pieces.append((spans.value, json.dumps(new, ensure_ascii=ascii_only)))
            continue
        old_lines, new_lines = _lines(nb.cells[i].source), _lines(new)
        if spans.strings == old_lines and len(old_lines) == len(new_lines):
            pieces += [(span, json.dumps(line, ensure_ascii=ascii_only))
                       for span, old, line in zip(spans.items, old_lines, new_lines) if old != line]
        else:
            pieces.append((spans.value, _list_text(nb.text, spans, new_lines, ascii_only)))
    out = nb.text
    for (start, end), replacement in sorted(pieces, reverse=True):
        out = out[:start] + replacement + out[end:]
    return out


def _lines(source: str) -> list[str]:
    """A source as Jupyter stores it: one string per line, each keeping its newline."""
    return source.splitlines(keepends=True) if source else []


def _list_text(text: str, spans: SourceSpans, lines: list[str], ascii_only: bool) -> str:
    """A new `source` list laid out as the old one was (the whitespace around its items)."""
    start, end = spans.value
    items = spans.items or []
    if items:
        lead = text[start + 1:items[0][0]]
        between = text[items[0][1]:items[1][0]] if len(items) > 1 else "," + lead
        tail = text[items[-1][1]:end - 1]
    else:
        line_start = text.rfind("\n", 0, start) + 1
        indent = text[line_start:line_start + len(text[line_start:]) - len(text[line_start:].lstrip(" "))]
        lead, between, tail = "\n" + indent + " ", ",\n" + indent + " ", "\n" + indent
    if not lines:
        return "[]"
    return "[" + lead + between.join(json.dumps(line, ensure_ascii=ascii_only) for line in lines) + tail + "]"


class _Scanner:
    """A JSON scanner (the file already parsed with `json`) that records the spans of the cells
    and of their `source` values."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.spans: dict[tuple, Span] = {}

    def _ws(self, i: int) -> int:
        m = _WS.match(self.text, i)
        return m.end() if m else i

    def value(self, i: int, path: tuple) -> int:
        """Scan the value starting at (or after whitespace from) `i`; returns its end."""
        text = self.text
        i = self._ws(i)
        ch = text[i]
        if ch == "{":
            end = self._object(i, path)
        elif ch == "[":
            end = self._array(i, path)
        elif ch == '"':
            end = scanstring(text, i + 1)[1]
        elif (m := _NUMBER.match(text, i)) is not None:
            end = m.end()
        else:
            word = next(w for w in _LITERALS if text.startswith(w, i))
            end = i + len(word)
        if _wanted(path):
            self.spans[path] = (i, end)
        return end

    def _object(self, i: int, path: tuple) -> int:
        i = self._ws(i + 1)
        if self.text[i] == "}":
            return i + 1
        while True:
            key, i = scanstring(self.text, self._ws(i) + 1)
            i = self._ws(i) + 1  # the colon
            i = self._ws(self.value(i, (*path, key)))
            if self.text[i] == "}":
                return i + 1
            i += 1  # the comma

    def _array(self, i: int, path: tuple) -> int:
        i = self._ws(i + 1)
        if self.text[i] == "]":
            return i + 1
        n = 0
        while True:
            i = self._ws(self.value(i, (*path, n)))
            n += 1
            if self.text[i] == "]":
                return i + 1
            i += 1


def _wanted(path: tuple) -> bool:
    """cells[i], cells[i].source, cells[i].source[j]: the only spans a rewrite needs."""
    return len(path) >= 2 and path[0] == "cells" and (len(path) == 2 or path[2] == "source")
