"""Breadth: every layer of the rule table, the common tensor ops, containers, the ways a model
gets its constructor arguments and inputs, and imports the probe's interpreter lacks."""

from __future__ import annotations

import textwrap

import pytest

from helpers import TORCH_HEAD, errors, locate, probe, shape_of
from shapelens.report.fixes import apply_edits


def only_error(report):
    errs = errors(report)
    assert len(errs) == 1, [(f.code, f.message) for f in report.findings]
    return errs[0]


def text_at(workspace, finding, name: str = "m.py") -> str:
    line = (workspace.root / name).read_text().splitlines()[finding.range["start"]["line"]]
    return line[finding.range["start"]["character"]:finding.range["end"]["character"]]


def assert_fix_cleans(workspace, finding, name: str = "m.py"):
    path = workspace.root / name
    path.write_text(apply_edits(path.read_text(), finding.fixes[0].edits))
    assert errors(workspace.check(name)) == []


# -- the rule table: one mismatch per layer, reported on the declaring argument -----------------
LAYER_CASES = {
    "conv1d": ("a = nn.Conv1d(8, 16, 3)\nb = nn.Conv1d(12, 4, 3)\ny = b(a(torch.randn(2, 8, 50)))\n", "12", "16"),
    "conv2d-unbatched": ("c = nn.Conv2d(3, 8, 3)\ny = c(torch.randn(4, 32, 32))\n", "3", "4"),
    "conv3d": ("c = nn.Conv3d(2, 8, 3)\ny = c(torch.randn(1, 3, 8, 8, 8))\n", "2", "3"),
    "conv-transpose2d": ("up = nn.ConvTranspose2d(64, 32, 2, stride=2)\ny = up(torch.randn(2, 48, 7, 7))\n", "64", "48"),
    "batchnorm1d-seq": ("bn = nn.BatchNorm1d(16)\ny = bn(torch.randn(4, 20, 50))\n", "16", "20"),
    "batchnorm2d": ("c = nn.Conv2d(3, 32, 3)\nbn = nn.BatchNorm2d(64)\ny = bn(c(torch.randn(2, 3, 9, 9)))\n", "64", "32"),
    "batchnorm3d": ("bn = nn.BatchNorm3d(4)\ny = bn(torch.randn(2, 5, 3, 3, 3))\n", "4", "5"),
    "instancenorm1d-unbatched": ("n = nn.InstanceNorm1d(8)\ny = n(torch.randn(4, 20))\n", "8", "4"),
    "instancenorm2d": ("n = nn.InstanceNorm2d(8, affine=True)\ny = n(torch.randn(2, 6, 5, 5))\n", "8", "6"),
    "instancenorm3d": ("n = nn.InstanceNorm3d(3)\ny = n(torch.randn(2, 2, 4, 4, 4))\n", "3", "2"),
    "groupnorm": ("g = nn.GroupNorm(4, 32)\ny = g(torch.randn(2, 16, 5, 5))\n", "32", "16"),
    "layernorm": ("fc = nn.Linear(10, 48)\nln = nn.LayerNorm(64)\ny = ln(fc(torch.randn(3, 10)))\n", "64", "48"),
    "linear": ("fc = nn.Linear(20, 5)\ny = fc(torch.randn(3, 7, 21))\n", "20", "21"),
    "bilinear-in1": ("bl = nn.Bilinear(10, 6, 4)\ny = bl(torch.randn(3, 11), torch.randn(3, 6))\n", "10", "11"),
    "bilinear-in2": ("bl = nn.Bilinear(10, 6, 4)\ny = bl(torch.randn(3, 10), torch.randn(3, 7))\n", "6", "7"),
    "rnn": ("r = nn.RNN(16, 32)\ny, h = r(torch.randn(5, 2, 12))\n", "16", "12"),
    "lstm-batch-first": ("r = nn.LSTM(16, 32, batch_first=True)\ny, (h, c) = r(torch.randn(2, 5, 24))\n", "16", "24"),
    "gru-unbatched": ("r = nn.GRU(16, 32)\ny, h = r(torch.randn(5, 8))\n", "16", "8"),
    "mha": ("attn = nn.MultiheadAttention(64, 4, batch_first=True)\nq = torch.randn(2, 5, 32)\n"
            "y, w = attn(q, q, q)\n", "64", "32"),
    "encoder-layer": ("layer = nn.TransformerEncoderLayer(d_model=64, nhead=4, batch_first=True)\n"
                      "y = layer(torch.randn(2, 9, 48))\n", "64", "48"),
    "transformer": ("t = nn.Transformer(d_model=32, nhead=4, num_encoder_layers=1, num_decoder_layers=1, "
                    "dim_feedforward=64)\ny = t(torch.randn(10, 2, 24), torch.randn(7, 2, 24))\n", "32", "24"),
}


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_each_layer_reports_its_width_on_the_declaring_argument(workspace, case):
    body, declared, received = LAYER_CASES[case]
    report = probe(workspace, body)
    finding = only_error(report)
    assert finding.code in ("feature-mismatch", "embed-dim-mismatch")
    assert text_at(workspace, finding) == declared
    assert received in finding.message
    assert finding.fixes and finding.fixes[0].edits[0].new_text == received
    assert_fix_cleans(workspace, finding)


