"""A whole `shapelens check` run, structurally: the worker's `import torch` overlaps planning, a
plain file needs no Jedi call, a one-file run takes no warm-up, and no worker outlives the run.
Order of events (SHAPELENS_TIMING=1 marks them on one wall clock), never durations."""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shapelens.analysis.resolve import Resolver, builtin_resolution, import_aliases, own_classes
from shapelens.analysis.source import assigned_names, stmt_key
from shapelens.engine import Engine

MODEL = '''\
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    width: int = 32
    classes: int = 5


class Head(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.proj = nn.Linear(cfg.width, cfg.width * 2)
        self.out = nn.Linear(cfg.width * 2, cfg.classes)

    def forward(self, x):
        return self.out(F.relu(self.proj(x)))


cfg = Config()
model = Head(cfg)
print(len(list(model.parameters())))
y = model(torch.randn(2, cfg.width))
'''

MISMATCH = '''\
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(16, 24)
        self.b = nn.Linear(32, 8)

    def forward(self, x):
        return self.b(self.a(x))
'''

EVENT = re.compile(r"^\s+(?P<t>-?\d+\.\d+)\s+(?P<what>.+)$")


def check(*paths: Path, cwd: Path) -> tuple[subprocess.CompletedProcess, list[tuple[float, str]]]:
    env = {**os.environ, "SHAPELENS_TIMING": "1"}
    done = subprocess.run([sys.executable, "-m", "shapelens", "check", *map(str, paths)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    events = [(float(m["t"]), m["what"]) for m in map(EVENT.match, done.stderr.splitlines()) if m]
    assert events, done.stderr
    return done, events


def first(events: list[tuple[float, str]], prefix: str) -> float:
    return next(t for t, what in events if what.startswith(prefix))


def gone(pid: int) -> bool:
    """Exited (a zombie nobody reaps in a container counts: it runs nothing)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


def wait_gone(pid: int, seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'ws'\n")
    (tmp_path / "model.py").write_text(MODEL)
    (tmp_path / "mismatch.py").write_text(MISMATCH)
    return tmp_path


def test_the_worker_starts_before_the_planner_is_even_imported(workspace):
    done, events = check(workspace / "model.py", cwd=workspace)
    assert done.returncode == 0, done.stdout + done.stderr
    spawned = first(events, "client: worker spawned")
    # ...in this process: the planner's modules (argparse, Jedi) load while the worker imports torch
    assert spawned <= first(events, "cli: arguments parsed") <= first(events, "cli: planner imported")
    assert spawned < first(events, "plan: end model.py") < first(events, "worker: ready")
    assert first(events, "cli: output written") > first(events, "client: worker said answer")


def test_a_plain_file_is_planned_without_any_jedi_call(workspace):
    """torch names from the worker's table, the file's own classes from its tree, builtins by
    name: nothing is left to ask Jedi."""
    engine = Engine(str(workspace))
    try:
        path = str(workspace / "model.py")
        plan = engine.plan(path, MODEL)
        assert engine.resolver.jedi_calls == 0
        kept = set(plan.files[0].keep)
        for line in ("cfg = Config()", "model = Head(cfg)", "y = model(torch.randn(2, cfg.width))"):
            stmt = next(s for s in ast.parse(MODEL).body if ast.get_source_segment(MODEL, s) == line)
            assert stmt_key(stmt) in kept, line  # resolved as Jedi would: the probe runs them
        # an imported workspace class is the workspace's business: Jedi follows the import
        (workspace / "user.py").write_text("from model import Head, Config\n\nnet = Head(Config())\n")
        engine.plan(str(workspace / "user.py"), (workspace / "user.py").read_text())
        assert engine.resolver.jedi_calls > 0
    finally:
        engine.close()


SHADOWED = '''\
import torch.nn as nn


class Net(nn.Module):
    pass


class Wrapped(nn.Module):
    pass


Wrapped = staticmethod(Wrapped)


def build(Net=None, print=None):
    return Net


class Later(nn.Module):
    def again(self):
        return Later()


early = Late()


class Late(nn.Module):
    pass


def open(path):
    return path


a = Net()
b = Later()
c = print("x")
d = open("f")
e = Late()
f = repr(a)
g = vars(b)
'''


def test_own_classes_and_builtins_resolve_as_jedi_resolves_them(tmp_path):
    """Where the tree settles a name, the answer is Jedi's own; where the file binds it
    elsewhere (reassigned, a parameter, a def of that name), or it is read before or inside its
    class statement, it is left to Jedi."""
    path = tmp_path / "shadow.py"
    path.write_text(SHADOWED)
    tree = ast.parse(SHADOWED)
    own = own_classes(tree)
    assert set(own) == {"Later", "Late"}  # Net is also a parameter, Wrapped is reassigned
    bound = assigned_names(tree, imports=False, declared=True) | set(import_aliases(tree))  # as the planner
    resolver = Resolver(str(tmp_path))
    script = resolver.script(str(path), SHADOWED)
    lines = [ln.encode() for ln in SHADOWED.splitlines()]
    answered = set()
    for node in (n for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)):
        mine = resolver.bare_name(str(path), node.id, node.lineno, own, node.id in bound)
        if mine is None:
            continue
        answered.add((node.id, node.lineno))
        jedi = resolver.resolve(script, lines, node, {})
        assert (mine.kind, mine.full_name, mine.path, mine.type) == (jedi.kind, jedi.full_name, jedi.path, jedi.type)
    line = {name: i + 1 for i, text in enumerate(SHADOWED.splitlines()) for name in "befg"
            if text.startswith(f"{name} =")}
    assert answered == {("staticmethod", 12), ("Later", line["b"]), ("Late", line["e"]), ("repr", line["f"]),
                        ("vars", line["g"])}


def test_every_builtin_resolves_as_jedi_resolves_it(tmp_path):
    import builtins

    names = [n for n in dir(builtins) if not n.startswith("_") and callable(getattr(builtins, n))]
    text = "\n".join(names) + "\n"
    path = tmp_path / "b.py"
    path.write_text(text)
    resolver = Resolver(str(tmp_path))
    script = resolver.script(str(path), text)
    lines = [ln.encode() for ln in text.splitlines()]
    for stmt in ast.parse(text).body:
        node = stmt.value
        mine, jedi = builtin_resolution(node.id), resolver.resolve(script, lines, node, {})
        assert mine is not None
        assert (mine.kind, mine.full_name, mine.path, mine.type) == (jedi.kind, jedi.full_name, jedi.path, jedi.type)


def test_a_one_file_run_takes_no_warm_up_and_a_batch_does(workspace):
    done, events = check(workspace / "mismatch.py", cwd=workspace)
    assert done.returncode == 1, done.stdout + done.stderr
    assert any(what == "worker: helper forked" for _, what in events)  # the fix was verified
    assert not any("warm-up" in what for _, what in events)
    done, events = check(workspace / "mismatch.py", workspace / "model.py", cwd=workspace)
    assert done.returncode == 1
    assert any("warm-up" in what for _, what in events)  # before forking a second probe


def test_no_worker_outlives_the_run(workspace):
    done, events = check(workspace / "model.py", cwd=workspace)
    pid = int(re.search(r"worker said ready \(pid (\d+)\)", done.stderr).group(1))
    assert wait_gone(pid), "the worker outlived `shapelens check`"


def test_a_killed_run_takes_its_worker_with_it(workspace):
    """SIGKILL leaves no chance to say shutdown: the worker ends on the end of its input."""
    cli = subprocess.Popen([sys.executable, "-m", "shapelens", "check", str(workspace / "model.py")],
                           cwd=workspace, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    kids: set[int] = set()
    while not kids and time.monotonic() < deadline:
        for task in Path(f"/proc/{cli.pid}/task").glob("*/children"):
            kids.update(int(p) for p in task.read_text().split())
        time.sleep(0.01)
    assert kids, "no worker was started"
    cli.send_signal(signal.SIGKILL)
    cli.wait()
    assert all(wait_gone(pid) for pid in kids)
