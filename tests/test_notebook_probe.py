"""A notebook's program through the engine (the real worker): the per-class cache holds across
cell edits as it does across edits of a file."""

from __future__ import annotations

from shapelens.engine import Engine
from shapelens.notebook.program import Cell, localize, program_of

IMPORTS = "import torch\nfrom torch import nn\n%matplotlib inline"
ENCODER = """class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 32)

    def forward(self, x):
        return self.fc(x)"""
HEAD = """class Head(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.out = nn.Linear(width, 4)

    def forward(self, x):
        return self.out(x)"""
RUN = "encoder = Encoder()\nhead = Head({width})\nx = torch.zeros(2, 16)\nh = encoder(x)\ny = head(h)"


def cells(width: int, note: str = "") -> list[Cell]:
    return [Cell(IMPORTS), Cell("# Model", code=False), Cell(note + ENCODER), Cell(HEAD), Cell(RUN.format(width=width))]


def test_an_edit_of_one_cell_probes_only_what_changed(workspace, worker):
    path = str(workspace.write("nb.ipynb", "{}"))  # the file's bytes are never read by the engine
    engine = Engine(str(workspace.root), worker=worker)
    first_program = program_of(cells(16))
    first = engine.check(path, first_program.text)
    (finding,) = [localize(f, first_program) for f in first.findings]
    assert (finding.code, finding.cell, finding.range["start"]) == ("feature-mismatch", 4, {"line": 3, "character": 29})
    assert first.stats["probed"] == 2
    fixed = program_of(cells(32))  # only the last cell changed
    second = engine.check(path, fixed.text)
    # Encoder comes from the cache; Head is built with a new argument, so it is probed again
    assert second.findings == [] and second.stats["probed"] == 1 and engine.cache.hits == 1