def test_a_decoder_memory_of_the_wrong_width_is_fixed_where_the_memory_is_made(workspace):
    report = probe(workspace, "enc = nn.Linear(16, 32)\nlayer = nn.TransformerDecoderLayer(64, 4, batch_first=True)\n"
                              "memory = enc(torch.randn(2, 7, 16))\ny = layer(torch.randn(2, 9, 64), memory)\n")
    finding = only_error(report)
    assert "d_model=64" in finding.message
    assert text_at(workspace, finding) == "32"
    assert finding.fixes[0].edits[0].new_text == "64"
    assert_fix_cleans(workspace, finding)


def test_a_transformer_target_of_the_wrong_width_is_reported_on_the_call(workspace):
    report = probe(workspace, "t = nn.Transformer(d_model=32, nhead=4, num_encoder_layers=1, num_decoder_layers=1)\n"
                              "y = t(torch.randn(10, 2, 32), torch.randn(7, 2, 24))\n")
    finding = only_error(report)
    assert "tgt" in finding.message and text_at(workspace, finding).startswith("t(")


@pytest.mark.parametrize("body, arg", [
    ("c = nn.Conv2d(6, 8, 3, groups=4)\n", "4"),
    ("c = nn.ConvTranspose2d(8, 6, 3, groups=4)\n", "4"),
    ("g = nn.GroupNorm(5, 32)\n", "5"),
    ("t = nn.TransformerEncoderLayer(d_model=100, nhead=8)\n", "8"),
])
def test_constructor_arguments_torch_rejects(workspace, body, arg):
    finding = only_error(probe(workspace, body))
    assert finding.code == "invalid-layer-config"
    assert "divisible" in finding.message or "must divide" in finding.message
    assert text_at(workspace, finding) == arg
    assert_fix_cleans(workspace, finding)


def test_an_lstm_initial_state_of_the_wrong_width_is_reported_on_the_call(workspace):
    report = probe(workspace, "r = nn.LSTM(16, 32)\nh0 = torch.zeros(1, 2, 24)\nc0 = torch.zeros(1, 2, 32)\n"
                              "y, _ = r(torch.randn(5, 2, 16), (h0, c0))\n")
    finding = only_error(report)
    assert "h0 of shape [1, 2, 32]" in finding.message
    assert text_at(workspace, finding).startswith("r(")


def test_lstm_initial_state_with_the_wrong_number_of_layers_is_a_shape_error(workspace):
    report = probe(workspace, "r = nn.LSTM(16, 32, num_layers=2)\nh = torch.zeros(1, 3, 32)\n"
                              "y, _ = r(torch.randn(5, 3, 16), (h, h))\n")
    finding = only_error(report)
    assert finding.code == "shape-error"
    assert "[2, 3, 32]" in finding.message and "num_layers * directions" in finding.message


