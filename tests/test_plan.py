"""The static plan: Jedi resolution of callees and the tensor-pure subset (no torch here)."""

from __future__ import annotations

import ast
import textwrap

from shapelens.analysis.plan import FilePlanner, build_plan
from shapelens.analysis.resolve import CalleeKind, Resolver
from shapelens.analysis.source import stmt_key

ALIASES = textwrap.dedent("""
    import torch
    import torch.nn as nn
    import torch.nn as tnn
    from torch.nn import Linear as L
    from torch import nn as nn2


    class Linear:
        def __init__(self, a, b):
            pass


    a = nn.Linear(1, 2)
    b = torch.nn.Linear(1, 2)
    c = L(1, 2)
    d = tnn.Linear(1, 2)
    e = nn2.Linear(1, 2)
    f = Linear(1, 2)
""")


def resolutions(tmp_path, text, name="m.py"):
    path = tmp_path / name
    path.write_text(text)
    resolver = Resolver(str(tmp_path))
    tree = ast.parse(text)
    planner = FilePlanner(resolver, str(path), text, tree)
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            out[node.targets[0].id] = planner.resolve(node.value.func)
    return out


def test_every_alias_of_linear_resolves_to_torch_and_a_local_linear_does_not(tmp_path):
    res = resolutions(tmp_path, ALIASES)
    for name in "abcde":
        assert res[name].kind is CalleeKind.TORCH, name
        assert res[name].full_name == "torch.nn.modules.linear.Linear", name
    assert res["f"].kind is not CalleeKind.TORCH
    assert res["f"].full_name == "m.Linear"


def test_workspace_module_from_another_file_resolves(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "blocks.py").write_text(textwrap.dedent("""
        import torch.nn as nn
        from dataclasses import dataclass

        class Base(nn.Module):
            pass

        class Encoder(Base):
            def __init__(self, d):
                super().__init__()

        @dataclass
        class Config:
            d: int = 8

        class Trainer:
            def __init__(self):
                print("side effect")
    """))
    res = resolutions(tmp_path, "from blocks import Encoder, Config, Trainer\n"
                                "enc = Encoder(4)\ncfg = Config()\nt = Trainer()\n")
    assert res["enc"].kind is CalleeKind.WORKSPACE_MODULE
    assert res["cfg"].kind is CalleeKind.WORKSPACE_CONFIG
    assert res["t"].kind is CalleeKind.UNKNOWN


SCRIPT = textwrap.dedent("""
    import os
    import subprocess
    import argparse
    import torch
    import torch.nn as nn
    from torch.utils.data import DataLoader

    vocab = 1000
    dim = vocab // 8
    layer = nn.Linear(dim, 4)
    x = torch.randn(2, dim)
    y = layer(x)
    print(y.shape)
    log = open("log.txt", "w")
    os.system("echo hi")
    subprocess.run(["ls"])
    parser = argparse.ArgumentParser()
    loader = DataLoader([1, 2, 3])
    torch.save(layer.state_dict(), "w.pt")
    for step in range(3):
        y = layer(x)
    z = y.sum()
    try:
        w = layer(torch.zeros(1, dim))
    except RuntimeError:
        pass
    if __name__ == "__main__":
        q = layer(x)
        open("main.txt", "w")
""")


def test_only_tensor_pure_statements_are_kept(tmp_path):
    path = tmp_path / "script.py"
    path.write_text(SCRIPT)
    plan = build_plan(Resolver(str(tmp_path)), str(path), SCRIPT)
    tree = ast.parse(SCRIPT)
    kept_lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and stmt_key(node) in plan.files[0].keep:
            kept_lines.add(SCRIPT.splitlines()[node.lineno - 1].strip())
    assert {"vocab = 1000", "dim = vocab // 8", "layer = nn.Linear(dim, 4)", "x = torch.randn(2, dim)",
            "y = layer(x)", "w = layer(torch.zeros(1, dim))", "import os",
            "q = layer(x)"} <= kept_lines  # the __main__ block's tensor-pure subset runs
    for skipped in ("print(y.shape)", 'log = open("log.txt", "w")', 'os.system("echo hi")', 'subprocess.run(["ls"])',
                    "parser = argparse.ArgumentParser()", "loader = DataLoader([1, 2, 3])",
                    'torch.save(layer.state_dict(), "w.pt")', "for step in range(3):", 'open("main.txt", "w")',
                    'if __name__ == "__main__":',
                    "z = y.sum()"):  # `y` is unknown after the loop rebinds it
        assert skipped not in kept_lines, skipped


def test_names_from_skipped_statements_become_unknown(tmp_path):
    text = "import torch\nimport json\ncfg = json.load(open('c.json'))\nx = torch.randn(cfg['n'], 4)\n"
    path = tmp_path / "m.py"
    path.write_text(text)
    plan = build_plan(Resolver(str(tmp_path)), str(path), text)
    assert "4:0" not in plan.files[0].keep and "3:0" not in plan.files[0].keep
