"""The formats for people. `concise`: one line per finding (path:line:col: severity[code]
message), as flake8 and `ruff --output-format concise` print. `text` (the default): the same line,
then the source line with the range underlined, related locations and the fix, as ruff prints.
Both end with a one-line summary; `--statistics` prints a count per code instead."""

from __future__ import annotations

import os
from collections import Counter

from shapelens.cli.formats import Outcome, location, utf16_to_index
from shapelens.report.codes import CODES
from shapelens.report.model import Finding

_STYLE = {"error": "1;31", "warning": "1;33", "information": "1;34", "hint": "1;36", "path": "1", "code": "2",
          "caret": "1;31", "pipe": "1;34", "ok": "1;32"}


def use_colour(stream) -> bool:
    """NO_COLOR (non-empty) turns colour off; FORCE_COLOR (non-empty, not 0) turns it on off a
    terminal; otherwise colour only on a terminal (https://no-color.org, https://force-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    force = os.environ.get("FORCE_COLOR")
    if force and force != "0":
        return True
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


class _Paint:
    def __init__(self, on: bool) -> None:
        self.on = on

    def __call__(self, style: str, text: str) -> str:
        return f"\x1b[{_STYLE[style]}m{text}\x1b[0m" if self.on and text else text


def headline(outcome: Outcome, f: Finding, paint: _Paint) -> str:
    where = paint("path", location(outcome, f.path, f.range, f.cell) + ":")
    # one line a finding: the message's further lines (the flow that led there) are the text
    # format's `= flow:` lines
    first = (f.message.splitlines() or [""])[0]
    return f"{where} {paint(f.severity, f.severity)}{paint('code', f'[{f.code}]')} {first}"


def concise(outcome: Outcome) -> str:
    paint = _Paint(outcome.colour)
    lines = [headline(outcome, f, paint) for f in outcome.all_findings()]
    return "\n".join([*lines, summary(outcome, paint)]) + "\n"


def full(outcome: Outcome) -> str:
    paint = _Paint(outcome.colour)
    blocks = ["\n".join([headline(outcome, f, paint), *excerpt(outcome, f, paint)]) + "\n"
              for f in outcome.all_findings()]
    return "\n".join([*blocks, summary(outcome, paint)]) + "\n"


def excerpt(outcome: Outcome, f: Finding, paint: _Paint) -> list[str]:
    start, end = f.range["start"], f.range["end"]
    text = outcome.line_of(f.path, start["line"], f.cell)
    out = []
    number = str(start["line"] + 1)
    gutter = " " * len(number)
    if text is not None:
        a = utf16_to_index(text, start["character"])
        b = utf16_to_index(text, end["character"]) if end["line"] == start["line"] else len(text.rstrip())
        pad = "".join(ch if ch == "\t" else " " for ch in text[:a])
        out += [f"{gutter} {paint('pipe', '|')}", f"{paint('pipe', number + ' |')} {text.rstrip()}",
                f"{gutter} {paint('pipe', '|')} {pad}{paint('caret', '^' * max(b - a, 1))}"]
    for r in f.related:
        where = location(outcome, r.path or f.path, r.range, r.cell)
        out.append(f"{gutter} = note: {r.message} ({where})")
    if f.fixes:
        out.append(f"{gutter} = fix: {f.fixes[0].title}")
    out += [f"{gutter} = flow: {line}" for line in f.message.splitlines()[1:]]
    return out


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def summary(outcome: Outcome, paint: _Paint) -> str:
    counts = Counter(f.severity for f in outcome.all_findings())
    fixable = sum(1 for f in outcome.all_findings() if f.fixes)
    parts = [_plural(n, name) for name, n in (("error", counts["error"]), ("warning", counts["warning"]),
                                              ("note", counts["information"] + counts["hint"])) if n]
    files = _plural(len(outcome.checked), "file")
    fixed = f"Fixed {_plural(outcome.fixed, 'issue')}. " if outcome.fixed else ""
    if parts:
        extra = f" ({fixable} fixable with --fix)" if fixable else ""
        return f"{fixed}Found {', '.join(parts)} in {files}{extra}."
    return fixed + paint("ok", f"All checks passed: {files}, no shape mismatches.")


def statistics(outcome: Outcome) -> list[dict]:
    counts = Counter(f.code for f in outcome.all_findings())
    fixable = Counter(f.code for f in outcome.all_findings() if f.fixes)
    return [{"code": code, "count": n, "fixable": fixable[code],
             "summary": CODES[code].summary if code in CODES else ""}
            for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def statistics_table(outcome: Outcome) -> str:
    rows = statistics(outcome)
    if not rows:
        return summary(outcome, _Paint(outcome.colour)) + "\n"
    width = max(len(str(r["count"])) for r in rows)
    code_width = max(len(r["code"]) for r in rows)
    lines = [f"{r['count']:>{width}}  {r['code']:<{code_width}}  {'[*]' if r['fixable'] else '   '} {r['summary']}"
             for r in rows]
    return "\n".join(lines) + "\n"
