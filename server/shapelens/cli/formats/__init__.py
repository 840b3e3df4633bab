"""Output formats of `shapelens check`: each module renders one `Outcome` to the text printed on
stdout. Formats for people (text, concise) and for machines (json, github, sarif, junit)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from shapelens.report.model import Finding, Range, ShapeEntry


@dataclass
class Outcome:
    """What a run found, ready to render."""

    checked: list[str]  # the real paths of the files checked, in the order given
    findings: dict[str, list[Finding]]  # real path -> its findings, sorted
    shapes: dict[str, list[ShapeEntry]] = field(default_factory=dict)
    display: Callable[[str], str] = str  # real path -> the path as printed
    text_of: Callable[[str], str | None] = lambda path: None  # a file's text, for source excerpts
    cells_of: Callable[[str], list[str] | None] = lambda path: None  # a notebook's cell sources
    colour: bool = False
    fixed: int = 0  # findings --fix removed

    def all_findings(self) -> list[Finding]:
        return [f for path in sorted(self.findings, key=self.display) for f in self.findings[path]]

    def line_of(self, path: str, line: int, cell: int | None = None) -> str | None:
        """A line of a file, or of a notebook's cell (1-based, as findings number them)."""
        cells = self.cells_of(path) if cell is not None else None
        text = cells[cell - 1] if cells and cell is not None and 0 < cell <= len(cells) else self.text_of(path)
        if text is None:
            return None
        lines = text.splitlines()
        return lines[line] if 0 <= line < len(lines) else None


def location(outcome: Outcome, path: str, rng: Range, cell: int | None = None) -> str:
    """`path:line:col`, 1-based; in a notebook `path:cell N:line:col`, the line in its cell (as
    ruff prints notebook locations)."""
    s = rng["start"]
    return f"{outcome.display(path)}:{f'cell {cell}:' if cell is not None else ''}{s['line'] + 1}:{s['character'] + 1}"


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