def test_weight_tying_that_breaks_a_declared_width(workspace):
    report = probe(workspace, """
        class LM(nn.Module):
            def __init__(self, vocab=100, dim=32):
                super().__init__()
                self.emb = nn.Embedding(vocab, dim)
                self.head = nn.Linear(dim * 2, vocab)
                self.head.weight = self.emb.weight

            def forward(self, ids):
                return self.head(self.emb(ids))
    """)
    finding = only_error(report)
    assert text_at(workspace, finding) == "dim * 2"
    assert finding.fixes[0].edits[0].new_text == "dim"
    assert_fix_cleans(workspace, finding)


# -- containers and nested modules: inputs found through them, shapes for every layer --------------
CONTAINERS = """
    class Block(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.norm = nn.LayerNorm(dim)
            self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

        def forward(self, x):
            return x + self.ff(self.norm(x))


    class Net(nn.Module):
        def __init__(self, vocab=500, dim=64, depth=3):
            super().__init__()
            self.parts = nn.ModuleDict({"embed": nn.Embedding(vocab, dim), "out": nn.Linear(dim, vocab)})
            self.blocks = nn.ModuleList([Block(dim) for _ in range(depth)])

        def forward(self, ids):
            x = self.parts["embed"](ids)
            for block in self.blocks:
                x = block(x)
            return self.parts["out"](x)
"""


def test_sequential_modulelist_moduledict_and_nested_modules(workspace):
    report = probe(workspace, CONTAINERS)
    assert errors(report) == []
    layers = [s for s in report.shapes if s.kind == "layer"]
    assert len(layers) >= 7 and all(s.input_shape is not None and s.output_shape is not None for s in layers)
    assert shape_of(report, "x").symbolic == "[B, T, 64]"


def test_a_mismatch_inside_a_container_is_reported_on_its_argument(workspace):
    report = probe(workspace, CONTAINERS.replace("nn.Linear(4 * dim, dim)", "nn.Linear(2 * dim, dim)"))
    finding = only_error(report)
    assert text_at(workspace, finding) == "2 * dim"
    assert finding.fixes[0].edits[0].new_text == "4 * dim"
    assert_fix_cleans(workspace, finding)


def test_model_imported_from_another_file_is_fixed_and_shaped_in_that_file(workspace):
    blocks = workspace.write("blocks.py", "import torch.nn as nn\n\n\nclass Proj(nn.Module):\n"
                                          "    def __init__(self, d):\n        super().__init__()\n"
                                          "        self.a = nn.Linear(d, 2 * d)\n        self.b = nn.Linear(d, d)\n\n"
                                          "    def forward(self, x):\n        return self.b(self.a(x))\n")
    workspace.write("main.py", "import torch\nfrom blocks import Proj\n\np = Proj(8)\ny = p(torch.randn(3, 8))\n")
    report = workspace.check("main.py")
    finding = only_error(report)
    assert finding.path == str(blocks.resolve())
    assert finding.range == locate(blocks, "self.b = nn.Linear(d, d)", "d")
    assert finding.fixes[0].edits[0].new_text == "2 * d"
    assert any(s.path == str(blocks.resolve()) and s.name == "self.a" and s.output_shape == [3, 16]
               for s in report.shapes)


