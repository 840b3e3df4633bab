"""The probe worker's pure parts, tested directly on meta tensors (no worker process): the op
checks, width provenance, fix texts, and the protocol that carries their findings."""

from __future__ import annotations

import types
from fractions import Fraction

import pytest
import torch
from torch import nn

from shapelens.probe import protocol
from shapelens.probe.worker import ops, provenance
from shapelens.probe.worker.fixtext import eval_in, expression_for, expressions_for
from shapelens.report import codes


def label(t: torch.Tensor) -> str:
    return f"<{list(t.shape)}>"


@pytest.fixture
def meta():
    with torch.device("meta"):
        yield


def sides(problem: ops.Problem) -> list[tuple[tuple[int, ...], int, int]]:
    return [(tuple(t.shape), axis, size) for t, axis, size in problem.sides]


# -- ops: a check says what does not fit, and which widths would have to change ---------------------
def test_matmul_names_both_inner_dims_and_the_side_that_would_fit(meta):
    a, b = torch.randn(10, 256), torch.randn(128, 64)
    problem = ops.check("matmul", (a, b), {}, label)
    assert "256" in problem.message and "128" in problem.message and "<[10, 256]>" in problem.message
    assert sides(problem) == [((10, 256), -1, 128), ((128, 64), -2, 256)]
    assert ops.check("matmul", (torch.randn(10, 128), b), {}, label) is None
    assert ops.check("__rmatmul__", (b, a), {}, label) is not None  # b.__rmatmul__(a) is a @ b


def test_cat_stack_view_and_broadcast(meta):
    cat = ops.check("cat", ([torch.randn(2, 3), torch.randn(4, 5)],), {"dim": 0}, label)
    assert "dim 1" in cat.message and sides(cat) == [((2, 3), -1, 5), ((4, 5), -1, 3)]
    assert ops.check("cat", ([torch.randn(2, 3), torch.randn(4, 3)],), {"dim": 0}, label) is None
    view = ops.check("view", (torch.randn(2, 3, 4), 6, 5), {}, label)
    assert "24" in view.message and "30" in view.message
    assert ops.check("reshape", (torch.randn(2, 3, 4), 6, -1), {}, label) is None
    add = ops.check("add", (torch.randn(2, 3), torch.randn(4)), {}, label)
    assert "3" in add.message and "4" in add.message
    assert ops.check("add", (torch.randn(2, 3), torch.randn(3)), {}, label) is None


def test_conv_and_loss_checks(meta):
    conv = ops.check("conv2d", (torch.randn(1, 3, 8, 8), torch.randn(4, 5, 3, 3)), {}, label)
    assert sides(conv) == [((1, 3, 8, 8), -3, 5)]
    loss = ops.check("cross_entropy", (torch.randn(4, 5), torch.randint(0, 5, (3,))), {}, label)
    assert "[4]" in loss.message
    assert ops.check("cross_entropy", (torch.randn(4, 5), torch.randint(0, 5, (4,))), {}, label) is None


def test_a_check_that_trips_over_odd_arguments_leaves_it_to_torch(meta):
    assert ops.check("matmul", (object(), "x"), {}, label) is None
    assert ops.check("not_an_op", (torch.randn(2),), {}, label) is None


def test_shape_only_results_keep_the_input_shape_and_refuse_what_torch_must_judge(meta):
    x = torch.randn(2, 4, 5, 5)
    assert ops.meta_result("gelu", (x,), {}).shape == x.shape
    assert ops.meta_result("relu6", (x, True), {}) is None  # in place: torch does it
    assert ops.meta_result("group_norm", (x, 2), {}).shape == x.shape
    assert ops.meta_result("group_norm", (x, 3), {}) is None  # 4 channels in 3 groups: torch's error
    assert ops.meta_result("group_norm", (x, 2, torch.randn(5)), {}) is None


