"""Patterns of held-out set 5 (timm, SwinIR, PyTorch-VAE, sam2), each in a model written here: a
package whose `__init__` re-exports far more files than the planner's limit, assumed values that
disagree with each other, a flattened feature map whose width depends on the input size, a
shape unpacked on a guessed rank, a token grid the block keeps as a pair of sides, an
nn.Sequential subclass filled by its `__init__`, and `x.chunk(2)` read for a rank."""

from __future__ import annotations

import textwrap

from helpers import errors, probe, shape_of
from shapelens.analysis.plan import build_plan
from shapelens.analysis.resolve import Resolver


def notes(report):
    return [f.message for f in report.findings if f.code == "probe-incomplete"]


def _big_package(workspace, n: int = 30) -> None:
    # timm: `timm/layers/__init__.py` imports every layer module, `timm/models/__init__.py` every
    # model file (`from .beit import *`); a model file needs two names of the layers package.
    workspace.write("lib/__init__.py", "from .layers import Ffn\nfrom .models import *\n")
    workspace.write("lib/layers/__init__.py", "".join(f"from .part{i} import Part{i}\n" for i in range(n))
                    + "from .ffn import Ffn\nfrom .helpers import to_2tuple\n")
    for i in range(n):
        workspace.write(f"lib/layers/part{i}.py", f"import torch.nn as nn\n\n\nclass Part{i}(nn.Identity):\n    pass\n")
    workspace.write("lib/layers/helpers.py", "def to_2tuple(x):\n    return (x, x)\n")
    workspace.write("lib/layers/ffn.py", textwrap.dedent("""\
        import torch.nn as nn
        from .helpers import to_2tuple


        class Ffn(nn.Module):
            def __init__(self, dim, hidden):
                super().__init__()
                drop = to_2tuple(0.0)
                self.fc1 = nn.Linear(dim, hidden)
                self.drop = nn.Dropout(drop[0])
                self.fc2 = nn.Linear(hidden, dim)

            def forward(self, x):
                return self.fc2(self.drop(self.fc1(x)))
    """))
    workspace.write("lib/models/__init__.py", "".join(f"from .model{i} import *\n" for i in range(n))
                    + "from .net import *\n")
    for i in range(n):
        workspace.write(f"lib/models/model{i}.py", f"from lib.layers import Part{i}\n\n__all__ = ['Model{i}']\n\n"
                        f"Model{i} = Part{i}\n")
    workspace.write("lib/models/net.py", textwrap.dedent("""\
        import torch.nn as nn
        from lib.layers import Ffn, to_2tuple


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.stem = nn.Linear(12, 32)
                self.mlp = Ffn(32, 64)

            def forward(self, x):
                return self.mlp(self.stem(x))
    """))


def test_the_names_a_file_imports_from_a_big_package_are_planned_first(workspace):
    _big_package(workspace)
    net = workspace.root / "lib/models/net.py"
    plan = build_plan(Resolver(str(workspace.root)), str(net), net.read_text(), max_files=12)
    planned = {p.path.split("/lib/", 1)[1] for p in plan.files}
    # What Net needs, and the packages Python runs on the way; not the thirty re-exports
    assert {"models/net.py", "__init__.py", "models/__init__.py", "layers/__init__.py", "layers/ffn.py",
            "layers/helpers.py"} <= planned, planned
    # Python runs those `__init__`s whole all the same: the rest is planned while the limit lasts
    assert len(plan.files) == 12


def test_a_package_asked_for_more_names_later_still_leaves_out_the_rest(workspace):
    # timm's vision_transformer.py asks `timm.layers` for names, and so do files planned after it:
    # that second ask must not plan the re-exports nobody named.
    _big_package(workspace)
    layers = workspace.root / "lib/layers/__init__.py"
    workspace.write("lib/layers/__init__.py", layers.read_text() + "from .norm import Norm\n")
    workspace.write("lib/layers/norm.py", "import torch.nn as nn\n\n\nclass Norm(nn.LayerNorm):\n    pass\n")
    ffn = workspace.root / "lib/layers/ffn.py"
    workspace.write("lib/layers/ffn.py", "from lib.layers import Norm\n" + ffn.read_text())
    net = workspace.root / "lib/models/net.py"
    plan = build_plan(Resolver(str(workspace.root)), str(net), net.read_text(), max_files=100)
    order = [p.path.split("/lib/", 1)[1] for p in plan.files]  # the order they were planned in
    first_part = min(i for i, p in enumerate(order) if p.startswith("layers/part"))
    assert order.index("layers/norm.py") < first_part, order


