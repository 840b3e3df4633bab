"""Models a training loop feeds a tensor it shapes itself, run once on that shape.

    model = NeuralNet(input_size, hidden_size, num_classes)
    for images, labels in train_loader:
        images = images.reshape(-1, 28 * 28).to(device)
        outputs = model(images)

The loop never runs in the probe, and the model's own probe made its input up from its first
layer, so a first layer declared for another width (`nn.Linear(input_size * 2, hidden_size)`)
agrees with its made-up input and nothing is found. But the loop says what the model really gets:
every sample reshaped to 784 features. A module-level model the loop calls on one tensor whose
shape the loop's own `view`/`reshape` fixes (all but the batch) is run once on a tensor of that
shape, under the same hooks: a width that disagrees is an error on the layer that declares it,
since the loop, when it runs, feeds exactly that. A run that fails for any other reason is taken
back: that says nothing about widths.
"""

from __future__ import annotations

import ast
import types

import torch
from torch import nn

from shapelens.analysis.index import SourceIndex
from shapelens.analysis.source import span
from shapelens.probe.worker.failures import report_exception
from shapelens.probe.worker.forward_inputs import ASSUMED
from shapelens.probe.worker.loopfeed import assigned_again, in_order, loop_int, module_loops, trusted
from shapelens.probe.worker.state import ShapeMismatch, State
from shapelens.report.codes import is_error

CASTS = frozenset({"to", "cuda", "float", "double", "half", "contiguous", "requires_grad_"})
MAX_RUNS = 4


def _dims(expr: ast.expr, ns: dict, known: dict[str, tuple[int, ...]]) -> tuple[int, ...] | None:
    """The shape `images.reshape(-1, 28 * 28).to(device)` gives, the batch `-1` as the made-up B."""
    while isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr in CASTS:
        expr = expr.func.value
    if isinstance(expr, ast.Name):
        return known.get(expr.id)
    if not (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute)
            and expr.func.attr in ("view", "reshape") and len(expr.args) >= 2 and not expr.keywords):
        return None
    sizes = [loop_int(a, ns, {}) for a in expr.args]
    if sizes[0] != -1 or any(s is None or s <= 0 for s in sizes[1:]):
        return None  # only the batch left to the data: every other dim the loop's own
    return (ASSUMED["B"], *(s for s in sizes[1:] if s is not None))


def _branched(loop: ast.For | ast.While) -> set[int]:
    """The assignments under an `if` in the loop: which of them ran is not known."""
    return {id(n) for stmt in ast.walk(loop) if isinstance(stmt, ast.If)
            for branch in (stmt.body, stmt.orelse) for s in branch for n in ast.walk(s) if isinstance(n, ast.Assign)}


def feed_models(state: State, module: types.ModuleType, index: SourceIndex) -> None:
    again = assigned_again(index.tree)
    ran: set[int] = set()
    for loop in module_loops(index.tree):
        known: dict[str, tuple[int, ...]] = {}
        ns = trusted(module, again, loop)
        branched = _branched(loop)
        for node in in_order(loop):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                dims = _dims(node.value, ns, known) if id(node) not in branched else None
                if dims is not None:
                    known[node.targets[0].id] = dims
                else:
                    known.pop(node.targets[0].id, None)
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 1
                    and not node.keywords):
                continue
            model = ns.get(node.func.id)
            if not isinstance(model, nn.Module) or id(model) in ran or len(ran) >= MAX_RUNS:
                continue
            dims = _dims(node.args[0], ns, known)
            if dims is None:
                continue
            ran.add(id(model))
            mark = state.mark()
            _run(state, model, dims, index.path, span(node))
            said = f"the loop at line {node.lineno} feeds it [{', '.join(map(str, dims[1:]))}] per sample"
            for f in state.findings[mark[0]:]:
                if is_error(f["code"]):
                    head, sep, rest = f["message"].partition("\n")
                    f["message"] = f"{head} ({said}){sep}{rest}"


def _run(state: State, model: nn.Module, dims: tuple[int, ...], path: str, where) -> None:
    """Run `model` on zeros of `dims`; a width check that fails records its error and repairs the
    input, so forward goes on. Kept: what it found and the shapes it gave, unless it stopped on
    something else with no error found (the model needs more than this tensor)."""
    mark = state.mark()
    first = next((p for p in model.parameters()), None)
    device = first.device if first is not None else torch.device(state.device)
    try:
        with torch.no_grad():
            model(torch.zeros(dims, device=device))
    except ShapeMismatch as exc:  # an op the loop's tensor cannot pass: the error it will be
        report_exception(state, exc, path, where, set())
    except Exception:  # noqa: BLE001
        if not state.errors_since(mark):
            state.rollback(mark)