# -- functional and tensor ops: shape-error on the line, saying what was expected -----------------
OP_CASES = {
    "matmul": ("a = torch.randn(10, 256)\nb = torch.randn(128, 64)\nc = a @ b\n", "c = a @ b",
               "(10x256) @ (128x64): inner dims 256 and 128 differ"),
    "torch.matmul": ("a = torch.randn(4, 10, 256)\nb = torch.randn(128, 64)\nc = torch.matmul(a, b)\n",
                     "c = torch.matmul", "inner dims 256 and 128 differ"),
    "linear": ("w = torch.randn(5, 20)\ny = F.linear(torch.randn(3, 21), w)\n", "y = F.linear", "takes 20"),
    "bmm": ("y = torch.bmm(torch.randn(2, 3, 4), torch.randn(3, 4, 5))\n", "y = torch.bmm", "batch sizes"),
    "cat": ("a = torch.randn(2, 3, 8)\nb = torch.randn(2, 4, 9)\nc = torch.cat([a, b], dim=1)\n", "c = torch.cat",
            "differ at dim 2 (8 vs 9)"),
    "stack": ("s = torch.stack([torch.randn(2, 3), torch.randn(2, 4)])\n", "s = torch.stack", "equal shapes"),
    "view": ("h = torch.randn(4, 10)\nv = h.view(-1, 7)\n", "v = h.view", "40 elements, not a multiple of 7"),
    "reshape": ("h = torch.randn(4, 10)\nv = h.reshape(4, 3, 3)\n", "v = h.reshape", "that shape holds 36"),
    "flatten": ("h = torch.randn(4, 10)\nv = h.flatten(start_dim=2)\n", "v = h.flatten", "dim 2 does not exist"),
    "flatten-order": ("h = torch.randn(4, 10, 3)\nv = torch.flatten(h, 2, 1)\n", "v = torch.flatten",
                      "start_dim comes after end_dim"),
    "permute": ("h = torch.randn(4, 10, 3)\nv = h.permute(0, 2)\n", "v = h.permute", "names 2 dims but"),
    "transpose": ("h = torch.randn(4, 10)\nv = h.transpose(1, 2)\n", "v = h.transpose", "dim 2 does not exist"),
    "max_pool2d": ("h = torch.randn(1, 8, 3, 3)\np = F.max_pool2d(h, 4)\n", "p = F.max_pool2d", "smaller than the kernel"),
    "avg_pool1d": ("h = torch.randn(1, 8, 3)\np = F.avg_pool1d(h, 5)\n", "p = F.avg_pool1d", "smaller than the kernel"),
    "conv2d": ("w = torch.randn(16, 3, 3, 3)\ny = F.conv2d(torch.randn(2, 4, 9, 9), w)\n", "y = F.conv2d",
               "has 4 channels"),
    "conv1d-kernel": ("w = torch.randn(4, 2, 9)\ny = F.conv1d(torch.randn(1, 2, 5), w)\n", "y = F.conv1d",
                      "smaller than the kernel 9"),
    "softmax": ("h = torch.randn(4, 10)\np = F.softmax(h, dim=2)\n", "p = F.softmax", "softmax(dim=2)"),
    "log_softmax": ("h = torch.randn(4, 10)\np = h.log_softmax(-3)\n", "p = h.log_softmax", "dims are -2..1"),
    "nll-float-target": ("logp = torch.randn(4, 10).log_softmax(-1)\nt = torch.rand(4)\nl = F.nll_loss(logp, t)\n",
                         "l = F.nll_loss", "class indices (torch.long)"),
    "ce-seq": ("logits = torch.randn(4, 12, 50)\nt = torch.randint(0, 50, (4, 12))\nl = F.cross_entropy(logits, t)\n",
               "l = F.cross_entropy", "classes must be at dim 1"),
    "broadcast": ("a = torch.randn(4, 21)\nb = torch.randn(4, 20)\nc = a + b\n", "c = a + b",
                  "at dim -1 the sizes are 21 and 20"),
    "masked_fill": ("a = torch.randn(4, 5)\nm = torch.ones(4, 6) > 0\nb = a.masked_fill(m, 0.0)\n",
                    "b = a.masked_fill", "does not broadcast"),
    "bce": ("p = torch.rand(8, 1)\nt = torch.rand(8)\nl = F.binary_cross_entropy(p, t)\n",
            "l = F.binary_cross_entropy", "shapes must be equal"),
}


@pytest.mark.parametrize("case", sorted(OP_CASES))
def test_ops_report_shape_error_on_the_line_with_what_was_expected(workspace, case):
    body, line, expected = OP_CASES[case]
    report = probe(workspace, body)
    finding = only_error(report)
    assert finding.code == "shape-error"
    path = workspace.root / "m.py"
    assert finding.range["start"]["line"] == locate(path, line, line[:1])["start"]["line"]
    assert expected in finding.message, finding.message


def test_op_error_inside_forward_is_on_the_forward_line(workspace):
    report = probe(workspace, """
        class Attn(nn.Module):
            def __init__(self):
                super().__init__()
                self.q = nn.Linear(32, 32)

            def forward(self, x):
                k = torch.randn(x.shape[0], 16, 24)
                scores = self.q(x) + x @ k
                return scores
    """)
    finding = only_error(report)
    assert finding.code == "shape-error"
    assert "inner dims 32 and 16 differ" in finding.message
    assert text_at(workspace, finding) == "x @ k"


