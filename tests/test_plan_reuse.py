"""The structural facts behind the speed targets (the timings themselves live in `make bench`):
torch names resolve from the worker's table without Jedi, unchanged statements are not planned
again, the CLI's worker starts before planning ends, and the editor process never imports torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import asdict
from pathlib import Path

import pytest

from shapelens.analysis.plan import build_plan
from shapelens.analysis.resolve import CalleeKind, Resolver
from shapelens.analysis.source import parse
from shapelens.probe.torchnames import TorchNames

MODEL = textwrap.dedent("""\
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from torch.nn import LayerNorm


    class Block(nn.Module):
        def __init__(self, d=16):
            super().__init__()
            self.fc = nn.Linear(d, d)
            self.norm = LayerNorm(d)

        def forward(self, x):
            return F.relu(self.norm(self.fc(x)))


    width = 16
    layer = nn.Linear(width, 2 * width)
    x = torch.randn(4, width)
    y = layer(x)
    z = torch.cat([y, y], dim=-1)
    """)


@pytest.fixture(scope="module")
def names(worker, tmp_path_factory):
    return TorchNames(worker, folder=tmp_path_factory.mktemp("torch-names"))


def plan_of(resolver: Resolver, path, text: str, caches=None):
    return build_plan(resolver, str(path), text, parse(text, str(path)), caches=caches)


def test_torch_names_resolve_without_jedi(tmp_path, names):
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    resolver = Resolver(str(tmp_path), torch_names=names)
    plan = plan_of(resolver, path, MODEL)
    assert resolver.jedi_calls == 0
    kept = set(plan.files[0].keep)
    assert {"18:0", "19:0", "20:0", "21:0"} <= kept  # every torch call planned as torch's
    assert names.source in {"worker", "disk"}


def test_denied_torch_functions_stay_denied_through_the_table(tmp_path, names):
    text = "import torch\nfrom torch import nn\nstate = torch.load('w.pt')\nm = nn.Linear(2, 2)\nm.load_state_dict(state)\n"
    resolver = Resolver(str(tmp_path), torch_names=names)
    assert resolver.resolve_torch_path("torch.load").kind is CalleeKind.TORCH_DENIED
    assert resolver.resolve_torch_path("torch.nn.Module.load_state_dict").kind is CalleeKind.TORCH_DENIED
    assert resolver.resolve_torch_path("torch.nn.Linear").full_name == "torch.nn.modules.linear.Linear"
    plan = plan_of(resolver, tmp_path / "m.py", text)
    assert "3:0" in dict(plan.files[0].skipped)


def test_a_local_name_shadowing_torch_is_asked_of_jedi(tmp_path, names):
    """`Linear` imported from torch but also defined here is not torch's: Jedi decides, and an
    unknown callee is never run."""
    text = textwrap.dedent("""\
        import os
        from torch.nn import Linear


        def Linear(a, b):
            return os.system("echo hi")


        layer = Linear(2, 3)
        """)
    resolver = Resolver(str(tmp_path), torch_names=names)
    plan = plan_of(resolver, tmp_path / "shadow.py", text)
    assert resolver.jedi_calls > 0
    assert "9:0" in dict(plan.files[0].skipped)


def test_an_unchanged_statement_is_not_planned_again(tmp_path, names):
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    resolver = Resolver(str(tmp_path), torch_names=names)
    caches: dict = {}
    plan_of(resolver, path, MODEL, caches)
    cache = caches[str(path.resolve())]
    assert cache.reused == 0 and len(cache.replanned) > 5

    edits = [  # one after the other, as typed
        lambda t: t.replace("self.fc = nn.Linear(d, d)", "self.fc = nn.Linear(d, 2 * d)"),  # inside a class
        lambda t: t.replace("layer = nn.Linear(width, 2 * width)", "layer = nn.Linear(width, 3 * width)"),
        lambda t: t + "w = z.sum()\n",  # a line at the end
        lambda t: "# a comment that moves every line\n" + t,
    ]
    text = MODEL
    for edit in edits:
        text = edit(text)
        changed = plan_of(resolver, path, text, caches)
        fresh = plan_of(Resolver(str(tmp_path), torch_names=names), path, text)
        assert asdict(changed.files[0]) == asdict(fresh.files[0])  # reuse never changes the plan
        assert len(cache.replanned) <= 1, cache.replanned
        assert cache.reused >= 9


def test_the_cli_starts_its_worker_before_planning_ends(monkeypatch, tmp_path):
    from shapelens.cli import probing
    from shapelens.engine import Engine, ProbeOptions

    seen: list[bool] = []
    plan = Engine._plan

    def planning(self, *args):
        seen.append(self.worker.alive)  # the worker process already runs (importing torch)
        return plan(self, *args)

    monkeypatch.setattr(Engine, "_plan", planning)
    path = tmp_path / "m.py"
    path.write_text(MODEL)
    [report] = probing.probe_batch([(str(path), MODEL)], ProbeOptions(), None)
    assert seen == [True]
    assert report.error_count == 0


def test_the_editor_process_never_imports_torch(tmp_path):
    """Planning with the torch name table, in a fresh process: torch's names come from the
    worker (or the disk cache), not from importing torch here."""
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    code = textwrap.dedent(f"""
        import sys
        from shapelens.engine import Engine
        engine = Engine({str(tmp_path)!r})
        report = engine.check({str(path)!r})
        engine.close()
        assert report.error_count == 0, report.findings
        assert engine.resolver.jedi_calls == 0
        assert "torch" not in sys.modules, "the editor side imported torch"
        print("ok")
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "ok", out.stderr


