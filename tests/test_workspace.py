"""Probing across files of a workspace, and the safe subset with real marker files."""

from __future__ import annotations

import textwrap

from helpers import locate, shape_of
from shapelens.report.fixes import apply_edits

ENCODER = textwrap.dedent("""
    import torch.nn as nn


    class Encoder(nn.Module):
        def __init__(self, d_in, d_hidden):
            super().__init__()
            self.inner = nn.Linear(d_in, d_hidden)
            self.outer = nn.Linear(d_in, d_hidden)

        def forward(self, x):
            return self.outer(self.inner(x))
""")

MAIN = textwrap.dedent("""
    import torch
    from models.encoder import Encoder

    enc = Encoder(16, 32)
    x = torch.randn(4, 16)
    out = enc(x)
""")


def test_mismatch_in_an_imported_workspace_module_points_at_that_file(workspace):
    enc = workspace.write("models/encoder.py", ENCODER)
    workspace.write("models/__init__.py", "")
    main = workspace.write("main.py", MAIN)
    report = workspace.check("main.py")
    assert [f.code for f in report.findings] == ["feature-mismatch"]
    finding = report.findings[0]
    assert finding.path == str(enc.resolve())
    assert finding.range == locate(enc, "self.outer = nn.Linear(d_in, d_hidden)", "d_in")
    assert finding.fixes[0].edits[0].new_text == "d_hidden"
    fixed = apply_edits(enc.read_text(), finding.fixes[0].edits)
    enc.write_text(fixed)
    assert workspace.check("main.py").findings == []
    assert shape_of(workspace.check("main.py"), "out").shape == [4, 32]
    assert main.exists()


def test_every_mismatch_of_a_model_is_reported_in_one_probe(workspace):
    workspace.write("m.py", textwrap.dedent("""
        import torch
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.a = nn.Linear(8, 16)
                self.b = nn.Linear(8, 32)
                self.c = nn.Linear(8, 4)

            def forward(self, x):
                return self.c(self.b(self.a(x)))

        net = Net()
        y = net(torch.randn(2, 8))
    """))
    report = workspace.check("m.py")
    assert [(f.code, f.range["start"]["line"]) for f in report.findings] == [("feature-mismatch", 8), ("feature-mismatch", 9)]
    assert [f.fixes[0].edits[0].new_text for f in report.findings] == ["16", "32"]


def test_dataclass_config_defaults_construct_the_model(workspace):
    workspace.write("gpt.py", textwrap.dedent("""
        from dataclasses import dataclass
        import torch.nn as nn

        @dataclass
        class Config:
            vocab: int = 500
            width: int = 64

        class Tiny(nn.Module):
            def __init__(self, cfg: Config):
                super().__init__()
                self.emb = nn.Embedding(cfg.vocab, cfg.width)
                self.head = nn.Linear(cfg.width, cfg.vocab)

            def forward(self, idx):
                h = self.emb(idx)
                return self.head(h)
    """))
    report = workspace.check("gpt.py")
    assert report.findings == []
    h = shape_of(report, "h")
    assert h.symbolic == "[B, T, 64]"  # batch and sequence were assumed, the width is the file's


def test_hint_comment_gives_constructor_arguments(workspace):
    workspace.write("m.py", textwrap.dedent("""
        import torch.nn as nn

        class Head(nn.Module):  # shapelens: Head(width=48)
            def __init__(self, width):
                super().__init__()
                self.fc = nn.Linear(width, 10)

            def forward(self, feats):
                return self.fc(feats)
    """))
    report = workspace.check("m.py")
    assert report.findings == []
    assert shape_of(report, "self.fc", "layer").input_shape == [17, 48]


MARKERS = {
    "open": "open({m!r}, 'w').write('x')",
    "os_system": "os.system('touch {m}')",
    "subprocess": "subprocess.run(['touch', {m!r}])",
    "pathlib": "pathlib.Path({m!r}).write_text('x')",
    "shutil": "shutil.copy(__file__, {m!r})",
    "exec": "exec(\"open({m!r}, 'w')\")",
    "eval": "eval(\"open({m!r}, 'w')\")",
    "importlib": "importlib.import_module('os').system('touch {m}')",
    "torch_save": "torch.save(torch.zeros(1), {m!r})",
    "main_guard": "if __name__ == '__main__':\n    open({m!r}, 'w')",
    "in_loop": "for _ in range(1):\n    open({m!r}, 'w')",
}


def test_module_level_side_effects_never_run(workspace, tmp_path):
    header = "import os, subprocess, pathlib, shutil, importlib\nimport torch\nimport torch.nn as nn\n"
    for name, stmt in MARKERS.items():
        marker = tmp_path / f"marker_{name}"
        helper = workspace.write(f"helper_{name}.py", header + stmt.format(m=str(marker)) + "\n")
        workspace.write(f"main_{name}.py", header + stmt.format(m=str(marker)) +
                        f"\nimport helper_{name}\nlayer = nn.Linear(3, 5)\ny = layer(torch.randn(2, 3))\n")
        report = workspace.check(f"main_{name}.py")
        assert not marker.exists(), f"{name}: a module-level side effect ran"
        assert shape_of(report, "y").shape == [2, 5], name  # the tensor-pure statements still ran
        assert helper.exists()


def test_a_config_fix_for_a_passed_through_argument_edits_the_call_site(workspace):
    blocks = workspace.write("blocks.py", textwrap.dedent("""
        import torch.nn as nn


        class Block(nn.Module):
            def __init__(self, dim, heads):
                super().__init__()
                self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
    """))
    main = workspace.write("main.py", "from blocks import Block\n\nblock = Block(100, 8)\n")
    report = workspace.check("main.py")
    (finding,) = report.findings
    assert finding.code == "invalid-layer-config" and finding.path == str(blocks.resolve())
    assert finding.range == locate(blocks, "nn.MultiheadAttention(dim, heads", "heads")
    fix = finding.fixes[0]
    assert fix.path == str(main.resolve())  # Block itself stays as it is for its other users
    main.write_text(apply_edits(main.read_text(), fix.edits))
    assert "Block(100, 5)" in main.read_text()
    assert workspace.check("main.py").findings == []
