"""Losses a training loop calls, fed from the model the loop runs.

A script builds its loss at module level (`criterion = nn.CrossEntropyLoss()`) and calls it only
inside the loop over its data loader, which the probe never runs:

    for images, labels in train_loader:
        outputs = model(images.reshape(-1, 784))
        loss = criterion(outputs, labels)

The model's forward was probed on made-up inputs, so its output is known: the loss is called once
on that output (through the loop's own reshapes of it: `outputs.view(-1, n)`) and a target made
for its kind, class indices for a classification loss, a tensor like the output for a regression
or binary one. A GAN's `adversarial_loss(discriminator(fake), valid)` is fed the same way. Only
a module-level loss of torch's own with no shape yet is fed, only from a model the module-level
code built; a call that fails says nothing (the loop's real data may differ from the probe's).
"""

from __future__ import annotations

import ast
import types
from typing import Any

import torch
from torch import nn

from shapelens.analysis.index import SourceIndex
from shapelens.probe.worker.state import State, layer_info

# Losses that take class indices: one per row of the scores (`[N, C]` -> `[N]`), and per position
# for scores with more dims (`[N, C, d]` -> `[N, d]`).
CLASS_TARGETS = (nn.CrossEntropyLoss, nn.NLLLoss, nn.MultiMarginLoss)
# Losses whose target is shaped like the input.
LIKE_TARGETS = (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss, nn.BCELoss, nn.BCEWithLogitsLoss,
                nn.KLDivLoss, nn.SoftMarginLoss, nn.MultiLabelSoftMarginLoss)
RESHAPES = frozenset({"view", "reshape", "flatten", "squeeze", "unsqueeze", "permute", "transpose",
                      "contiguous", "float", "double", "log_softmax", "softmax", "sigmoid"})
MAX_FEEDS = 8


def module_loops(tree: ast.Module) -> list[ast.For | ast.While]:
    """Loops of module-level code, `if __name__ == "__main__":` blocks included, not functions'."""
    out: list[ast.For | ast.While] = []
    todo: list[ast.stmt] = list(tree.body)
    while todo:
        stmt = todo.pop(0)
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        if isinstance(stmt, ast.For | ast.While):
            out.append(stmt)
        elif isinstance(stmt, ast.If | ast.With | ast.Try):
            todo += [*stmt.body, *getattr(stmt, "orelse", [])]
    return out


def built_by(tree: ast.Module, ns: dict) -> dict[str, type]:
    """Module-level names bound to a model class's instance (`model = RNNLM(vocab, ...).to(device)`),
    read from the text: the statement may not have run (a vocabulary read from the data)."""
    out: dict[str, type] = {}
    for stmt in tree.body:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
            continue
        call = stmt.value
        while isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr in ("to", "cuda"):
            call = call.func.value
        cls = ns.get(call.func.id) if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) else None
        if isinstance(cls, type) and issubclass(cls, nn.Module):
            out[stmt.targets[0].id] = cls
    return out


def in_order(loop: ast.For | ast.While) -> list[ast.AST]:
    """The loop body's statements and expressions as a reader meets them (ast.walk goes breadth
    first: a later rebinding would come before an earlier call)."""
    nodes = [n for stmt in loop.body for n in ast.walk(stmt) if hasattr(n, "lineno")]
    return sorted(nodes, key=lambda n: (n.lineno, n.col_offset))


def bound_in(loop: ast.For | ast.While) -> set[str]:
    """Names the loop assigns (its target too): not the module-level values of those names."""
    return {t.id for n in ast.walk(loop) if isinstance(n, ast.Assign | ast.For | ast.AugAssign | ast.AnnAssign)
            for t in ast.walk(n.targets[0] if isinstance(n, ast.Assign) else n.target) if isinstance(t, ast.Name)}


def assigned_again(tree: ast.Module) -> set[str]:
    """Module-level names bound more than once (`input_size = 784`, later `input_size = 3072` for a
    second dataset): their final value need not be the one a loop saw."""
    seen: dict[str, int] = {}
    todo: list[ast.AST] = [s for s in tree.body if not isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AugAssign | ast.AnnAssign | ast.For) else []
        for t in targets:
            for name in (n.id for n in ast.walk(t) if isinstance(n, ast.Name)):
                seen[name] = seen.get(name, 0) + 1
        todo += list(ast.iter_child_nodes(node))
    return {name for name, count in seen.items() if count > 1}


