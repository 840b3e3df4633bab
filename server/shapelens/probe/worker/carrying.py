"""How an expression in a forward body carries one of its parameters to a layer: as it is or
through methods that keep it recognisable (`x.view(-1, 784)`, `x.add(1).div(2)`, `x / 3`), an
einops `rearrange` (`'b n d -> (b n) d'`, or a patch pattern whose layer says the patch width),
one position of it (`x[:, 0]`), or a name holding it (`kv = default(context, x)`)."""

from __future__ import annotations

import ast
import re
from typing import Any

import torch
from torch import nn

from shapelens.probe.worker.bodyrank import fit, int_constant
from shapelens.probe.worker.patchify import image_spec, keeps_last
from shapelens.probe.worker.rules import Spec

# Methods that leave what a layer needs recognisable in their input.
MASK_NAME = re.compile(r"(^|_)mask$")  # `x_mask`, `mask`: multiplied into an input, keeps its shape
PASS_THROUGH = frozenset({"view", "reshape", "long", "float", "int", "half", "double", "bfloat16", "to", "type",
                          "contiguous", "clone", "detach", "cuda", "cpu", "requires_grad_", "type_as",
                          # elementwise (`x.add(1).div(2)`: an image rescaled before the first conv)
                          "add", "sub", "mul", "div", "clamp", "neg", "abs", "exp", "tanh", "sigmoid", "sqrt"})
SAME_SHAPE = frozenset({"type", "to", "float", "half", "double", "long", "int", "bfloat16", "contiguous", "clone",
                        "detach", "cuda", "cpu", "type_as", "requires_grad_"})
# `F.silu(vec)`, `torch.tanh(x)`: torch's elementwise functions, which keep the shape of what they take.
ELEMENTWISE = frozenset({"silu", "gelu", "relu", "relu6", "leaky_relu", "elu", "selu", "celu", "mish", "softplus",
                         "hardswish", "hardsigmoid", "sigmoid", "tanh", "dropout", "normalize", "abs", "exp"})
_TORCH_PREFIXES = frozenset({"F", "functional", "nn.functional", "torch.nn.functional", "torch"})


def reaches(arg: ast.expr, param: str | ast.expr) -> bool:
    """`x` as `carries` says, `rearrange(x, pattern, ...)` of it, one position of it (`x[:, 0]`),
    or its dims reordered (`x.permute(0, 2, 1)`)."""
    return carries(arg, param) or (einops_call(arg) is not None and carries(arg.args[0], param)) or bool(
        dropped(arg, param)) or _reordered(arg, param) is not None


def _reordered(arg: ast.expr, param: str | ast.expr) -> tuple[str, tuple[int, ...]] | None:
    """`x.permute(0, 2, 1)` / `x.transpose(1, 2)` of a carried `x`, with constant dims: the
    method and its dims."""
    if not (isinstance(arg, ast.Call) and isinstance(arg.func, ast.Attribute)
            and arg.func.attr in ("permute", "transpose") and not arg.keywords and carries(arg.func.value, param)):
        return None
    dims = [int_constant(a) for a in arg.args]
    if not dims or any(d is None for d in dims) or arg.func.attr == "transpose" and len(dims) != 2:
        return None
    return arg.func.attr, tuple(d for d in dims if d is not None)


def leading_reorder(fn: ast.FunctionDef, param: str) -> ast.expr | None:
    """`x.transpose(1, -1)` when the body's first statement rebinds `x` to it and no later one
    reorders `x` back (`x = x.transpose(1, 2)` again before the layer), else None."""
    body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    first = body[0] if body else None
    if not (isinstance(first, ast.Assign) and len(first.targets) == 1 and isinstance(first.targets[0], ast.Name)
            and first.targets[0].id == param and _reordered(first.value, param) is not None):
        return None
    for node in ast.walk(fn):
        if node is not first and isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == param
                                                                      for t in node.targets):
            if any(_reordered(n, param) is not None for n in ast.walk(node.value)):
                return None  # reordered again: which order a layer meets is not told here
    return first.value