def test_a_file_of_an_installed_package_keeps_its_import_name(tmp_path, monkeypatch):
    """A model file in site-packages (probed where pip put it) is run under its real dotted name,
    so its relative imports reach the installed package instead of failing."""
    from shapelens.analysis.plan import module_name_for
    from shapelens.engine import Engine
    from shapelens.probe.client import WorkerClient

    site = tmp_path / "lib" / "python3.11" / "site-packages"
    pkg = site / "fakepkg" / "models"
    pkg.mkdir(parents=True)
    (site / "fakepkg" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (site / "fakepkg" / "layers.py").write_text("import torch.nn as nn\n\nWIDTH = 8\nLinear = nn.Linear\n")
    target = pkg / "modeling_fake.py"
    target.write_text(textwrap.dedent("""\
        import torch.nn as nn
        from ..layers import WIDTH


        class Fake(nn.Module):
            def __init__(self, width=WIDTH):
                super().__init__()
                self.fc = nn.Linear(width, 4)
                self.out = nn.Linear(5, 2)

            def forward(self, x):
                return self.out(self.fc(x))
        """))
    assert module_name_for(str(target), str(pkg)) == "fakepkg.models.modeling_fake"
    monkeypatch.setenv("PYTHONPATH", str(site))  # the worker's interpreter has the package installed
    worker = WorkerClient()
    engine = Engine(str(pkg), worker=worker)
    try:
        report = engine.check(str(target))
    finally:
        engine.close()
    assert [f.code for f in report.findings if f.severity == "error"] == ["feature-mismatch"], report.findings


def test_the_benchmarks_realistic_edits_hit_the_caches(worker, tmp_path):
    """The edits `make bench` times (bench/users.py: typing inside a forward, one constructor
    argument, a line at the end) on the GPT-2 file: planning redoes only the edited statement
    (and a statement that needs Jedi, which is never stored), and a line at the end re-probes no
    class at all."""
    import importlib.util

    from shapelens.engine import Engine

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("bench_users", root / "bench" / "users.py")
    assert spec is not None and spec.loader is not None
    users = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(users)
    path = tmp_path / "gpt2_small.py"
    text = (root / "bench" / "models" / "gpt2_small.py").read_text()
    path.write_text(text)
    engine = Engine(str(tmp_path), worker=worker)
    engine.check(str(path), text)
    cache = engine.statements[str(path.resolve())]
    kinds = set()
    for kind, new in users.realistic_edits(text):
        hits = engine.cache.hits
        report = engine.check(str(path), new)
        kinds.add(kind)
        assert len(cache.replanned) <= 2 and cache.reused >= 10, (kind, cache.replanned)
        if kind == "line at the end":
            assert engine.cache.hits - hits == 4, kind  # CausalSelfAttention, MLP, Block, GPT
            assert report.error_count == 0
    assert kinds == {"typing inside forward", "constructor argument", "line at the end"}
