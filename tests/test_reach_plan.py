"""Reach on the plan side: models inside a package layout (relative imports), argparse scripts,
factory functions and `__main__` blocks that say how the model is built. Each case is a small
model of our own reproducing a pattern of real code; each probe is a real worker process."""

from __future__ import annotations

import ast
import textwrap

import pytest

from helpers import by_code, errors, shape_of
from shapelens.analysis.argparse_ns import namespace_statement

PARTS = """\
import torch.nn as nn


class DoubleConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)

    def forward(self, x):
        return self.conv2(self.conv1(x))
"""

COMMON = """\
import torch.nn as nn


class Head(nn.Module):
    def __init__(self, width, classes=10):
        super().__init__()
        self.fc = nn.Linear(width, classes)

    def forward(self, x):
        return self.fc(x.mean(dim=(2, 3)))
"""

NET = """\
import torch.nn as nn

from .parts import *
from ..common import Head
from ..utils import widths


class Net(nn.Module):
    def __init__(self, cin=3):
        super().__init__()
        w = widths()
        self.stem = DoubleConv(cin, w[0])
        self.down = nn.Conv2d(w[0], w[1], 3, stride=2, padding=1)
        self.head = Head(w[1])

    def forward(self, x):
        return self.head(self.down(self.stem(x)))
"""


def _package(workspace):
    workspace.write("pkg/__init__.py", "")
    workspace.write("pkg/common.py", COMMON)
    workspace.write("pkg/utils/__init__.py", "from .sizes import widths\n")
    workspace.write("pkg/utils/sizes.py", "def widths():\n    return [16, 32]\n")
    workspace.write("pkg/models/__init__.py", "from .net import Net\n")
    workspace.write("pkg/models/parts.py", PARTS)
    workspace.write("pkg/models/net.py", NET)


def layer_shapes(report, path) -> dict[str, list[int] | None]:
    return {s.name: s.output_shape for s in report.shapes if s.kind == "layer" and s.path == str(path.resolve())}


def test_relative_imports_resolve_in_a_package_layout(workspace):
    _package(workspace)
    report = workspace.check("pkg/models/net.py")
    assert not [f for f in report.findings if "import failed" in f.message], [f.message for f in report.findings]
    shapes = layer_shapes(report, workspace.root / "pkg/models/net.py")
    assert shapes["self.down"] is not None and shapes["self.down"][1] == 32
    parts = layer_shapes(report, workspace.root / "pkg/models/parts.py")
    assert parts["self.conv2"] is not None and parts["self.conv2"][1] == 16  # a star import's class, probed
    assert by_code(report, "conv-channel-mismatch") == []


def test_a_package_init_reexporting_relatively_is_probed_too(workspace):
    _package(workspace)
    report = workspace.check("pkg/utils/__init__.py")
    assert not [f for f in report.findings if "import failed" in f.message], [f.message for f in report.findings]


def test_a_width_bug_behind_a_relative_import_is_an_error_on_its_line(workspace):
    _package(workspace)
    workspace.write("pkg/models/net.py", NET.replace("nn.Conv2d(w[0], w[1]", "nn.Conv2d(w[1], w[1]"))
    report = workspace.check("pkg/models/net.py")
    errors = [f for f in report.findings if f.severity == "error"]
    assert len(errors) == 1 and errors[0].range["start"]["line"] == NET.splitlines().index(
        "        self.down = nn.Conv2d(w[0], w[1], 3, stride=2, padding=1)")


def test_a_module_named_like_its_package_does_not_shadow_the_package(workspace):
    # `x_transformers/x_transformers.py` importing `x_transformers.attend`: with the file's own
    # folder first on sys.path, `x_transformers` would be the file, "not a package".
    workspace.write("blocks/__init__.py", "")
    workspace.write("blocks/common.py", COMMON)
    workspace.write("blocks/blocks.py", NET.replace("from .parts import *\nfrom ..common import Head\n"
                                                     "from ..utils import widths\n",
                                                     "from blocks.common import Head\n\n\n"
                                                     "def widths():\n    return [16, 32]\n")
                    .replace("DoubleConv(cin, w[0])", "nn.Conv2d(cin, w[0], 1)"))
    report = workspace.check("blocks/blocks.py")
    assert not [f for f in report.findings if "import failed" in f.message], [f.message for f in report.findings]
    assert layer_shapes(report, workspace.root / "blocks/common.py")["self.fc"] == [17, 10]