def test_a_model_of_a_big_package_is_probed_with_what_it_imports(workspace):
    _big_package(workspace, n=70)  # more files than the planner's limit (64)
    report = workspace.check("lib/models/net.py")
    assert errors(report) == [], notes(report)
    assert shape_of(report, "self.stem", "layer").output_shape[-1] == 32
    assert shape_of(report, "self.mlp", "layer").output_shape[-1] == 32  # Ffn was imported
    net = str(workspace.root / "lib/models/net.py")
    assert [f for f in report.findings if f.path == net and "import failed" in f.message] == []


def test_assumed_values_that_disagree_with_each_other_are_not_an_error(workspace):
    # timm's Bottleneck adds its input to `planes * 4` channels: it needs `inplanes == 4 * planes`,
    # which no assumption by name knows. Probed again with inplanes set to what it meets, it is clean.
    report = probe(workspace, """
        class Bottleneck(nn.Module):
            expansion = 4

            def __init__(self, inplanes, planes):
                super().__init__()
                outplanes = planes * self.expansion
                self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
                self.bn1 = nn.BatchNorm2d(planes)
                self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
                self.conv3 = nn.Conv2d(planes, outplanes, 1, bias=False)
                self.act = nn.ReLU()

            def forward(self, x):
                shortcut = x
                x = self.act(self.bn1(self.conv1(x)))
                x = self.conv3(self.conv2(x))
                x = x + shortcut
                return self.act(x)
    """)
    assert errors(report) == [], notes(report)
    said = [n for n in notes(report) if "fits the other values" in n]
    assert said and "inplanes=" in said[0], notes(report)
    # Probed with the values that agree: the last layer's shape is there
    out = shape_of(report, "self.conv3", "layer").output_shape
    assert out is not None and out[1] == 4 * shape_of(report, "self.conv2", "layer").output_shape[1]


def test_a_one_width_slip_under_assumed_values_stays_an_error(workspace):
    # `planes + 1` where conv2 makes `planes`: setting planes to either size leaves the other one
    # off by one, so no assumed value makes it agree, and it is the file's error.
    report = probe(workspace, """
        class Bottleneck(nn.Module):
            def __init__(self, inplanes, planes):
                super().__init__()
                self.conv1 = nn.Conv2d(inplanes, planes, 1)
                self.conv2 = nn.Conv2d(planes, planes, 3, padding=1)
                self.conv3 = nn.Conv2d(planes + 1, planes * 4, 1)

            def forward(self, x):
                return self.conv3(self.conv2(self.conv1(x)))
    """)
    assert [("self.conv3" in f.message, "97" in f.message) for f in errors(report)] == [(True, True)], notes(report)


def test_a_flattened_map_that_depends_on_the_input_size_is_searched(workspace):
    # PyTorch-VAE: five stride-2 convs, then `nn.Linear(hidden_dims[-1] * 4, latent)`: only a 64x64
    # input leaves the 2x2 map those 4 mean. At 28x28 the map is 1x1 (an odd side rounds up).
    report = probe(workspace, """
        class Encoder(nn.Module):
            def __init__(self, in_channels, latent_dim):
                super().__init__()
                dims = [32, 64, 128, 256, 512]
                layers = []
                for d in dims:
                    layers.append(nn.Sequential(nn.Conv2d(in_channels, d, 3, stride=2, padding=1), nn.LeakyReLU()))
                    in_channels = d
                self.encoder = nn.Sequential(*layers)
                self.fc_mu = nn.Linear(dims[-1] * 4, latent_dim)

            def forward(self, x):
                h = torch.flatten(self.encoder(x), start_dim=1)
                return self.fc_mu(h)
    """)
    assert errors(report) == [], notes(report)
    assert shape_of(report, "self.fc_mu", "layer").input_shape[-1] == 2048


def test_a_shape_unpacked_on_a_guessed_rank_is_a_note(workspace):
    # sam2's RoPE attention: `q.shape[-2]` reads make the guess 2-D, and a helper unpacks
    # `b, n, c = x.shape`. The guess is wrong, not the file.
    report = probe(workspace, """
        import math


        class Attention(nn.Module):
            def __init__(self, dim, heads):
                super().__init__()
                self.heads = heads
                self.q_proj = nn.Linear(dim, dim)
                self.pos = nn.Parameter(torch.zeros(256, dim // heads))

            def split(self, x):
                b, n, c = x.shape
                return x.reshape(b, n, self.heads, c // self.heads).transpose(1, 2)

            def forward(self, q):
                q = self.split(self.q_proj(q))
                side = int(math.sqrt(q.shape[-2]))
                return q + self.pos[: side * side]
    """)
    assert errors(report) == []
    assert any("rank this probe guessed" in n and "unpack" in n for n in notes(report)), notes(report)