def trusted(module: types.ModuleType, again: set[str], loop: ast.For | ast.While) -> dict:
    """The module-level names a loop may be read with: not those the loop assigns itself
    (`model = ensemble[i % 2]`), nor those bound more than once (`assigned_again`)."""
    rebound = bound_in(loop)
    return {k: v for k, v in module.__dict__.items() if k not in rebound and k not in again}


def _model_output(state: State, ns: dict, node: ast.expr, outputs: dict[str, Any], models: dict[str, type]) -> Any:
    """The probed output of `model(...)`, of a name the loop bound to one, or of a reshape of either."""
    if isinstance(node, ast.Name):
        return outputs.get(node.id)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        model = ns.get(node.func.id)
        cls = type(model) if isinstance(model, nn.Module) else models.get(node.func.id)
        out = state.outputs.get(cls) if cls is not None else None
        return out if isinstance(out, torch.Tensor) else None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in RESHAPES:
        base = _model_output(state, ns, node.func.value, outputs, models)
        if base is None or node.keywords:
            return None
        args = [loop_int(a, ns, outputs) for a in node.args]
        if any(a is None for a in args):
            return None
        try:
            return getattr(base, node.func.attr)(*args)
        except (RuntimeError, TypeError, ValueError, IndexError):
            return None
    return None


def loop_int(node: ast.expr, ns: dict, outputs: dict[str, Any]) -> int | None:
    """`-1`, `784`, `28 * 28`, a module-level `vocab_size`, `outputs.size(-1)`: the ints a reshape takes."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = loop_int(node.operand, ns, outputs)
        return -value if value is not None else None
    sized, dim = None, None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "size" \
            and len(node.args) == 1 and isinstance(node.func.value, ast.Name):
        sized, dim = outputs.get(node.func.value.id), loop_int(node.args[0], ns, outputs)
    elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "shape" \
            and isinstance(node.value.value, ast.Name):
        sized, dim = outputs.get(node.value.value.id), loop_int(node.slice, ns, outputs)
    if isinstance(sized, torch.Tensor) and dim is not None and -sized.dim() <= dim < sized.dim():
        return int(sized.shape[dim])
    if isinstance(node, ast.Name):
        value = ns.get(node.id)
        return value if type(value) is int else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult | ast.Add | ast.Sub | ast.FloorDiv):
        left, right = loop_int(node.left, ns, outputs), loop_int(node.right, ns, outputs)
        if left is None or right is None:
            return None
        if isinstance(node.op, ast.FloorDiv):
            return left // right if right else None
        return left * right if isinstance(node.op, ast.Mult) else left + right if isinstance(node.op, ast.Add) \
            else left - right
    return None


def _target(loss: nn.Module, scores: torch.Tensor) -> torch.Tensor | None:
    if isinstance(loss, CLASS_TARGETS):
        if scores.dim() < 2:
            return None
        return torch.zeros((scores.shape[0], *scores.shape[2:]), dtype=torch.long, device=scores.device)
    if isinstance(loss, LIKE_TARGETS):
        return torch.zeros_like(scores)
    return None


def feed_loops(state: State, module: types.ModuleType, index: SourceIndex) -> None:
    fed = 0
    again = assigned_again(index.tree)
    for loop in module_loops(index.tree):
        ns = trusted(module, again, loop)
        untrusted = again | bound_in(loop)
        models = {k: v for k, v in built_by(index.tree, ns).items() if k not in untrusted}
        outputs: dict[str, Any] = {}  # names the loop binds to a model's output
        for node in in_order(loop):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Tuple) and target.elts:  # `outputs, states = model(inputs, states)`
                    target = target.elts[0]
                out = _model_output(state, ns, node.value, outputs, models)
                if out is not None and isinstance(target, ast.Name):
                    outputs[target.id] = out
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) >= 1):
                continue
            loss = ns.get(node.func.id)
            info = layer_info(loss) if isinstance(loss, nn.Module) else None
            if info is None or info.first_in is not None or not isinstance(loss, CLASS_TARGETS + LIKE_TARGETS):
                continue
            scores = _model_output(state, ns, node.args[0], outputs, models)
            target = _target(loss, scores) if scores is not None else None
            if target is None or fed >= MAX_FEEDS:
                continue
            fed += 1
            mark = state.mark()
            try:
                with torch.no_grad():
                    loss(scores, target)
            except Exception:  # noqa: BLE001 — the loop's real data may be laid out otherwise
                state.rollback(mark)
                continue
            if state.errors_since(mark):
                state.rollback(mark)
