"""Applying fixes to text: shared by `shapelens check --fix` and the tests."""

from __future__ import annotations

from shapelens.report.model import Finding, TextEdit
from shapelens.report.positions import LineIndex


def apply_edits(text: str, edits: list[TextEdit]) -> str:
    """Apply non-overlapping edits (overlapping ones after the first are dropped)."""
    index = LineIndex(text)
    spans = sorted(((index.offset(e.range["start"]), index.offset(e.range["end"]), e.new_text) for e in edits),
                   key=lambda s: (s[0], s[1]))
    kept: list[tuple[int, int, str]] = []
    for start, end, new in spans:
        if kept and start < kept[-1][1]:
            continue
        kept.append((start, end, new))
    for start, end, new in reversed(kept):
        text = text[:start] + new + text[end:]
    return text


def edits_by_path(findings: list[Finding]) -> dict[str, list[TextEdit]]:
    """The first (preferred) fix of each finding, grouped by the file it edits."""
    out: dict[str, list[TextEdit]] = {}
    for f in findings:
        if f.fixes:
            fix = f.fixes[0]
            out.setdefault(fix.path or f.path, []).extend(fix.edits)
    return out