def test_a_hinted_input_keeps_its_unpack_error(workspace):
    report = probe(workspace, """
        class Attention(nn.Module):
            def __init__(self):
                super().__init__()
                self.q_proj = nn.Linear(16, 16)

            def forward(self, q):  # shapelens: q=float[2,16]
                b, n, c = self.q_proj(q).shape
                return q
    """)
    assert [f.code for f in errors(report)] == ["shape-error"], notes(report)


def test_a_token_grid_kept_as_a_pair_of_sides(workspace):
    # Swin's PatchMerging: `H, W = self.input_resolution` in forward (so the resolution is a pair),
    # `assert L == H * W`, and the norm's width comes after `x.view(B, -1, 4 * C)`.
    report = probe(workspace, """
        class PatchMerging(nn.Module):
            def __init__(self, input_resolution, dim):
                super().__init__()
                self.input_resolution = input_resolution
                self.dim = dim
                self.norm = nn.LayerNorm(4 * dim)
                self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

            def forward(self, x):
                H, W = self.input_resolution
                B, L, C = x.shape
                assert L == H * W, "input feature has wrong size"
                x = x.view(B, H, W, C)
                x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
                return self.reduction(self.norm(x.view(B, -1, 4 * C)))
    """)
    assert errors(report) == [], notes(report)
    assert not any("rejects the inputs" in n for n in notes(report)), notes(report)
    shape = shape_of(report, "self.reduction", "layer")
    assert shape.input_shape[-1] == 4 * shape.output_shape[-1] // 2


def test_a_sequential_subclass_nothing_built_is_told(workspace):
    # SwinIR's `class Upsample(nn.Sequential)`: layers appended in `__init__`, no forward of its
    # own, built only under a branch the probe did not take.
    report = probe(workspace, """
        class Upsample(nn.Sequential):
            def __init__(self, scale, num_feat):
                m = []
                for _ in range(scale // 2):
                    m.append(nn.Conv2d(num_feat, 4 * num_feat, 3, 1, 1))
                    m.append(nn.PixelShuffle(2))
                super().__init__(*m)


        class Net(nn.Module):
            def __init__(self, upsampler=""):
                super().__init__()
                self.body = nn.Conv2d(3, 16, 3, padding=1)
                if upsampler == "pixelshuffle":
                    self.up = Upsample(2, 16)

            def forward(self, x):
                return self.body(x)
    """)
    told = [f for f in report.findings if f.code == "probe-incomplete" and "`Upsample` builds" in f.message]
    assert told and "nn.PixelShuffle" in told[0].message, notes(report)


def test_a_chunk_without_a_constant_dim_is_read_for_a_rank(workspace):
    # timm's GluMlp: `x, gates = x.chunk(2, dim=self.chunk_dim)` (the rank reader crashed on it,
    # and took the whole file's probe with it).
    report = probe(workspace, """
        class GluMlp(nn.Module):
            def __init__(self, in_features, hidden_features):
                super().__init__()
                self.chunk_dim = -1
                self.fc1 = nn.Linear(in_features, hidden_features * 2)
                self.fc2 = nn.Linear(hidden_features, in_features)

            def forward(self, x):
                x = self.fc1(x)
                x, gates = x.chunk(2, dim=self.chunk_dim)
                return self.fc2(x * gates.sigmoid())


        class Plain(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(8, 8)

            def forward(self, x):
                a, b = x.chunk(2)
                return self.fc(a)
    """)
    assert not any("internal probe error" in n for n in notes(report)), notes(report)
    assert shape_of(report, "self.fc2", "layer").output_shape is not None