def unreordered(spec: Any, arg: ast.expr, names: list) -> Any:
    """What `x` looks like when a layer takes `spec` of `x.permute(0, 2, 1)` (or a transpose):
    the spec's dims put back in x's order; the spec as is for any other argument, None when the
    reorder does not fit the spec's rank."""
    found = next((r for n in names if (r := _reordered(arg, n)) is not None), None)
    if found is None or not isinstance(spec, Spec):
        return spec
    method, dims = found
    need = len(dims) if method == "permute" else max(d + 1 if d >= 0 else 1 - d for d in dims)
    if len(spec.dims) < need:  # a Linear's `[B, 13]` for `x.permute(0, 2, 1)`: first `[B, T, 13]`
        spec = fit(spec, (need, True))
    rank = len(spec.dims)
    if any(not -rank <= d < rank for d in dims):
        return None
    if method == "transpose":
        a, b = (d % rank for d in dims)
        order = list(range(rank))
        order[a], order[b] = order[b], order[a]
    else:
        order = [d % rank for d in dims]
        if len(order) != rank or sorted(order) != list(range(rank)):
            return None
    if order[0] != 0:
        return None  # the batch would move: not a reorder the probe can undo
    back = [None] * rank  # the permuted tensor's dim i is x's dim order[i]
    for i, d in enumerate(order):
        back[d] = spec.dims[i]
    if "L" in back and back[-1] != "L" and "T" not in back:
        # A Conv1d's length moved before the channels (`conv(x.permute(0, 2, 1))`): x is a
        # sequence, [B, T, C], made up as long as the other sequence inputs beside it.
        back[back.index("L")] = "T"
    return Spec(tuple(back), spec.dtype, spec.high)


def dropped(arg: ast.expr, param: str | ast.expr) -> int:
    """How many leading dims `x[:, 0]` (`x[:, -1]`, `x[:, 0, :]`) indexes away, keeping the last:
    a pooler's first token. 0 for anything else."""
    if not isinstance(arg, ast.Subscript) or not isinstance(arg.slice, ast.Tuple) or not carries(arg.value, param):
        return 0
    items = arg.slice.elts
    if not all(isinstance(i, ast.Slice) or _int_index(i) for i in items) or not any(isinstance(i, ast.Slice)
                                                                                      for i in items):
        return 0
    return sum(1 for i in items if _int_index(i))


def _int_index(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) is int


def einops_call(arg: ast.expr) -> ast.Call | None:
    """`rearrange(x, 'pattern', **lengths)` (einops' function, or `einops.rearrange`)."""
    if not isinstance(arg, ast.Call) or len(arg.args) < 2 or not isinstance(arg.args[1], ast.Constant) \
            or not isinstance(arg.args[1].value, str):
        return None
    name = arg.func.attr if isinstance(arg.func, ast.Attribute) else getattr(arg.func, "id", "")
    return arg if name == "rearrange" else None


def before_pattern(spec: Any, call: ast.Call, fn: ast.FunctionDef, owner: nn.Module) -> Any:
    """What goes into `rearrange(x, pattern)` when the layer after it takes `spec`: the same
    last dims when the pattern keeps the last axis (`'b n d -> (b n) d'`), the image a patch
    pattern cuts when the layer says the patch width; else nothing is known."""
    pattern = call.args[1].value
    if not isinstance(spec, Spec) or not spec.dims or not isinstance(spec.dims[-1], int):
        return None
    if keeps_last(pattern):
        return spec
    lengths = {k.arg: _number(k.value, fn, owner) for k in call.keywords if k.arg}
    return image_spec(pattern, lengths, spec.dims[-1])


def _number(expr: ast.expr, fn: ast.FunctionDef, owner: nn.Module, depth: int = 0) -> int | None:
    """An int the forward has without running: a literal, `self.patch_size`, or a local bound
    to one (`b, p = img.shape[0], self.patch_size`)."""
    if isinstance(expr, ast.Constant) and type(expr.value) is int:
        return expr.value
    if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id == "self":
        value = getattr(owner, expr.attr, None)
        return value if type(value) is int else None
    if not isinstance(expr, ast.Name) or depth > 2:
        return None
    for node in ast.walk(fn):
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target, value = node.targets[0], node.value
        if isinstance(target, ast.Name) and target.id == expr.id:
            return _number(value, fn, owner, depth + 1)
        if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
            for t, v in zip(target.elts, value.elts):
                if isinstance(t, ast.Name) and t.id == expr.id:
                    return _number(v, fn, owner, depth + 1)
    return None


def carries(arg: ast.expr, param: str | ast.expr) -> bool:
    """`x`, or `x` through methods that keep it recognisable (`x.view(-1, 784)`, `x.long()`) or torch's
    elementwise functions (`F.silu(x)`)."""
    while True:
        if not isinstance(param, str):
            if ast.dump(arg) == ast.dump(param):
                return True
        elif isinstance(arg, ast.Name):
            return arg.id == param
        if isinstance(arg, ast.Call) and isinstance(arg.func, ast.Attribute) and arg.func.attr in PASS_THROUGH:
            arg = arg.func.value
            continue
        if isinstance(arg, ast.Call) and isinstance(arg.func, ast.Attribute) and arg.func.attr in ELEMENTWISE \
                and arg.args and ast.unparse(arg.func.value) in _TORCH_PREFIXES:
            arg = arg.args[0]
            continue
        if isinstance(arg, ast.BinOp) and isinstance(arg.right, ast.Constant):  # `x / 3`, `x * 2 - 1`
            arg = arg.left
            continue
        if isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Mult) and isinstance(arg.right, ast.Name) \
                and MASK_NAME.search(arg.right.id):  # `x * x_mask` (vits): masked, the same shape
            arg = arg.left
            continue
        return False