def test_a_width_conflict_between_two_layers_is_fixed_on_the_odd_layer(workspace):
    """mu and logvar must agree; the decoder says which of the two is wrong."""
    report = probe(workspace, """
        class VAE(nn.Module):
            def __init__(self, latent=20):
                super().__init__()
                self.enc = nn.Linear(784, 400)
                self.mu = nn.Linear(400, latent * 2)
                self.logvar = nn.Linear(400, latent)
                self.dec = nn.Linear(latent, 784)

            def forward(self, x):
                h = torch.relu(self.enc(x))
                mu, logvar = self.mu(h), self.logvar(h)
                z = mu + torch.randn_like(logvar) * torch.exp(0.5 * logvar)
                return self.dec(z)
    """)
    finding = only_error(report)
    assert text_at(workspace, finding) == "latent * 2"
    assert finding.fixes[0].edits[0].new_text == "latent"
    assert_fix_cleans(workspace, finding)


# -- the input size search ----------------------------------------------------------------------
MNIST = """
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, 3, 1)
            self.conv2 = nn.Conv2d(32, 64, 3, 1)
            self.fc1 = nn.Linear(9216, 128)
            self.fc2 = nn.Linear(128, 10)

        def forward(self, x):
            x = F.relu(self.conv2(F.relu(self.conv1(x))))
            x = torch.flatten(F.max_pool2d(x, 2), 1)
            return self.fc2(F.relu(self.fc1(x)))
"""


def test_mnist_9216_is_consistent_at_28x28_and_says_so(workspace):
    report = probe(workspace, MNIST)
    assert errors(report) == []
    summary = next(c for c in report.classes if c.name == "Net")
    assert "H=28" in summary.assumed and "W=28" in summary.assumed
    assert shape_of(report, "self.fc1", "layer").input_shape == [17, 9216]


def test_mnist_with_a_width_no_size_explains_names_the_assumed_size(workspace):
    report = probe(workspace, MNIST.replace("9216", "9000"))
    finding = only_error(report)
    assert text_at(workspace, finding) == "9000"
    assert "assumed 28x28 input" in finding.message
    assert finding.fixes[0].edits[0].new_text == "9216"


def test_a_model_for_32x32_images_is_probed_at_32(workspace):
    report = probe(workspace, """
        class Cifar(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.MaxPool2d(2),
                                              nn.Conv2d(16, 32, 3, padding=1), nn.MaxPool2d(2))
                self.fc = nn.Linear(32 * 8 * 8, 10)

            def forward(self, x):
                return self.fc(self.features(x).flatten(1))
    """)
    assert errors(report) == []
    assert "H=32" in next(c for c in report.classes if c.name == "Cifar").assumed


# -- constructor arguments and inputs without running the script ---------------------------------
def test_dataclass_namedtuple_and_plain_config_classes(workspace):
    report = probe(workspace, """
        from dataclasses import dataclass
        from typing import NamedTuple

        @dataclass
        class A:
            width: int = 24

        class B(NamedTuple):
            width: int = 40

        class C:
            width = 56

        class UsesA(nn.Module):
            def __init__(self, config: A):
                super().__init__()
                self.fc = nn.Linear(config.width, 2)

            def forward(self, x):
                return self.fc(x)

        class UsesB(nn.Module):
            def __init__(self, hp: B):
                super().__init__()
                self.fc = nn.Linear(hp.width, 2)

            def forward(self, x):
                return self.fc(x)

        class UsesC(nn.Module):
            def __init__(self, cfg=C):
                super().__init__()
                self.fc = nn.Linear(cfg.width, 2)

            def forward(self, x):
                return self.fc(x)
    """)
    assert errors(report) == []
    widths = sorted(s.input_shape[-1] for s in report.shapes if s.kind == "layer" and s.name == "self.fc")
    assert widths == [24, 40, 56]


def test_unannotated_config_parameter_uses_the_files_only_config_class(workspace):
    report = probe(workspace, """
        from dataclasses import dataclass

        @dataclass
        class GPTConfig:
            n_embd: int = 48
            vocab_size: int = 300

        class GPT(nn.Module):
            def __init__(self, config):
                super().__init__()
                self.wte = nn.Embedding(config.vocab_size, config.n_embd)
                self.head = nn.Linear(config.n_embd, config.vocab_size)

            def forward(self, idx):
                return self.head(self.wte(idx))
    """)
    assert errors(report) == []
    assert shape_of(report, "self.head", "layer").output_shape == [17, 13, 300]


