"""Notebook documents (LSP 3.17) as the session sees them: a notebook is probed as one program
(shapelens.notebook.program), and each of its cells is a text document of its own. A `Snapshot`
is the notebook at one version: its program and which cell is which document. A `View` is what
a feature needs to answer for one document, a file or a cell: the analysis it belongs to, the
text now in that analysis's coordinates, and where the document's lines sit in that text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

from lsprotocol import types

from shapelens.lsp.units import Units
from shapelens.notebook.program import Cell, Program, program_of
from shapelens.report.model import Range

if TYPE_CHECKING:
    from shapelens.lsp.language_server import Analysis

NOTEBOOK_TYPE = "jupyter-notebook"
SYNC = types.NotebookDocumentSyncOptions(
    notebook_selector=[types.NotebookDocumentFilterWithCells(
        notebook=NOTEBOOK_TYPE, cells=[types.NotebookCellLanguage(language="python")])],
    save=True)


@dataclass(frozen=True)
class Snapshot:
    uri: str  # the notebook's
    version: int
    cell_uris: list[str]  # by cell index, as the client spells them
    cell_versions: list[int | None]
    program: Program

    def cell_index(self, uri: str) -> int | None:
        return self.cell_uris.index(uri) if uri in self.cell_uris else None

    def cell_version(self, uri: str) -> int | None:
        index = self.cell_index(uri)
        return self.cell_versions[index] if index is not None else None

    def cell_text(self, uri: str) -> str:
        index = self.cell_index(uri)
        return self.program.cells[index].source if index is not None else ""


def snapshot(notebook: types.NotebookDocument, documents: dict) -> Snapshot:
    """The notebook as the workspace holds it now (`documents`: the workspace's text documents,
    keyed by unquoted URI, cells included)."""
    cells, uris, versions = [], [], []
    for cell in notebook.cells:
        doc = documents.get(unquote(cell.document))
        code = cell.kind == types.NotebookCellKind.Code and doc is not None and doc.language_id in (None, "", "python")
        cells.append(Cell(doc.source if doc is not None else "", code=code))
        uris.append(cell.document)
        versions.append(doc.version if doc is not None else None)
    return Snapshot(notebook.uri, notebook.version, uris, versions, program_of(cells))


@dataclass
class View:
    analysis: Analysis | None  # None where a feature needs only the text (class ranges)
    now: str  # the file, or the notebook's program, as it is now
    units: Units  # of the requested document's text
    first: int = 0  # the document's first line in `now`
    count: int | None = None  # its number of lines in `now` (None: all of them)

    def line_in(self, line: int) -> int:
        return line + self.first

    def line_out(self, line: int | None) -> int | None:
        if line is None:
            return None
        inside = line - self.first
        return inside if inside >= 0 and (self.count is None or inside < self.count) else None

    def position_in(self, position: types.Position) -> dict:
        pos = self.units.position_in(position)
        return {"line": self.line_in(pos["line"]), "character": pos["character"]}

    def range_out(self, rng: Range) -> types.Range | None:
        start, end = self.line_out(rng["start"]["line"]), self.line_out(rng["end"]["line"])
        if start is None or end is None:
            return None
        return self.units.range_out({"start": {"line": start, "character": rng["start"]["character"]},
                                     "end": {"line": end, "character": rng["end"]["character"]}})

    def position_out(self, pos: dict) -> types.Position | None:
        line = self.line_out(pos["line"])
        return self.units.position_out({"line": line, "character": pos["character"]}) if line is not None else None
