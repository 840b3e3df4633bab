"""Suppression comments, read the way ruff reads `# noqa`:

    x = layer(y)  # shapelens: ignore[shape-error]      this line, these codes
    x = layer(y)  # shapelens: ignore                   this line, every code
    # shapelens: ignore-file                            the whole file (ignore-file[code] for some)

A comment on any line of the statement a finding starts in counts (the constructor's line of a
finding that points into a multi-line constructor call, or the call's last line). Torch-free.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass, field

from shapelens.report.codes import CODES, UNUSED_IGNORE
from shapelens.report.model import Finding, Fix, TextEdit

DIRECTIVE = re.compile(r"#\s*shapelens:\s*ignore(?P<file>-file)?(?:\[(?P<codes>[^\]]*)\])?(?![\w\[-])")


@dataclass
class Suppression:
    line: int  # 0-based
    start: int  # str columns of the directive in its line
    end: int
    codes: tuple[str, ...] | None  # None: every code
    file_wide: bool
    own_line: bool  # the comment stands alone on its line
    used: set[str] = field(default_factory=set)

    def covers(self, code: str) -> bool:
        return self.codes is None or code in self.codes


def utf16_col(line: str, col: int) -> int:
    """The UTF-16 column of str index `col`."""
    return len(line[:col].encode("utf-16-le")) // 2


def _comments(text: str) -> list[tuple[int, int, str]]:
    """(0-based line, str column, comment text). Text that does not tokenize (a syntax error)
    falls back to a plain search, so `ignore-file` still works there."""
    try:
        return [(t.start[0] - 1, t.start[1], t.string) for t in tokenize.generate_tokens(io.StringIO(text).readline)
                if t.type == tokenize.COMMENT]
    except (tokenize.TokenError, SyntaxError):
        out = []
        for i, line in enumerate(text.splitlines()):
            at = line.find("#")
            if at >= 0 and DIRECTIVE.search(line, at):
                out.append((i, at, line[at:]))
        return out


def _statement_lines(text: str) -> dict[int, tuple[int, int]]:
    """0-based line -> (first, last) line of the innermost statement (a compound statement's
    header only) holding it."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {}
    out: dict[int, tuple[int, int]] = {}
    for node in ast.walk(tree):  # outer before inner: inner statements overwrite
        if not isinstance(node, ast.stmt):
            continue
        body = getattr(node, "body", None)
        last = (body[0].lineno - 1 if isinstance(body, list) and body and isinstance(body[0], ast.stmt)
                else node.end_lineno or node.lineno)
        for line in range(node.lineno - 1, max(last, node.lineno)):
            out[line] = (node.lineno - 1, max(last, node.lineno) - 1)
    return out


class Suppressions:
    """The suppression comments of one file, and which of them were used."""

    def __init__(self, path: str, text: str) -> None:
        self.path, self.lines = path, text.splitlines() or [""]
        self.items: list[Suppression] = []
        for line, col, comment in _comments(text):
            for m in DIRECTIVE.finditer(comment):
                codes = None if m["codes"] is None else tuple(c.strip() for c in m["codes"].split(",") if c.strip())
                own = self.lines[line][:col].strip() == "" if line < len(self.lines) else True
                self.items.append(Suppression(line, col + m.start(), col + m.end(), codes, bool(m["file"]), own))
        self._by_line = {s.line: s for s in self.items if not s.file_wide}
        self._statements = _statement_lines(text) if self._by_line else {}

    def suppresses(self, finding: Finding) -> bool:
        """Whether a comment suppresses `finding` (marking the comment used)."""
        for s in self.items:
            if s.file_wide and s.own_line and s.covers(finding.code):
                s.used.add(finding.code)
                return True
        start, end = finding.range["start"]["line"], finding.range["end"]["line"]
        lines = {start, end, *self._statements.get(start, ())}
        for line in sorted(lines):
            hit = self._by_line.get(line)
            if hit is not None and hit.covers(finding.code):
                hit.used.add(finding.code)
                return True
        return False

    def unused(self) -> list[Finding]:
        """An `unused-ignore` hint for each comment (or code in one) that suppressed nothing, with
        a fix that removes it."""
        out = []
        for s in self.items:
            text = self.lines[s.line][s.start:s.end] if s.line < len(self.lines) else ""
            unknown = [c for c in s.codes or () if c not in CODES]
            idle = [c for c in s.codes or () if c in CODES and c not in s.used]
            if s.codes is not None and not unknown and not idle and s.codes:
                continue
            if s.codes is None and s.used:
                continue
            keep = [c for c in s.codes or () if c in s.used]
            if unknown:
                message = f"unknown code{'s' * (len(unknown) > 1)} {', '.join(f'`{c}`' for c in unknown)} in `{text}`"
            elif idle and keep:
                message = f"{', '.join(f'`{c}`' for c in idle)} in `{text}` suppresses nothing here"
            else:
                message = f"unused suppression `{text}`: nothing to suppress {'in this file' if s.file_wide else 'here'}"
            out.append(Finding.of(UNUSED_IGNORE, self.path, self._range(s.line, s.start, s.end), message,
                                  fixes=[self._removal(s, keep)]))
        return out

    def _range(self, line: int, start: int, end: int) -> dict:
        text = self.lines[line] if line < len(self.lines) else ""
        return {"start": {"line": line, "character": utf16_col(text, start)},
                "end": {"line": line, "character": utf16_col(text, end)}}

    def _removal(self, s: Suppression, keep: list[str]) -> Fix:
        line = self.lines[s.line] if s.line < len(self.lines) else ""
        if keep:
            new = f"# shapelens: ignore{'-file' if s.file_wide else ''}[{', '.join(keep)}]"
            return Fix(f"Keep only {', '.join(keep)}", [TextEdit(self._range(s.line, s.start, s.end), new)])
        start = s.start
        while start > 0 and line[start - 1] in " \t":
            start -= 1
        if start > 0 and line[start - 1] == "#" and line[start:s.start].strip() == "":
            start -= 1  # `# noqa  # shapelens: ignore` -> `# noqa`: only the directive goes
        rest = line[s.end:].lstrip()
        if s.own_line and not rest:
            rng = {"start": {"line": s.line, "character": 0}, "end": {"line": s.line + 1, "character": 0}}
            return Fix("Remove the unused suppression", [TextEdit(rng, "")])
        return Fix("Remove the unused suppression", [TextEdit(self._range(s.line, start, s.end), "")])


def ignore_edit(line: str, code: str) -> tuple[int, int, str] | None:
    """The edit (str columns start, end, new text) that adds `code` to the line's suppression
    comment, or appends one; None when the line already suppresses every code."""
    at = _comment_start(line)
    m = DIRECTIVE.search(line, at) if at is not None else None
    if m is not None and not m["file"]:
        if m["codes"] is None:
            return None
        codes = [c.strip() for c in m["codes"].split(",") if c.strip()]
        if code in codes:
            return None
        return m.start(), m.end(), f"# shapelens: ignore[{', '.join([*codes, code])}]"
    end = len(line.rstrip())
    return end, len(line), f"  # shapelens: ignore[{code}]"


def _comment_start(line: str) -> int | None:
    """Where the line's comment starts (a `#` outside a string), by tokenizing the line alone."""
    try:
        for tok in tokenize.generate_tokens(io.StringIO(line + "\n").readline):
            if tok.type == tokenize.COMMENT:
                return tok.start[1]
    except (tokenize.TokenError, SyntaxError):
        at = line.find("#")
        return at if at >= 0 else None
    return None