def aliases(fn: ast.FunctionDef, param: str) -> list[str]:
    """`param` and the names that hold it as it is (`sample = z`, `kv = default(context, x)`,
    `q, k = x, kv`) before anything rebinds them."""
    names = [param]
    for node in ast.walk(fn):
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target, value = node.targets[0], node.value
        pairs = list(zip(target.elts, value.elts)) if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) \
            and len(target.elts) == len(value.elts) else [(target, value)]
        for t, v in pairs:
            source = _held(v)
            if isinstance(t, ast.Name) and source in names and t.id not in names:
                names.append(t.id)
    return names


def _held(value: ast.expr) -> str | None:
    """The name a value is when given: `z`, `default(context, x)` (the helper libraries use for
    `context if context is not None else x`), `context if context is not None else x`, `a or b`."""
    if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "default" and value.args:
        value = value.args[0]
    elif isinstance(value, ast.IfExp):
        value = value.body
    elif isinstance(value, ast.BoolOp) and isinstance(value.op, ast.Or):
        value = value.values[0]
    # `h = x.type(self.dtype)` (guided-diffusion's UNet): a dtype or device change, the shape as it was
    while isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr in SAME_SHAPE:
        value = value.func.value
    # `xt = F.leaky_relu(x, LRELU_SLOPE)` (vits' ResBlock1): an activation of it, the shape as it was
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr in ELEMENTWISE \
            and value.args and ast.unparse(value.func.value) in _TORCH_PREFIXES:
        value = value.args[0]
    return value.id if isinstance(value, ast.Name) else None


_SIDES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def channels_last_spec(fn: ast.FunctionDef, param: str, owner: nn.Module) -> Spec | None:
    """`z = z.permute(0, 2, 3, 1)` then `z.view(-1, self.dim)`: a channels-first input flattened
    channels-last to rows of a known width (a codebook lookup), `[B, dim, H, W]`."""
    perm: list[int] | None = None
    for node in ast.walk(fn):
        if perm is None and isinstance(node, ast.Assign) and len(node.targets) == 1 and _named(node.targets[0], param):
            value = node.value
            while isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) \
                    and value.func.attr in ("contiguous", "float", "detach"):
                value = value.func.value
            if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "permute" \
                    and _named(value.func.value, param) and all(isinstance(a, ast.Constant) and type(a.value) is int
                                                                for a in value.args):
                perm = [a.value for a in value.args]
        elif perm is not None and isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("view", "reshape") and _named(node.func.value, param) and len(node.args) == 2 \
                and _int_index(node.args[0]) and (width := _number(node.args[1], fn, owner)) is not None:
            if not perm or perm[0] != 0 or sorted(perm) != list(range(len(perm))) or len(perm) - 2 not in _SIDES:
                return None
            sides = iter(_SIDES[len(perm) - 2])
            dims: list[int | str] = ["B", *(width if i == perm[-1] else next(sides) for i in range(1, len(perm)))]
            return Spec(tuple(dims))
    return None


def _named(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def functional_spec(call: ast.Call, fn: ast.FunctionDef, owner: nn.Module) -> Spec | None:
    """What `F.linear(x, w)` / `F.conv2d(x, w)` takes, from the weight it is given: `self.wte.weight`
    (a head tied to the embedding), or a local computed from one of the module's parameters
    (`weight = normalize(self.weight)`): `[B, in]`, `[B, in, H, W]`."""
    name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
    sides = {"linear": 0, "conv1d": 1, "conv2d": 2, "conv3d": 3}.get(name)
    if sides is None or len(call.args) < 2 or any(k.arg == "groups" for k in call.keywords) or len(call.args) > 6:
        return None
    weight = _tensor_of(call.args[1], fn, owner)
    if weight is None or weight.dim() != sides + 2:
        return None
    return Spec(("B", int(weight.shape[1]), *_SIDES.get(sides, ())))


def _tensor_of(expr: ast.expr, fn: ast.FunctionDef, owner: nn.Module, depth: int = 0) -> torch.Tensor | None:
    """The module's own tensor an expression is, or (for a local) the first one its value reads."""
    if isinstance(expr, ast.Name) and depth < 3:
        for node in ast.walk(fn):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and _named(node.targets[0], expr.id):
                for part in ast.walk(node.value):
                    if isinstance(part, ast.Attribute) and (t := _tensor_of(part, fn, owner, depth + 1)) is not None:
                        return t
        return None
    value: object = owner
    chain: list[str] = []
    while isinstance(expr, ast.Attribute):
        chain.insert(0, expr.attr)
        expr = expr.value
    if not _named(expr, "self") or not chain:
        return None
    for attr in chain:
        value = getattr(value, attr, None)
    return value if isinstance(value, torch.Tensor) else None