def test_module_level_reads_of_the_environment_read_it_as_empty(workspace):
    # timm's layers/config.py: `if 'TIMM_FUSED_ATTN' in os.environ: ... else: _USE_FUSED_ATTN = 1`;
    # a default read with `os.environ.get`; and `'silu' in dir(torch.nn.functional)`.
    workspace.write("cfg.py", textwrap.dedent("""\
        import os
        import torch

        if 'WIDTH_FROM_ENV' in os.environ:
            WIDTH = int(os.environ['WIDTH_FROM_ENV'])
        else:
            WIDTH = 24
        SCALE = int(os.environ.get('SCALE_FROM_ENV', '2'))
        if os.getenv('NO_BIAS'):
            BIAS = open('/tmp/never', 'w')
        else:
            BIAS = True
        HAS_SILU = 'silu' in dir(torch.nn.functional)
    """))
    workspace.write("net.py", textwrap.dedent("""\
        import torch.nn as nn
        from cfg import BIAS, HAS_SILU, SCALE, WIDTH


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(WIDTH, WIDTH * SCALE, bias=BIAS)
                self.act = nn.SiLU() if HAS_SILU else nn.ReLU()

            def forward(self, x):
                return self.act(self.fc(x))
    """))
    report = workspace.check("net.py")
    assert not [f for f in report.findings if "import failed" in f.message], notes(report)
    assert shape_of(report, "self.fc", "layer").output_shape[-1] == 48
    names = {s.name for s in report.shapes if s.kind == "layer"}
    assert "nn.SiLU" in names and "nn.ReLU" not in names, names  # `'silu' in dir(...)` was read


def test_an_environment_if_with_a_branch_that_is_not_pure_is_skipped(workspace):
    # The branch an empty environment takes must itself be tensor-pure.
    workspace.write("cfg.py", "import os\n\nif 'X' not in os.environ:\n    WIDTH = open('/tmp/x').read()\n"
                    "else:\n    WIDTH = 4\n")
    workspace.write("net.py", "import torch.nn as nn\nfrom cfg import WIDTH\n\n\nclass Net(nn.Module):\n"
                    "    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(WIDTH, 2)\n\n"
                    "    def forward(self, x):\n        return self.fc(x)\n")
    report = workspace.check("net.py")
    assert any("WIDTH" in n and "unknown" in n for n in notes(report)), notes(report)


def test_keyword_inputs_read_from_kwargs(workspace):
    # PyTorch-VAE's ConditionalVAE: `forward(self, input, **kwargs)` reads `kwargs['labels']`.
    report = probe(workspace, """
        class ConditionalNet(nn.Module):
            def __init__(self, num_classes: int, dim: int):
                super().__init__()
                self.embed_class = nn.Linear(num_classes, dim)
                self.embed_data = nn.Linear(dim, dim)

            def forward(self, input, **kwargs):
                y = kwargs['labels'].float()
                return self.embed_data(input) + self.embed_class(y)
    """)
    assert errors(report) == [], notes(report)
    shape = shape_of(report, "self.embed_class", "layer")
    assert shape.input_shape is not None and shape.output_shape[-1] == shape_of(report, "self.embed_data",
                                                                                  "layer").output_shape[-1]


def test_an_input_handed_to_a_method_by_keyword_is_followed(workspace):
    # sam2's MaskDecoder: `self.predict_masks(image_embeddings=image_embeddings, ...)`.
    report = probe(workspace, """
        class Decoder(nn.Module):
            def __init__(self):
                super().__init__()
                self.up = nn.ConvTranspose2d(32, 8, 2, stride=2)

            def predict(self, feats, scale):
                return self.up(feats) * scale

            def forward(self, image_embeddings):
                return self.predict(scale=2.0, feats=image_embeddings)
    """)
    assert errors(report) == [], notes(report)
    assert shape_of(report, "self.up", "layer").input_shape[1] == 32


def test_a_nested_environment_if_never_runs_the_branch_it_did_not_check(workspace, tmp_path):
    # The outer `if` is a plain shim; the inner one reads the environment. Whatever the worker's
    # environment holds, the unchecked branch (a file write) never runs.
    marker = tmp_path / "marker.txt"
    workspace.write("cfg.py", textwrap.dedent(f"""\
        import os
        from torch import nn

        if hasattr(nn, 'SiLU'):
            if 'PATH' in os.environ:  # set in every worker: read for real, the marker would be written
                open({str(marker)!r}, 'w').write('ran')
            else:
                WIDTH = 6
    """))
    workspace.write("net.py", "import torch.nn as nn\nfrom cfg import WIDTH\n\n\nclass Net(nn.Module):\n"
                    "    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(WIDTH, 2)\n\n"
                    "    def forward(self, x):\n        return self.fc(x)\n")
    report = workspace.check("net.py")
    assert not marker.exists()
    assert shape_of(report, "self.fc", "layer").input_shape[-1] == 6, notes(report)