def test_call_site_and_module_constants_give_the_arguments(workspace):
    report = probe(workspace, """
        HIDDEN = 96

        class MLP(nn.Module):
            def __init__(self, d_in, d_hidden):
                super().__init__()
                self.a = nn.Linear(d_in, d_hidden)
                self.b = nn.Linear(d_hidden, 1)

            def forward(self, x):
                return self.b(torch.relu(self.a(x)))

        def build():
            return MLP(12, HIDDEN)
    """)
    assert errors(report) == []
    assert shape_of(report, "self.a", "layer").output_shape == [17, 96]


def test_call_sites_in_other_workspace_files_give_the_arguments(workspace):
    workspace.write("models/__init__.py", "")
    workspace.write("models/net.py", TORCH_HEAD + textwrap.dedent("""
        class Net(nn.Module):
            def __init__(self, in_dim, num_classes):
                super().__init__()
                self.fc = nn.Linear(in_dim, num_classes)

            def forward(self, x):
                return self.fc(x)
    """))
    workspace.write("train.py", "from models.net import Net\n\nCLASSES = 7\nmodel = Net(36, num_classes=CLASSES)\n"
                                "for epoch in range(3):\n    pass\n")
    report = workspace.check("models/net.py")
    assert report.findings == []
    assert shape_of(report, "self.fc", "layer").output_shape == [17, 7]


def test_hint_comments_give_arguments_and_inputs(workspace):
    report = probe(workspace, """
        class Model(nn.Module):  # shapelens: Model(vocab_size=1000, d_model=64)
            def __init__(self, vocab_size, d_model):
                super().__init__()
                self.emb = nn.Embedding(vocab_size, d_model)
                self.conv = nn.Conv2d(3, d_model, 3)

            def forward(self, x, ids):  # shapelens: x=float[B,3,40,40], ids=long[B,T]
                return self.conv(x).mean((2, 3)) + self.emb(ids).mean(1)
    """)
    assert errors(report) == []
    assert shape_of(report, "x").shape == [17, 3, 40, 40]
    assert shape_of(report, "ids").symbolic == "[B, T]"


def test_pyproject_gives_arguments_inputs_and_sizes(workspace):
    workspace.write("pyproject.toml", textwrap.dedent("""
        [project]
        name = "ws"

        [tool.shapelens]
        sizes = { B = 4, T = 7 }

        [tool.shapelens.models.Model]
        init = "Model(vocab_size=1000, d_model=64)"
        inputs = "ids=long[B,T]"

        [tool.shapelens.models.Other]
        kwargs = { width = 24 }
    """))
    report = probe(workspace, """
        class Model(nn.Module):
            def __init__(self, vocab_size, d_model):
                super().__init__()
                self.emb = nn.Embedding(vocab_size, d_model)

            def forward(self, ids):
                return self.emb(ids)

        class Other(nn.Module):
            def __init__(self, width):
                super().__init__()
                self.fc = nn.Linear(width, 3)

            def forward(self, x):
                return self.fc(x)
    """)
    assert errors(report) == []
    assert shape_of(report, "self.emb", "layer").output_shape == [4, 7, 64]
    assert shape_of(report, "self.fc", "layer").input_shape == [4, 24]


def test_jaxtyping_annotations_are_input_specs_with_their_dim_names(workspace):
    report = probe(workspace, """
        from jaxtyping import Float, Int
        from torch import Tensor

        class Enc(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb = nn.Embedding(100, 16)
                self.fc = nn.Linear(128, 8)

            def forward(self, ids: Int[Tensor, "batch seq"], feats: Float[Tensor, "batch 128"]):
                return self.emb(ids).mean(1) @ torch.zeros(16, 8) + self.fc(feats)
    """)
    assert errors(report) == []
    assert shape_of(report, "ids").symbolic == "[batch, seq]"
    assert shape_of(report, "feats").symbolic == "[batch, 128]"


