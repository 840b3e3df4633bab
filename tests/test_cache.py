"""Editing one module re-probes only that module (and what uses it); the rest comes from the
per-class cache, re-based when it moved, and equals what a fresh probe reports."""

from __future__ import annotations

import textwrap

from shapelens.engine import Engine, ProbeOptions

SOURCE = textwrap.dedent("""
    import torch.nn as nn


    class A(nn.Module):
        def __init__(self, width=16):
            super().__init__()
            self.fc = nn.Linear(width, 32)

        def forward(self, x):
            return self.fc(x)


    class B(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 4)
            self.act = nn.ReLU()

        def forward(self, x):
            h = self.fc(x)
            return self.act(h)


    class C(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(64, 10)
            self.out = nn.Linear(12, 3)

        def forward(self, x):
            y = self.fc(x)
            return self.out(y)
""")


def summary(report):
    return (sorted((f.code, f.range["start"]["line"], f.range["start"]["character"], f.message) for f in report.findings),
            sorted((s.name, s.range["start"]["line"], s.range["start"]["character"], str(s.shape), str(s.input_shape))
                   for s in report.shapes))


def test_only_the_edited_class_is_probed_again(workspace, worker):
    path = workspace.write("m.py", SOURCE)
    engine = Engine(str(workspace.root), worker=worker)
    first = engine.check(str(path), SOURCE)
    assert first.stats["probed"] == 3
    edited = SOURCE.replace("self.act = nn.ReLU()", "self.act = nn.GELU()")
    second = engine.check(str(path), edited)
    assert second.stats["probed"] == 1  # B only: A and C are unchanged
    assert engine.cache.hits == 2
    fresh = Engine(str(workspace.root), worker=worker).check(str(path), edited)
    assert summary(second) == summary(fresh)
    assert [f.code for f in second.findings] == ["feature-mismatch"]  # C's error, from the cache


def test_a_moved_class_is_rebased(workspace, worker):
    path = workspace.write("m.py", SOURCE)
    engine = Engine(str(workspace.root), worker=worker)
    engine.check(str(path), SOURCE)
    moved = SOURCE.replace("class B(nn.Module):", "# a note\n# another\nclass B(nn.Module):")
    second = engine.check(str(path), moved)
    assert second.stats["probed"] == 0  # B and C moved down two lines; A did not move
    fresh = Engine(str(workspace.root), worker=worker).check(str(path), moved)
    assert summary(second) == summary(fresh)


def test_a_probe_without_fix_reprobes_uses_the_cache_but_never_fills_it(workspace, worker):
    """The editor's first answer to an edit skips the re-probes that choose where a fix goes: what
    it found for the edited class is not what a full probe says, so it is not stored."""
    path = workspace.write("m.py", SOURCE)
    engine = Engine(str(workspace.root), worker=worker)
    engine.check(str(path), SOURCE)
    edited = SOURCE.replace("nn.Linear(12, 3)", "nn.Linear(11, 3)")  # C: fc makes 10, out takes 11
    quick = engine.check(str(path), edited, ProbeOptions(verify=False))
    assert quick.stats["unverified"] and quick.stats["probed"] == 1  # a fix to choose: on fc or on out
    assert quick.stats["reused_classes"] == ["A", "B"]
    full = engine.check(str(path), edited)
    assert "unverified" not in full.stats
    assert full.stats["probed"] == 1 and full.stats["reused_classes"] == ["A", "B"]  # C again: not stored
    fresh = Engine(str(workspace.root), worker=worker).check(str(path), edited)
    assert summary(full) == summary(fresh)
    assert engine.check(str(path), edited, ProbeOptions(verify=False)).stats["probed"] == 0  # now all stored