SCRIPT = """\
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, width, classes):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.fc = nn.Linear(width, classes)

    def forward(self, x):
        return self.fc(self.conv(x).mean(dim=(2, 3)))


def train(model):
    open({marker!r}, "w").write("trained")


if __name__ == "__main__":
    print("building")
    open({marker!r}, "w").write("opened")
    model = Net(24, 7)
    images = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        out = model(images)
    loss = out.sum()
    loss.backward()  # training, not shapes: never run (it could only fail here)
    train(model)
    for step in range(3):
        open({marker!r}, "w").write("looped")
"""


def test_a_main_block_builds_the_model_and_its_input_while_its_side_effects_never_run(workspace, tmp_path):
    marker = tmp_path / "marker"
    workspace.write("script.py", SCRIPT.format(marker=str(marker)))
    report = workspace.check("script.py")
    assert not marker.exists()
    assert [f for f in report.findings if f.severity == "error"] == []
    assert shape_of(report, "out").shape == [8, 7]
    assert shape_of(report, "self.conv", "layer").input_shape == [8, 3, 32, 32]


def test_a_width_bug_met_by_the_main_blocks_input_is_reported(workspace, tmp_path):
    marker = tmp_path / "marker"
    workspace.write("script.py", SCRIPT.format(marker=str(marker)).replace("torch.randn(8, 3, 32", "torch.randn(8, 4, 32"))
    errors = [f for f in workspace.check("script.py").findings if f.severity == "error"]
    assert len(errors) == 1 and "4" in errors[0].message
    assert not marker.exists()


def test_an_imported_files_main_block_never_runs(workspace, tmp_path):
    marker = tmp_path / "marker"
    workspace.write("script.py", SCRIPT.format(marker=str(marker)).replace("    model = Net(24, 7)", "    print(1)"))
    workspace.write("user.py", "import torch\nfrom script import Net\n\nnet = Net(24, 7)\n"
                               "y = net(torch.randn(2, 3, 16, 16))\n")
    report = workspace.check("user.py")
    assert shape_of(report, "y").shape == [2, 7]
    assert not [s for s in report.shapes if s.name == "images"]  # script.py's __main__ block did not run
    assert not marker.exists()


ARGPARSE = """\
import argparse

import torch
import torch.nn as nn

parser = argparse.ArgumentParser()
parser.add_argument("--latent-dim", type=int, default=100, help="dimensionality of the latent space")
parser.add_argument("--channels", type=int, default="3")
group = parser.add_argument_group("model")
group.add_argument("--hidden", dest="width", type=int, default=HIDDEN)
group.add_argument("--no-bias", action="store_true")
opt = parser.parse_args()
print(opt)


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(opt.latent_dim, opt.width, bias=not opt.no_bias)
        self.out = nn.Linear(opt.width, opt.channels * 16)

    def forward(self, z):
        return self.out(self.fc(z))
"""


def test_an_argparse_default_is_read_without_running_the_parser(workspace):
    workspace.write("gan.py", "HIDDEN = 48\n" + ARGPARSE)
    report = workspace.check("gan.py")
    assert [f for f in report.findings if f.severity == "error"] == []
    assert shape_of(report, "self.fc", "layer").input_shape == [17, 100]
    assert shape_of(report, "self.fc", "layer").output_shape == [17, 48]  # dest= and a module constant
    assert shape_of(report, "self.out", "layer").output_shape == [17, 48]  # a string default, converted by type=


def test_a_parser_built_in_a_function_and_parse_args_of_an_empty_list(workspace):
    text = ("HIDDEN = 48\n" + ARGPARSE).replace("parser = argparse", "def get_args():\n    parser = argparse")
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("def get_args"))
    end = next(i for i, ln in enumerate(lines) if ln.startswith("opt = "))
    body = ["    " + ln for ln in lines[start + 2:end]]
    text = "\n".join(lines[:start + 2] + body + ["    return parser.parse_args([])", "", "", "opt = get_args()"]
                     + lines[end + 1:]) + "\n"
    workspace.write("gan.py", text)
    report = workspace.check("gan.py")
    assert [f for f in report.findings if f.severity == "error"] == []
    assert shape_of(report, "self.fc", "layer").input_shape == [17, 100]


def test_a_width_bug_in_an_argparse_script_is_reported_on_its_line(workspace):
    workspace.write("gan.py", "HIDDEN = 48\n" + ARGPARSE.replace("nn.Linear(opt.width, opt.channels", "nn.Linear(opt.latent_dim, opt.channels"))
    errors = [f for f in workspace.check("gan.py").findings if f.severity == "error"]
    assert len(errors) == 1 and errors[0].range["start"]["line"] == 20