def test_a_class_only_another_call_site_builds_is_probed_through_it(workspace):
    report = probe(workspace, """
        class Small(nn.Module):
            def __init__(self, d):
                super().__init__()
                self.fc = nn.Linear(d, d)

            def forward(self, x):
                return self.fc(x)

        class Big(nn.Module):
            def __init__(self, d):
                super().__init__()
                self.fc = nn.Linear(d, d)

            def forward(self, x):
                return self.fc(x)

        class Net(nn.Module):
            def __init__(self, block=Small, d=16):
                super().__init__()
                self.body = block(d)

            def forward(self, x):
                return self.body(x)

        def big():
            return Net(Big, 32)
    """)
    assert errors(report) == []
    assert not [f for f in report.findings if "cannot construct" in f.message]
    assert sorted(s.output_shape[-1] for s in report.shapes if s.kind == "layer" and s.name == "self.fc") == [16, 32]


def test_what_cannot_be_decided_is_information_naming_the_hint(workspace):
    report = probe(workspace, """
        class Head(nn.Module):
            def __init__(self, width):
                super().__init__()
                self.fc = nn.Linear(width, 2)

            def forward(self, feats):
                return self.fc(feats)

        class Mixer(nn.Module):
            def forward(self, a):
                return a.sum(-1)
    """)
    assert errors(report) == []
    notes = [f for f in report.findings if f.code == "probe-incomplete"]
    assert {f.severity for f in notes} == {"information"}
    assert any("# shapelens: Head(width=...)" in f.message for f in notes)
    assert any("# shapelens: a=" in f.message for f in notes)


# -- imports the probe's interpreter lacks ----------------------------------------------------------
def test_failed_imports_make_only_their_names_unknown(workspace):
    report = probe(workspace, """
        import torchvision
        from torchvision import transforms as T
        import private_company_models.backbones as pcm
        from private_company_models import thing_a, thing_b

        class UsesTorchvision(nn.Module):
            def __init__(self):
                super().__init__()
                self.backbone = torchvision.models.resnet18()
                self.fc = nn.Linear(512, 10)

            def forward(self, x):
                return self.fc(self.backbone(x))

        class Plain(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(8, 3)

            def forward(self, x: "pcm.Tensor"):
                return self.fc(x)

        transform = T.Compose([T.ToTensor()])
        x = torch.randn(2, 4)
        y = nn.Linear(4, 6)(x)
    """)
    assert errors(report) == []
    notes = [f for f in report.findings if f.code == "probe-incomplete"]
    assert all(f.severity == "information" for f in notes)
    path = workspace.root / "m.py"
    lines = {f.range["start"]["line"] for f in notes}
    imports = {locate(path, l, "import" if l.startswith("import") else "from")["start"]["line"] for l in
               ("import torchvision", "from torchvision import", "import private_company_models",
                "from private_company_models")}
    # The class that needs torchvision says so where it uses it too: its layers get no shape.
    used = locate(path, "self.backbone = torchvision", "torchvision")["start"]["line"]
    assert lines == imports | {used}
    at_use = next(f for f in notes if f.range["start"]["line"] == used)
    assert "UsesTorchvision" in at_use.message and "failed to import" in at_use.message
    tv = next(f for f in notes if "import torchvision" in (path.read_text().splitlines()[f.range["start"]["line"]]))
    assert "torchvision" in tv.message and "UsesTorchvision" in tv.message
    assert shape_of(report, "y").shape == [2, 6]
    assert shape_of(report, "self.fc", "layer", nth=0).input_shape is not None  # Plain was probed


def test_an_imported_workspace_module_with_import_time_side_effects(workspace, tmp_path):
    marker = tmp_path / "touched"
    workspace.write("setup_env.py", f"import sys\nopen({str(marker)!r}, 'w')\nsys.exit(3)\nimport torch.nn as nn\n"
                                    "WIDTH = 12\n\n\nclass Layer(nn.Linear):\n    pass\n")
    report = probe(workspace, "from setup_env import WIDTH, Layer\nfc = Layer(WIDTH, 3)\ny = fc(torch.randn(2, WIDTH))\n")
    assert not marker.exists()
    assert errors(report) == []
    assert shape_of(report, "y").shape == [2, 3]
