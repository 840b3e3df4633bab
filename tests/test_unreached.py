"""No silent gap: a layer of a probed class that the probe never reached (a branch of
`__init__` its arguments do not take, a layer forward never calls on the made-up inputs) is
named in a note on the class, with the hint that reaches it. Real worker processes."""

from __future__ import annotations

from helpers import by_code

BRANCHY = """\
import torch
from torch import nn


class Embedder(nn.Module):
    def __init__(self, width=32, kind="positional", classes=None):
        super().__init__()
        self.proj = nn.Linear(width, width)
        if kind == "learned":
            self.table = nn.Embedding(100, width)
        if classes is not None:
            self.classes = nn.Embedding(classes, width)
        self.unused = nn.Linear(width, 2 * width)

    def forward(self, x):
        return self.proj(x)


model = Embedder()
"""


def test_layers_the_probe_never_reached_are_named_on_the_class(workspace):
    workspace.write("embed.py", BRANCHY)
    report = workspace.check("embed.py")
    lines = BRANCHY.splitlines()
    notes = [f for f in by_code(report, "probe-incomplete") if "do not build" in f.message]
    assert len(notes) == 1, [f.message for f in report.findings]
    note = notes[0]
    assert note.range["start"]["line"] == lines.index("class Embedder(nn.Module):")
    table = lines.index("            self.table = nn.Embedding(100, width)") + 1
    classes = lines.index("            self.classes = nn.Embedding(classes, width)") + 1
    unused = lines.index("        self.unused = nn.Linear(width, 2 * width)") + 1
    assert f"line {table} (`nn.Embedding`), line {classes} (`nn.Embedding`)" in note.message
    assert f"forward never ran the layer at line {unused}" in note.message
    assert "`# shapelens: Embedder(...)`" in note.message
    proj = lines.index("        self.proj = nn.Linear(width, width)") + 1
    assert f"line {proj}" not in note.message


def test_a_class_whose_layers_all_ran_gets_no_such_note(workspace):
    text = BRANCHY.replace('kind="positional"', 'kind="learned"').replace("classes=None", "classes=10") \
        .replace("        self.unused = nn.Linear(width, 2 * width)\n", "")
    workspace.write("embed.py", text)
    report = workspace.check("embed.py")
    assert [f for f in by_code(report, "probe-incomplete") if "do not build" in f.message] == []
