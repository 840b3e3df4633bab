"""Reach into library-style model files (the shape of x-transformers & co.): layer factories
made with `functools.partial` at module level, and a forward whose input rank only a later
layer tells (it fails, without a width error, on the rank the first layer suggests). Each case
is a small model of our own; each probe is a real worker process."""

from __future__ import annotations

from helpers import by_code

PARTIAL = """\
from functools import partial

import torch
from torch import nn

LinearNoBias = partial(nn.Linear, bias=False)


class Gate(nn.Module):
    def __init__(self, dim, hidden=48):
        super().__init__()
        self.proj_in = LinearNoBias(dim, hidden)
        self.proj_out = LinearNoBias(hidden, dim)

    def forward(self, x):
        return x * self.proj_out(self.proj_in(x)).sigmoid()


model = Gate(32)
"""

RANKED = """\
import torch
from torch import nn


class SplitHeads(nn.Module):
    # Knows its recipe per input rank, like an einops layer: any other rank is a KeyError.
    def __init__(self):
        super().__init__()
        self.recipes = {3: (0, 2, 1)}

    def forward(self, x):
        return x.permute(*self.recipes[x.ndim])


class Gates(nn.Module):
    def __init__(self, dim, heads=4):
        super().__init__()
        self.to_gates = nn.Sequential(nn.Linear(dim, heads), SplitHeads(), nn.LogSigmoid())

    def forward(self, x):
        return self.to_gates(x).cumsum(dim=-1)


model = Gates(32)
"""


def _layer(report, name):
    return next(s for s in report.shapes if s.kind == "layer" and s.name == name)


def test_a_layer_factory_made_with_partial_builds_the_model(workspace):
    workspace.write("gate.py", PARTIAL)
    report = workspace.check("gate.py")
    assert not [f for f in report.findings if "NameError" in f.message], [f.message for f in report.findings]
    assert _layer(report, "self.proj_out").output_shape[-1] == 32


def test_a_width_bug_through_the_partial_factory_is_reported(workspace):
    text = PARTIAL.replace("LinearNoBias(hidden, dim)", "LinearNoBias(hidden + 1, dim)")
    workspace.write("gate.py", text)
    report = workspace.check("gate.py")
    errors = [f for f in report.findings if f.severity == "error"]
    assert [f.range["start"]["line"] for f in errors] == [text.splitlines().index(
        "        self.proj_out = LinearNoBias(hidden + 1, dim)")], [f.message for f in errors]


def test_a_rank_only_a_later_layer_tells_is_found_when_the_first_rank_fails(workspace):
    workspace.write("gates.py", RANKED)
    report = workspace.check("gates.py")
    assert not [f for f in report.findings if "KeyError" in f.message], [f.message for f in report.findings]
    assert _layer(report, "self.to_gates").input_shape == [17, 13, 32]
    assert by_code(report, "feature-mismatch") == []
