"""Shapes that explain themselves (real worker, real torch): assumed sizes are symbols with their
formulas and never collide with the file's numbers, a mismatch is told as the chain of steps
that led to it, repeated blocks fold into one row, a half-typed name gives one note."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from conftest import SAMPLES
from helpers import shape_of
from shapelens.cli.check import merge
from shapelens.cli.formats import Outcome
from shapelens.cli.formats.json_doc import document as json_document
from shapelens.lsp import render
from shapelens.report.collapse import fold
from shapelens.report.model import SummaryRow

DATA = Path(__file__).resolve().parent / "lsp" / "data"


def check(engine, path: Path):
    return engine.check(str(path), path.read_text())


# -- symbolic dims ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cnn(engine):
    return check(engine, DATA / "cifar_cnn.py")


def test_cnn_channels_stay_numbers_and_spatial_dims_carry_their_formula(cnn):
    # conv1 has 32 output channels and the assumed side is 32 too: the two never mix.
    conv1 = shape_of(cnn, "self.conv1", "layer")
    assert (conv1.input_symbolic, conv1.output_symbolic) == (["B", "3", "H", "W"], ["B", "32", "H", "W"])
    assert shape_of(cnn, "self.pool", "layer").output_symbolic == ["B", "32", "H/2", "W/2"]
    assert shape_of(cnn, "self.fc1", "layer").input_symbolic == ["B", "64 * (H/4) * (W/4)"]
    assert shape_of(cnn, "self.fc2", "layer").output_symbolic == ["B", "10"]
    steps = [s.symbolic for s in cnn.shapes if s.kind == "tensor" and s.name == "x"]
    assert steps == ["[B, 3, H, W]", "[B, 32, H/2, W/2]", "[B, 64, H/4, W/4]", "[B, 64 * (H/4) * (W/4)]", "[B, 128]"]
    flat = [s for s in cnn.shapes if s.name == "x"][3]
    assert flat.shape == [17, 4096] and flat.symbols == {"B": 17, "H": 32, "W": 32}


def test_cnn_hover_json_and_summary_say_the_same(cnn):
    fc1 = shape_of(cnn, "self.fc1", "layer")
    (summary,) = cnn.classes
    row = next(r for r in summary.rows if r.name == "fc1")
    assert row.input_symbolic == fc1.input_symbolic and row.output_symbolic == fc1.output_symbolic
    hover = render.layer_hover(fc1)
    table = render.class_summary(summary)
    assert "input `[B, 64 * (H/4) * (W/4)]` → output `[B, 128]`" in hover
    assert "| fc1 | Linear | [B, 64 * (H/4) * (W/4)] | [B, 128] | 524,416 |" in table
    assert "| conv1 | Conv2d | [B, 3, H, W] | [B, 32, H, W] | 896 |" in table
    assert "probed as B=17, H=32, W=32" in hover
    findings, shapes = merge([cnn])
    document = json_document(Outcome(list(findings), findings, shapes))
    for schema in (Path(__file__).parent / "data" / "check-json.schema.json",
                   Path(__file__).resolve().parents[2] / "shared" / "contract" / "check-json.schema.json"):
        if schema.exists():  # the project's stricter copy, and the shared contract where present
            jsonschema.Draft202012Validator(json.loads(schema.read_text())).validate(document)
    (doc,) = document["files"]
    layer = next(s for s in doc["shapes"] if s["name"] == "self.fc1")
    assert layer["input_symbolic"] == ["B", "64 * (H/4) * (W/4)"] and layer["output_symbolic"] == ["B", "128"]
    tensor = [s for s in doc["shapes"] if s["name"] == "x"][1]
    assert tensor["symbolic"] == "[B, 32, H/2, W/2]" and tensor["shape"] == [17, 32, 16, 16]


def test_sizes_from_the_file_have_no_symbols(engine):
    report = check(engine, SAMPLES / "seed000_ex2_mismatched_embedding.py")
    assert shape_of(report, "projected").symbolic is None
    assert shape_of(report, "self.projection", "layer").output_symbolic is None


def test_transformer_dims_follow_split_view_transpose_and_arange(engine):
    report = check(engine, DATA / "gpt_blocks.py")
    assert shape_of(report, "qkv").symbolic == "[B, T, 192]"
    assert shape_of(report, "q", nth=1).symbolic == "[B, 4, T, 16]"
    assert shape_of(report, "y", nth=1).symbolic == "[B, T, 64]"
    assert shape_of(report, "pos").symbolic == "[T]"  # torch.arange(t) over the assumed length


def test_formulas_through_slicing_padding_and_concatenation(workspace):
    workspace.write("m.py", (
        "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 8, 3)\n"
        "        self.embed = nn.Embedding(50, 16)\n\n"
        "    def forward(self, x, ids):  # shapelens: x=float[B,3,H,W], ids=long[B,T]\n"
        "        a = self.conv(x)\n"
        "        b = F.pad(a, (1, 1, 1, 1))\n"
        "        e = self.embed(ids)\n"
        "        c = torch.cat([e, e[:, :1]], dim=1)\n"
        "        d = e[:, 1:]\n"
        "        return a, b, c, d\n"))
    report = workspace.check("m.py")
    assert shape_of(report, "a").symbolic == "[B, 8, H - 2, W - 2]"
    assert shape_of(report, "b").symbolic == "[B, 8, H, W]"
    assert shape_of(report, "c").symbolic == "[B, T + 1, 16]"
    assert shape_of(report, "d").symbolic == "[B, T - 1, 16]"


# -- the mismatch as a chain ------------------------------------------------------------------------
def test_seed000_ex2_mismatch_is_told_from_the_input_to_the_layer(engine):
    path = SAMPLES / "seed000_ex2_mismatched_embedding.py"
    (finding,) = check(engine, path).findings
    first, chain = finding.message.splitlines()
    assert first == ("self.linear expects in_features=128 input features but receives `projected` [1, 10, 256] "
                     "with 256 features")
    assert chain == ("input_ids [1, 10] → self.embedding → [1, 10, 128] → self.projection → [1, 10, 256] → "
                     "self.linear expects 128")
    lines = path.read_text().splitlines()
    steps = [(s.label, lines[s.range["start"]["line"]].strip(), s.shape) for s in finding.chain]
    assert steps == [
        ("input_ids", "input_ids = torch.randint(0, vocab_size, (1, 10)) # Batch of 1, sequence length 10", "[1, 10]"),
        ("self.embedding", "embedded = self.embedding(input_ids)", "[1, 10, 128]"),
        ("self.projection", "projected = self.projection(embedded)", "[1, 10, 256]"),
        ("self.linear", "self.linear = nn.Linear(embed_dim, 256) # Using the incorrect embed_dim", "expects 128")]
    # One related location per step (after the producer's argument), on the step's line.
    related = [(lines[r.range["start"]["line"]].strip().split(" =")[0], r.message) for r in finding.related[1:]]
    assert related == [("input_ids", "input_ids [1, 10]"), ("embedded", "self.embedding → [1, 10, 128]"),
                       ("projected", "self.projection → [1, 10, 256]")]


def test_the_chain_goes_through_view_permute_flatten_and_cat(engine):
    (finding,) = check(engine, DATA / "chain_ops.py").findings
    assert [(s.label, s.shape) for s in finding.chain] == [
        ("x", "[4, 12]"), ("self.inp", "[4, 24]"), ("view", "[4, 6, 4]"), ("permute", "[4, 4, 6]"),
        ("flatten", "[4, 24]"), ("cat", "[4, 48]"), ("self.out", "expects 24")]
    assert [s.range["start"]["line"] + 1 for s in finding.chain] == [23, 14, 15, 16, 17, 18, 11]


# -- repeated blocks ---------------------------------------------------------------------------------
def test_twelve_identical_blocks_fold_into_one_row_with_exact_totals(engine):
    report = check(engine, DATA / "gpt_blocks.py")
    gpt = next(c for c in report.classes if c.name == "TinyGPT")
    rows = fold([r for r in gpt.rows if r.depth > 0])
    blocks = [r for r in rows if r.name.startswith("blocks.") and r.row.depth == 2]
    assert [(r.name, r.label, r.count) for r in blocks] == [("blocks.0–11", "Block × 12", 12)]
    one = next(r for r in gpt.rows if r.name == "blocks.0")
    assert blocks[0].params == 12 * one.params == next(r for r in gpt.rows if r.name == "blocks").params
    assert sum(r.params for r in rows if r.row.depth == 1) == gpt.total_params
    table = render.class_summary(gpt)
    assert table.count("| blocks.0–11 · Block × 12 | Block | [B, T, 64] | [B, T, 64] | 599,808 |") == 1
    assert "| blocks.0.qkv | Linear | [B, T, 64] | [B, T, 192] | 12,480 |" in table
    assert "blocks.1." not in table and "blocks.11." not in table


def _row(name, depth, layer="Block", sig="s", params=10, shape=(1, 4)):
    return SummaryRow(name, layer, depth, list(shape), list(shape), params, signature=sig)


def test_fold_keeps_different_neighbours_apart():
    rows = [_row("blocks", 1, "ModuleList", None, 40), _row("blocks.0", 2), _row("blocks.0.fc", 3, "Linear", None),
            _row("blocks.1", 2), _row("blocks.1.fc", 3, "Linear", None), _row("blocks.2", 2, sig="other"),
            _row("blocks.2.fc", 3, "Linear", None), _row("blocks.3", 2, shape=(1, 8)), _row("head", 1, "Linear", None)]
    folded = [(f.name, f.count, f.params) for f in fold(rows)]
    assert folded == [("blocks", 1, 40), ("blocks.0–1", 2, 20), ("blocks.0.fc", 1, 10), ("blocks.2", 1, 10),
                      ("blocks.2.fc", 1, 10), ("blocks.3", 1, 10), ("head", 1, 10)]


# -- while typing --------------------------------------------------------------------------------------
@pytest.mark.parametrize("body, where", [
    ("        return self.fc(xx)\n", (11, "xx")),  # in forward: the probe cannot even guess the input
    ("        return self.fc(x)\n", (7, "dd")),  # in __init__: building the layer failed
])
def test_a_half_typed_name_gives_one_note(workspace, body, where):
    init = "nn.Linear(8, dd)" if where[1] == "dd" else "nn.Linear(8, 4)"
    workspace.write("m.py", (
        "import torch\nimport torch.nn as nn\n\n\nclass Net(nn.Module):\n    def __init__(self):\n"
        f"        super().__init__()\n        self.fc = {init}\n\n    def forward(self, x):\n"
        f"        h = x\n{body}"))
    report = workspace.check("m.py")
    (note,) = report.findings
    assert note.code == "probe-incomplete" and f"NameError: name '{where[1]}' is not defined" in note.message
