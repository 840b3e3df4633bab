"""Constructor branches the probe did not take, and the argument values that take them.

A class probed once is built with one set of arguments, so the layers under `if expansion == 1:`,
under the `else` of `if rnn_type in ['LSTM', 'GRU']:` or in `nn.LayerNorm(d) if normalize_before
else None` get no shape when those arguments chose the other side. Where such a condition tests a
constructor parameter against a constant, the value that takes the branch can be read off it
(`expansion=1`, `rnn_type='RNN_TANH'`, `normalize_before=True`); the class is built and probed once
more with it (run.py), every other argument as before. Conditions on anything else are left alone.
"""

from __future__ import annotations

import ast
import inspect
import time
import types
from collections.abc import Callable
from typing import Any

from torch import nn

from shapelens.analysis.index import SourceIndex, method_def
from shapelens.analysis.source import span
from shapelens.probe.worker.assume import init_params
from shapelens.probe.worker.initreads import compared_strings
from shapelens.probe.worker.state import State
from shapelens.probe.worker.unreached import torch_layer

NO = object()  # no value takes the branch
GIVEN = object()  # any value but None takes it (`if num_classes is not None:`): one assumed by name
MAX_FLIPS = 2  # branch probes per class
MAX_PROBES = 6  # branch probes per file
SHARE = 0.5  # of the time limit: no branch probe starts after it

Flips = dict[str, Any]


class Branch:
    """A constructor branch to take: the parameter values and the conditions they take, for the
    note, and `fill`: parameters left None that the branch's layers read (`nn.Embedding(
    num_train_timesteps, d)` under `time_embedding_type == "learned"`), assumed by name."""

    def __init__(self, flips: Flips, taken: str, fill: tuple[str, ...] = (), given: tuple[str, ...] = ()) -> None:
        self.flips, self.taken, self.fill = flips, taken, fill
        self.given = given  # options left None that the branch takes with a value assumed by name


def _parents(root: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(root) for child in ast.iter_child_nodes(node)}


def conditions(call: ast.AST, parents: dict[ast.AST, ast.AST]) -> list[tuple[ast.expr, bool]]:
    """The conditions `call` sits under, innermost first, each with the truth value that reaches it."""
    out = []
    node = call
    while node in parents:
        up = parents[node]
        if isinstance(up, ast.If | ast.IfExp) and node is not up.test:
            out.append((up.test, node not in (up.orelse if isinstance(up, ast.If) else [up.orelse])))
        if isinstance(up, ast.FunctionDef | ast.AsyncFunctionDef):
            break
        node = up
    return out