FACTORY = """\
import torch.nn as nn


class Decoder(nn.Module):
    def __init__(self, *, transformer_dim, depth, num_outputs):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(transformer_dim, transformer_dim) for _ in range(depth)])
        self.head = nn.Linear(transformer_dim, num_outputs)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def build_decoder(checkpoint=None, outputs=3):
    d = 256
    depth = 2
    model = Decoder(transformer_dim=d, depth=depth, num_outputs=outputs * 2)
    if checkpoint is not None:
        with open(checkpoint, "rb") as f:
            model.load_state_dict(f)
    return model
"""


def test_a_factory_functions_locals_reach_the_constructor(workspace):
    workspace.write("decoder.py", FACTORY)
    report = workspace.check("decoder.py")
    assert [f for f in report.findings if f.severity == "error"] == []
    assert not [f for f in report.findings if "cannot construct `Decoder`" in f.message]
    assert shape_of(report, "self.head", "layer").input_shape[-1] == 256
    assert shape_of(report, "self.head", "layer").output_shape[-1] == 6  # a parameter's default, doubled


def test_a_factory_local_bound_by_unknown_code_is_not_taken_from_the_module(workspace):
    # `d` here is read from a file: the module-level `d = 64` must not stand in for it.
    text = "d = 64\n" + FACTORY.replace("    d = 256\n", "    d = int(open('width.txt').read())\n")
    workspace.write("decoder.py", text)
    report = workspace.check("decoder.py")
    # Without the factory's call, Decoder is built from assumed values (or not at all): never
    # from `transformer_dim=64, num_outputs=6`, which the factory site with d = 64 would give.
    assert not [s for s in report.shapes if s.name == "self.head" and s.input_shape
                and s.input_shape[-1] == 64 and s.output_shape[-1] == 6]


CLASSIFIER = """\
import torch.nn as nn


class Classifier(nn.Module):
    def __init__(self, in_channels, width, classes):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3)
        self.fc = nn.Linear(width, classes)

    def forward(self, x):
        return self.fc(self.conv(x).mean(dim=(2, 3)))
"""


def test_a_test_function_of_the_workspace_says_how_the_class_is_built(workspace):
    workspace.write("vision/__init__.py", "from .classifier import Classifier\n")
    workspace.write("vision/classifier.py", CLASSIFIER)
    workspace.write("tests/test_classifier.py", "import torch\nfrom vision import Classifier\n\n\n"
                    "def test_logits():\n    width = 32\n    model = Classifier(3, width, classes=width // 4)\n"
                    "    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 8)\n")
    report = workspace.check("vision/classifier.py")
    assert shape_of(report, "self.fc", "layer").input_shape[-1] == 32
    assert shape_of(report, "self.fc", "layer").output_shape[-1] == 8


@pytest.mark.parametrize("imports", ["from classifier import Classifier", "from classifier import *"])
def test_a_training_scripts_argparse_defaults_say_how_the_class_is_built(workspace, imports):
    workspace.write("classifier.py", CLASSIFIER)
    workspace.write("train.py", f"import argparse\n{imports}\n\n"
                    "parser = argparse.ArgumentParser()\nparser.add_argument('--channels', type=int, default=1)\n"
                    "parser.add_argument('--width', type=int, default=24)\nopt = parser.parse_args()\n"
                    "shape = (opt.channels, opt.width)\nnet = Classifier(shape[0], opt.width, 10)\n"
                    "net = Classifier(opt.channels, opt.width, 10)\n")
    report = workspace.check("classifier.py")
    assert shape_of(report, "self.conv", "layer").input_shape[1] == 1
    assert shape_of(report, "self.fc", "layer").input_shape[-1] == 24


def test_a_required_option_is_unknown_rather_than_none(workspace):
    # `Net(upscale_factor=opt.upscale_factor)` with `required=True`: no value, never Net(None).
    text = ("import argparse\n\nparser = argparse.ArgumentParser()\n"
            "parser.add_argument('--width', type=int, required=True)\nparser.add_argument('data')\n"
            "parser.add_argument('--depth', type=int, default=2)\nopt = parser.parse_args()\n")
    tree = ast.parse(text)
    assert namespace_statement(tree.body[-1], tree) == "opt = __import__('argparse').Namespace(**{'depth': 2})"


DECODER = """\
import torch
from torch import nn


class Mixer(nn.Module):
    def __init__(self, depth, embedding_dim, mlp_dim):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(embedding_dim, embedding_dim) for _ in range(depth)])
        self.mlp = nn.Sequential(nn.Linear(embedding_dim, mlp_dim), nn.ReLU(), nn.Linear(mlp_dim, embedding_dim))

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.mlp(x)


class Decoder(nn.Module):
    def __init__(self, *, transformer_dim, transformer, num_outputs):
        super().__init__()
        self.proj = nn.Linear(transformer_dim, transformer_dim)
        self.transformer = transformer
        self.head = nn.Linear(transformer_dim, num_outputs)

    def forward(self, x):
        return self.head(self.transformer(self.proj(x)))
"""


