"""Output formats of `shapelens check`: each module renders one `Outcome` to the text printed on
stdout. Formats for people (text, concise) and for machines (json, github, sarif, junit)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from shapelens.report.model import Finding, ShapeEntry


@dataclass
class Outcome:
    """What a run found, ready to render."""

    checked: list[str]  # the real paths of the files checked, in the order given
    findings: dict[str, list[Finding]]  # real path -> its findings, sorted
    shapes: dict[str, list[ShapeEntry]] = field(default_factory=dict)
    display: Callable[[str], str] = str  # real path -> the path as printed
    text_of: Callable[[str], str | None] = lambda path: None  # a file's text, for source excerpts
    colour: bool = False
    fixed: int = 0  # findings --fix removed

    def all_findings(self) -> list[Finding]:
        return [f for path in sorted(self.findings, key=self.display) for f in self.findings[path]]

    def line_of(self, path: str, line: int) -> str | None:
        text = self.text_of(path)
        if text is None:
            return None
        lines = text.splitlines()
        return lines[line] if 0 <= line < len(lines) else None


def utf16_to_index(line: str, units: int) -> int:
    """A str index from a UTF-16 column."""
    count = 0
    for i, ch in enumerate(line):
        if count >= units:
            return i
        count += 2 if ord(ch) > 0xFFFF else 1
    return len(line)


def render(fmt: str, outcome: Outcome) -> str:
    from shapelens.cli.formats import github, json_doc, junit, sarif, text

    renderers: dict[str, Callable[[Outcome], str]] = {
        "text": text.full, "concise": text.concise, "json": json_doc.render, "github": github.render,
        "sarif": sarif.render, "junit": junit.render}
    return renderers[fmt](outcome)


FORMATS = ("text", "concise", "json", "github", "sarif", "junit")