def _strings(init: ast.FunctionDef, name: str) -> list[str]:
    """Strings `name` is compared with, and the keys of a dict literal indexed by it
    (`{'RNN_TANH': 'tanh', 'RNN_RELU': 'relu'}[rnn_type]`)."""
    out = compared_strings(init, name)
    for sub in ast.walk(init):
        if isinstance(sub, ast.Subscript) and isinstance(sub.value, ast.Dict) and isinstance(sub.slice, ast.Name) \
                and sub.slice.id == name:
            out += [k.value for k in sub.value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
    return list(dict.fromkeys(out))


def _other(value: Any, avoid: list, strings: list[str]) -> Any:
    """A value of the same kind as `value` that is none of `avoid`."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return max(avoid) + 1 if all(type(a) is int for a in avoid) else NO
    if isinstance(value, str):
        return next((s for s in strings if s not in avoid), NO)
    return NO


def _constants(node: ast.expr) -> list | None:
    if isinstance(node, ast.Constant):
        return [node.value]
    if isinstance(node, ast.List | ast.Tuple | ast.Set) and all(isinstance(e, ast.Constant) for e in node.elts):
        return [e.value for e in node.elts]
    return None


def _param(node: ast.expr, params: dict[str, inspect.Parameter], init: ast.FunctionDef) -> str | None:
    """The parameter `node` is: its name, or `self.upsampler` that `__init__` set to `upsampler`."""
    if isinstance(node, ast.Name):
        return node.id if node.id in params else None
    if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"):
        return None
    for stmt in ast.walk(init):
        if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Attribute)
                and isinstance(stmt.targets[0].value, ast.Name) and stmt.targets[0].value.id == "self"
                and stmt.targets[0].attr == node.attr):
            value = stmt.value
            return value.id if isinstance(value, ast.Name) and value.id in params else None
    return None


def _compare(test: ast.Compare, want: bool, params: dict[str, inspect.Parameter],
             init: ast.FunctionDef) -> Flips | None:
    name = _param(test.left, params, init)
    if len(test.ops) != 1 or name is None:
        return None
    op, consts = test.ops[0], _constants(test.comparators[0])
    if not consts:
        return None
    c = consts[0]
    strings = _strings(init, name)
    value: Any = NO
    if isinstance(op, ast.Is | ast.IsNot) and c is None:
        value = None if want == isinstance(op, ast.Is) else GIVEN
    elif isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn):
        equal = want == isinstance(op, ast.Eq | ast.In)
        value = c if equal else _other(c, consts, strings)
    elif type(c) in (int, float) and isinstance(op, ast.Gt | ast.GtE | ast.Lt | ast.LtE):
        above = isinstance(op, ast.Gt | ast.GtE) == want  # the value must lie above the constant
        step = (1 if type(c) is int else 0.1) if isinstance(op, ast.Gt | ast.Lt) == want else 0  # `dropout > 0.`
        value = c + step if above else c - step
        if value < 0:
            value = NO
    return None if value is NO else {name: value}


def satisfy(test: ast.expr, want: bool, params: dict[str, inspect.Parameter], init: ast.FunctionDef) -> Flips | None:
    """Parameter values under which `test` is `want`; None when the test is on something else."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return satisfy(test.operand, not want, params, init)
    if (name := _param(test, params, init)) is not None:
        p = params[name]
        if isinstance(p.default, bool) or p.annotation in (bool, "bool"):
            return {name: want}
        if p.default is None:
            return {name: GIVEN if want else None}
        return None
    if isinstance(test, ast.Compare):
        return _compare(test, want, params, init)
    if isinstance(test, ast.BoolOp):
        every = isinstance(test.op, ast.And) == want  # `a and b` true, `a or b` false: each term so
        found: Flips = {}
        for term in test.values:
            got = satisfy(term, want, params, init)
            if not every and got is not None:
                return got
            if every:
                if got is None or any(k in found and found[k] != v for k, v in got.items()):
                    return None
                found.update(got)
        return found or None
    return None


def branch_flips(cls: type, node: ast.ClassDef, unshaped: set[tuple]) -> list[Branch]:
    """Argument values that take the branches of `cls.__init__` holding the layer calls in
    `unshaped` (their spans), each with the conditions it takes."""
    init = method_def(node, "__init__")
    if init is None:
        return []
    try:
        params = init_params(cls)
    except (TypeError, ValueError):
        return []
    parents = _parents(init)
    out: list[Branch] = []
    for call in ast.walk(init):
        if not isinstance(call, ast.Call) or tuple(span(call)) not in unshaped:
            continue
        flips: Flips = {}
        taken = []
        for test, want in conditions(call, parents):
            got = satisfy(test, want, params, init)
            if got is None or any(k in flips and flips[k] != v for k, v in got.items()):
                continue
            flips.update(got)
            taken.append(f"{'' if want else 'the else of '}`{ast.unparse(test)}` (line {test.lineno})")
        given = tuple(sorted(k for k, v in flips.items() if v is GIVEN))
        flips = {k: v for k, v in flips.items() if v is not GIVEN}
        if (flips or given) and all(b.flips != flips or b.fill != given for b in out):
            read = {n.id for a in [*call.args, *(k.value for k in call.keywords)] for n in ast.walk(a)
                    if isinstance(n, ast.Name)}
            fill = tuple(sorted({n for n in read if n in params and params[n].default is None and n not in flips}
                                | set(given)))
            out.append(Branch(flips, ", ".join(taken), fill, given))
    return _merged(out)[:MAX_FLIPS]


def _merged(branches: list[Branch]) -> list[Branch]:
    """Branches whose values agree taken together, in as few probes as that allows: a class
    with eight optional layers under eight flags (x-transformers' Attention) is probed once
    with all eight, not eight times."""
    groups: list[Branch] = []
    for b in branches:
        group = next((g for g in groups if all(g.flips.get(k, v) == v for k, v in b.flips.items())), None)
        if group is None:
            groups.append(Branch(dict(b.flips), b.taken, b.fill, b.given))
        else:
            group.flips.update(b.flips)
            group.taken += ", " + b.taken
            group.fill = tuple(sorted(set(group.fill) | set(b.fill)))
            group.given = tuple(sorted(set(group.given) | set(b.given)))
    return groups


def probe_branches(state: State, module: types.ModuleType, index: SourceIndex,
                   probe: Callable[[type, ast.ClassDef, Branch], None], started: float, timeout: float,
                   assumed: set[str]) -> None:
    """Probe once more each class of the file whose constructor ran but left layers unbuilt under
    a branch its arguments decide, with the values that take it (`probe`). The classes probed
    with assumed arguments (`assumed`) go first; where the workspace builds a class, its values
    are the ones meant, and what other values find is said, not reported (run.py)."""
    target = index.path
    built = {tuple(li.site.span) for li in state.layers if li.site is not None and li.site.path == target}
    done = 0
    todo = []
    for cls in [v for v in list(module.__dict__.values()) if isinstance(v, type) and issubclass(v, nn.Module)
                and v.__module__ == module.__name__]:
        node = index.class_def(cls.__name__)
        init = method_def(node, "__init__") if node is not None else None
        if node is None or init is None or method_def(node, "forward") is None:
            continue
        calls = [c for c in ast.walk(init) if isinstance(c, ast.Call) and torch_layer(c.func, module.__dict__)]
        unbuilt = {tuple(span(c)) for c in calls} - built
        ran = cls in state.called or any(init.lineno <= s[0] <= (init.end_lineno or 0) for s in built)
        if unbuilt and ran:  # else nothing is missing, or the constructor never ran
            todo.append((cls, node, unbuilt))
    # The classes missing the most layers first: the per-file budget goes where it shapes most.
    for cls, node, unbuilt in sorted(todo, key=lambda t: (t[0].__name__ not in assumed, -len(t[2]))):
        unbuilt -= built
        for branch in branch_flips(cls, node, unbuilt) if unbuilt else []:
            if done >= MAX_PROBES or time.monotonic() > started + timeout * SHARE:
                return
            done += 1
            probe(cls, node, branch)
            built = {tuple(li.site.span) for li in state.layers if li.site is not None and li.site.path == target}