@pytest.mark.parametrize("part", ["Mixer(depth=2, embedding_dim=width, mlp_dim=512)", "make_mixer(width)"])
def test_a_factory_in_a_sibling_module_builds_the_class_with_a_part_it_builds_too(workspace, part):
    # segment-anything's build_sam.py: `from .modeling import MaskDecoder, TwoWayTransformer` and
    # `MaskDecoder(transformer=TwoWayTransformer(...), transformer_dim=prompt_dim, ...)` in a factory.
    # A part the probe cannot evaluate (a function call) leaves only that argument to assume.
    workspace.write("pkg/__init__.py", "")
    workspace.write("pkg/modeling/__init__.py", "from .decoder import Decoder, Mixer\n")
    workspace.write("pkg/modeling/decoder.py", DECODER)
    workspace.write("pkg/build.py", "from .modeling import Decoder, Mixer\n\n\n"
                    "def build(checkpoint=None):\n    width = 160\n"
                    f"    return Decoder(transformer={part}, transformer_dim=width, num_outputs=7)\n")
    report = workspace.check("pkg/modeling/decoder.py")
    assert errors(report) == []
    head = shape_of(report, "self.head", "layer")
    assert head.input_shape[-1] == 160 and head.output_shape[-1] == 7
    decoder = next(c for c in report.classes if c.name == "Decoder")
    if part.startswith("Mixer"):
        assert not decoder.assumed_args  # every argument came from build.py
        mlp = [s for s in report.shapes if s.kind == "layer" and s.output_shape and s.output_shape[-1] == 512]
        assert mlp, "the part's own layers are shaped with the factory's widths"
    else:
        assert set(decoder.assumed_args) == {"transformer"}


def test_a_compatibility_shim_under_a_pure_if_runs_as_python_runs_it(workspace):
    # EfficientNet-PyTorch's utils.py: `if hasattr(nn, 'SiLU'): Swish = nn.SiLU` / `else: class
    # Swish(nn.Module)`; the model file imports Swish, which was never bound.
    workspace.write("utils.py", "import torch\nfrom torch import nn\n\nif hasattr(nn, 'SiLU'):\n"
                    "    Swish = nn.SiLU\nelse:\n    class Swish(nn.Module):\n        def forward(self, x):\n"
                    "            return x * torch.sigmoid(x)\n\nif print('side effect'):\n    Other = nn.ReLU\n"
                    # yolov5's metrics.py: a library module's attribute tested by name (the planner crashed here)
                    "import numpy as np\ntrapezoid = np.trapezoid if hasattr(np, 'trapezoid') else np.trapz\n")
    workspace.write("model.py", "from torch import nn\nfrom utils import Swish\n\n\nclass Net(nn.Module):\n"
                    "    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(8, 4)\n"
                    "        self.act = Swish()\n\n    def forward(self, x):\n        return self.act(self.fc(x))\n")
    report = workspace.check("model.py")
    assert not [f for f in report.findings if "import" in f.message]
    assert shape_of(report, "self.fc", "layer").output_shape[-1] == 4
    assert shape_of(report, "self.act", "layer").output_shape[-1] == 4


def test_a_src_layout_package_imports_by_its_own_name(workspace):
    # black-forest-labs/flux: `src/flux/modules/layers.py` imports `from flux.math import ...`,
    # which works once the project is installed; the probe (and Jedi) start imports from `src/`.
    workspace.write("src/tinypkg/__init__.py", "")
    workspace.write("src/tinypkg/sizes.py", "WIDTH = 24\n")
    workspace.write("src/tinypkg/modules/layers.py", textwrap.dedent("""\
        import torch.nn as nn
        from tinypkg.sizes import WIDTH


        class Proj(nn.Module):
            def __init__(self, dim=WIDTH):
                super().__init__()
                self.fc = nn.Linear(dim, dim * 2)

            def forward(self, x):
                return self.fc(x)
    """))
    report = workspace.check("src/tinypkg/modules/layers.py")
    assert not [f for f in report.findings if "import failed" in f.message], [f.message for f in report.findings]
    shapes = layer_shapes(report, workspace.root / "src/tinypkg/modules/layers.py")
    assert shapes["self.fc"] is not None and shapes["self.fc"][-1] == 48