# -- provenance: which argument a width comes from, through the ops ---------------------------------
def test_a_layer_width_survives_flatten_scaled_and_cat_sums_its_parts(meta):
    a, b = nn.Linear(4, 6), nn.Linear(4, 10)
    x, y = a(torch.randn(2, 4)), b(torch.randn(2, 4))
    provenance.from_layer(a, "out_features", x, -1)
    provenance.from_layer(b, "out_features", y, -1)
    joined = torch.cat([x, y], 1)
    provenance.propagate("cat", ([x, y], 1), {}, joined)
    assert [(p.module, p.size) for p in provenance.get(joined)[-1]] == [(a, 6), (b, 10)]
    grid = torch.randn(2, 3, 5)
    provenance.put(grid, {-2: [provenance.Part(a, "out_features", 3, Fraction(1))]})
    flat = grid.flatten(1)
    provenance.propagate("flatten", (grid, 1), {}, flat)
    (part,) = provenance.get(flat)[-1]
    assert part.module is a and part.factor == 5  # one more feature of `a` adds 5 to the flat width


def test_alternatives_give_the_width_each_producer_would_need(meta):
    a = nn.Linear(4, 6)
    x = a(torch.randn(2, 4))
    provenance.from_layer(a, "out_features", x, -1)
    assert provenance.alternatives(x, -1, 8) == [(a, "out_features", 8)]
    assert provenance.alternatives(torch.randn(2, 6), -1, 8) == []


# -- fix text --------------------------------------------------------------------------------------
def test_eval_in_evaluates_simple_expressions_only():
    scope = {"hidden": 64, "cfg": types.SimpleNamespace(width=32, _secret=1)}
    assert eval_in("hidden * 2", scope) == 128
    assert eval_in("cfg.width", scope) == 32
    assert eval_in("cfg._secret", scope) is None
    assert eval_in("__import__('os')", scope) is None
    assert eval_in("len([1])", scope) is None
    assert eval_in("hidden +", scope) is None


def test_expressions_prefer_the_codes_own_expression_then_a_part_then_a_name_then_the_literal():
    scope = {"embed_dim": 64, "hidden": 128, "width": 128}
    assert expressions_for(128, ["embed_dim * 2"], scope) == ["embed_dim * 2", "hidden", "width", "128"]
    assert expressions_for(64, [], scope, current="embed_dim * 2") == ["embed_dim", "64"]
    assert expressions_for(128, ["17"], scope, limit=2) == ["hidden", "width"]
    assert expression_for(99, ["embed_dim * 2"], scope) == "99"


# -- protocol and codes ----------------------------------------------------------------------------
def test_a_finding_with_an_unknown_code_fails_loudly():
    with pytest.raises(codes.UnknownCode):
        protocol.finding("feature-mismatchh", "m.py", (1, 0, 1, 1), "typo")
    with pytest.raises(codes.UnknownCode):
        codes.severity("no-such-code")


def test_is_error_follows_the_codes_severity():
    assert {name for name in codes.CODES if codes.is_error(name)} == set(codes.CODES) - {codes.PROBE_INCOMPLETE}
    assert codes.severity(codes.PROBE_INCOMPLETE) == "information"


def test_the_result_message_carries_no_worker_internal_keys():
    f = protocol.finding(codes.SHAPE_ERROR, "m.py", (1, 0, 1, 4), "bad",
                         fixes=[protocol.change("n", "m.py", (1, 2, 1, 3), "8")])
    f["alts"], f["fixed_size"] = [], True
    out = protocol.result([f], [], [], [], {})
    assert out["findings"] == [{"code": "shape-error", "path": "m.py", "span": [1, 0, 1, 4], "message": "bad",
                                "related": [], "owner": None,
                                "fixes": [{"title": "Change n to 8",
                                           "edits": [{"path": "m.py", "span": [1, 2, 1, 3], "new_text": "8"}]}]}]
    assert "alts" in f  # the worker's own record keeps them
