"""Reach on the plan side: models inside a package layout (relative imports), argparse scripts,
factory functions and `__main__` blocks that say how the model is built. Each case is a small
model of our own reproducing a pattern of real code; each probe is a real worker process."""

from __future__ import annotations

from helpers import by_code

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