def test_a_layer_given_a_name_whose_import_failed_is_a_note_not_an_error(workspace):
    # torch reports `got Missing` as its own TypeError ("torch rejects this layer's arguments"),
    # which was an error on the user's line; the name's import is what failed.
    workspace.write("cfg.py", "import os\n\nWIDTH = os.cpu_count()\n")
    workspace.write("net.py", "import torch.nn as nn\nfrom cfg import WIDTH\n\n\nclass Net(nn.Module):\n"
                    "    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(WIDTH, 2)\n\n"
                    "    def forward(self, x):\n        return self.fc(x)\n")
    report = workspace.check("net.py")
    assert errors(report) == [], [f.message for f in errors(report)]
    assert any("WIDTH" in n and "failed to import" in n for n in notes(report)), notes(report)


def test_a_block_class_parameter_is_assumed_as_one_of_the_files_blocks(workspace):
    # timm's `ResNet(block: Union[BasicBlock, Bottleneck], layers)`, built only through factories
    # with `**kwargs`: the block is a class of the file, not a width.
    report = probe(workspace, """
        from typing import Union


        class BasicBlock(nn.Module):
            expansion = 1

            def __init__(self, inplanes, planes):
                super().__init__()
                self.conv = nn.Conv2d(inplanes, planes, 3, padding=1)

            def forward(self, x):
                return self.conv(x)


        class Bottleneck(BasicBlock):
            expansion = 4


        class ResNet(nn.Module):
            def __init__(self, block: Union[BasicBlock, Bottleneck], layers):
                super().__init__()
                self.stem = nn.Conv2d(3, 16, 3, padding=1)
                blocks, inplanes = [], 16
                for n in layers:
                    blocks += [block(inplanes, 16) for _ in range(n)]
                    inplanes = 16 * block.expansion
                self.blocks = nn.Sequential(*blocks)
                self.head = nn.Linear(16 * block.expansion, 10)

            def forward(self, x):
                x = self.blocks(self.stem(x))
                return self.head(x.mean((2, 3)))
    """)
    assert errors(report) == [], notes(report)
    assert any("block=BasicBlock" in n for n in notes(report)), notes(report)
    assert shape_of(report, "self.head", "layer").output_shape[-1] == 10


def test_an_error_past_a_disagreement_is_told_not_lost(workspace):
    # The residual needs inplanes == 4 * planes; past it, a slip (`planes * 4 + 1`) the first probe
    # never reached. Probed with the values that agree, it is said in the note, not dropped.
    report = probe(workspace, """
        class Bottleneck(nn.Module):
            expansion = 4

            def __init__(self, inplanes, planes):
                super().__init__()
                outplanes = planes * self.expansion
                self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
                self.bn1 = nn.BatchNorm2d(planes)
                self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
                self.conv3 = nn.Conv2d(planes, outplanes, 1, bias=False)
                self.act = nn.ReLU()
                self.fc = nn.Linear(outplanes + 1, 10)

            def forward(self, x):
                shortcut = x
                x = self.act(self.bn1(self.conv1(x)))
                x = self.conv3(self.conv2(x))
                x = x + shortcut
                return self.fc(self.act(x).mean((2, 3)))
    """)
    assert errors(report) == [], [f.message for f in errors(report)]
    assert any("then reports" in n and "self.fc" in n for n in notes(report)), notes(report)


def test_an_environment_default_inside_a_branch_runs_as_its_constant(workspace):
    # The assignment under the `else:` runs as `DEBUG = 0`: neither the environment nor the file's
    # own `int` (which would make it 99) is called.
    workspace.write("cfg.py", textwrap.dedent("""\
        import os


        def int(x):
            return 99


        if 'X_SET' in os.environ:
            DEBUG = 1
        else:
            DEBUG = int(os.environ.get('DEBUG', '0'))
    """))
    workspace.write("net.py", "import torch.nn as nn\nfrom cfg import DEBUG\n\n\nclass Net(nn.Module):\n"
                    "    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(DEBUG + 4, 2)\n\n"
                    "    def forward(self, x):\n        return self.fc(x)\n")
    report = workspace.check("net.py")
    assert shape_of(report, "self.fc", "layer").input_shape[-1] == 4, notes(report)


def test_dir_of_anything_but_a_plain_torch_module_name_is_not_run(workspace, worker):
    # `dir(os.system(...) or torch.nn.functional)` resolves to a torch module at its end, yet calls.
    from shapelens.engine import Engine

    path = workspace.write("m.py", "import os\nimport torch\nOK = 'silu' in dir(torch.nn.functional)\n"
                                   "BAD = 'silu' in dir(os.system('true') or torch.nn.functional)\n")
    plan, _ = Engine(str(workspace.root), worker=worker)._plan(str(path), path.read_text(), True, None)
    assert "3:0" in plan.files[0].keep and "4:0" not in plan.files[0].keep, (plan.files[0].keep, plan.files[0].skipped)
