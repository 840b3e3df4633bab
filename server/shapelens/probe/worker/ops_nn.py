"""Op checks for convolution and pooling, losses, indexing and broadcasting (ops.py dispatches
to them)."""

from __future__ import annotations

import torch

from shapelens.probe.worker.op_args import Label, Problem, arg, dims_text, is_tensor


# -- convolution and pooling ----------------------------------------------------------------------
def _tuple(v, n: int):
    if isinstance(v, int):
        return (v,) * n
    if isinstance(v, (tuple, list)) and len(v) == n and all(isinstance(i, int) for i in v):
        return tuple(v)
    if isinstance(v, (tuple, list)) and len(v) == 1 and isinstance(v[0], int):
        return (v[0],) * n
    return None


def _spatial(x: torch.Tensor, n: int, kernel, stride, padding, dilation, what: str, label: Label) -> Problem | None:
    k, p, dl = _tuple(kernel, n), _tuple(padding, n), _tuple(dilation, n)
    s = _tuple(stride, n) if stride not in (None, [], ()) else k
    if None in (k, s, p, dl):
        return None
    size = [int(d) for d in x.shape[-n:]]
    out = [(size[i] + 2 * p[i] - dl[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(n)]
    if all(o > 0 for o in out):
        return None
    span = "x".join(map(str, size))
    kern = "x".join(str(dl[i] * (k[i] - 1) + 1) for i in range(n))
    return Problem(f"{what} on {label(x)}: the input is {span} (padding {'x'.join(map(str, p))}), smaller than the "
                   f"kernel {kern}; the output would be {'x'.join(map(str, out))}")


def conv(n: int, transposed: bool = False):
    def check(args, kwargs, label: Label) -> Problem | None:
        x, w = arg(args, kwargs, 0, "input"), arg(args, kwargs, 1, "weight")
        if not (is_tensor(x) and is_tensor(w)) or w.dim() != n + 2 or x.dim() not in (n + 1, n + 2):
            return None
        groups = arg(args, kwargs, 6, "groups", 1)  # the 7th argument of conv and conv_transpose alike
        if not isinstance(groups, int):
            return None
        c = int(x.shape[-(n + 1)])
        wants = int(w.shape[0]) if transposed else int(w.shape[1]) * groups
        name = f"conv_transpose{n}d" if transposed else f"conv{n}d"
        if c != wants:
            return Problem(f"F.{name}: {label(x)} has {c} channels at dim {-(n + 1)} but the weight {dims_text(w)} "
                           f"expects {wants}" + (f" ({int(w.shape[1])} per group x {groups} groups)" if groups > 1 else ""),
                           [(x, -(n + 1), wants)])
        if transposed:
            return None
        padding = arg(args, kwargs, 4, "padding", 0)
        if isinstance(padding, str):
            return None
        return _spatial(x, n, tuple(w.shape[2:]), arg(args, kwargs, 3, "stride", 1), padding,
                        arg(args, kwargs, 5, "dilation", 1), f"F.{name}", label)

    return check


def pool(n: int, kind: str):
    def check(args, kwargs, label: Label) -> Problem | None:
        x = arg(args, kwargs, 0, "input")
        if not is_tensor(x) or x.dim() not in (n + 1, n + 2):
            return None
        if arg(args, kwargs, 5 if kind == "max" else 4, "ceil_mode", False) is True:
            return None
        dilation = arg(args, kwargs, 4, "dilation", 1) if kind == "max" else 1
        return _spatial(x, n, arg(args, kwargs, 1, "kernel_size"), arg(args, kwargs, 2, "stride", None),
                        arg(args, kwargs, 3, "padding", 0), dilation, f"{kind}_pool{n}d", label)

    return check


# -- losses -----------------------------------------------------------------------------------
def nll(name: str):
    def check(args, kwargs, label: Label) -> Problem | None:
        x, target = arg(args, kwargs, 0, "input"), arg(args, kwargs, 1, "target")
        if not (is_tensor(x) and is_tensor(target)) or x.dim() == 0:
            return None
        if target.dtype.is_floating_point:
            if name == "cross_entropy" and target.shape == x.shape:
                return None  # class probabilities
            dt = str(target.dtype).removeprefix("torch.")
            wanted = f"class indices (torch.long) of shape {list(_expected(x))}"
            also = " or class probabilities of the input's shape" if name == "cross_entropy" else ""
            return Problem(f"F.{name} expects the target to be {wanted}{also}, but {label(target)} is {dt}")
        if target.dtype == torch.bool or target.dtype.is_complex:
            return Problem(f"F.{name} expects class indices (torch.long) as the target, but {label(target)} is "
                           f"{str(target.dtype).removeprefix('torch.')}")
        expected = _expected(x)
        if tuple(target.shape) == expected:
            return None
        hint = ""
        if x.dim() == 3 and tuple(target.shape) == tuple(x.shape[:2]):
            hint = (f"; the classes must be at dim 1: for [batch, seq, classes] logits use "
                    f"`{_name(x)}.reshape(-1, {int(x.shape[-1])})` with `{_name(target)}.reshape(-1)`, or permute(0, 2, 1)")
        sides = [(x, 0, int(target.shape[0]))] if x.dim() >= 2 and target.dim() >= 1 and x.dim() - 1 == target.dim() else []
        return Problem(f"F.{name}: for the input {label(x)} (classes at dim 1) the target must have shape "
                       f"{list(expected)}, but {label(target)} is {list(target.shape)}{hint}", sides)

    return check


def same_shape_loss(name: str):
    """Losses that compare the input with a target of its shape (BCE raises, MSE/L1 broadcast
    with a warning: a mismatch is a bug either way)."""

    def check(args, kwargs, label: Label) -> Problem | None:
        x, target = arg(args, kwargs, 0, "input"), arg(args, kwargs, 1, "target")
        if not (is_tensor(x) and is_tensor(target)) or x.shape == target.shape:
            return None
        sides = []
        if x.dim() == target.dim():
            sides = [(x, i - x.dim(), int(target.shape[i])) for i in range(x.dim()) if x.shape[i] != target.shape[i]]
        return Problem(f"F.{name} compares the input {label(x)} with the target {label(target)} element by element, "
                       "so their shapes must be equal", sides)

    return check


def setitem(args, kwargs, label: Label) -> Problem | None:
    x, index, value = (list(args) + [None, None, None])[:3]
    if not (is_tensor(x) and is_tensor(value)):
        return None
    region = x[index]
    try:
        if torch.broadcast_shapes(region.shape, value.shape) == region.shape:
            return None
    except RuntimeError:
        pass
    n = min(region.dim(), value.dim())
    sides = [(value, -i, int(region.shape[-i])) for i in range(1, n + 1)
             if value.shape[-i] != region.shape[-i] and value.shape[-i] != 1]
    return Problem(f"assigning {label(value)} into a slice of shape {list(region.shape)} of {label(x)}: "
                   "the value does not fit the slice", sides)


def _expected(x: torch.Tensor) -> tuple[int, ...]:
    return () if x.dim() == 1 else (int(x.shape[0]), *[int(d) for d in x.shape[2:]])


def _name(t: torch.Tensor) -> str:
    return getattr(t, "_sl_name", None) or "logits"


# -- broadcasting ---------------------------------------------------------------------------------
SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "true_divide": "/", "floor_divide": "//",
           "remainder": "%", "pow": "**", "maximum": "max", "minimum": "min", "eq": "==", "ne": "!=",
           "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "atan2": "atan2", "rsub": "-", "subtract": "-",
           "multiply": "*", "divide": "/"}


def broadcast(name: str):
    inplace = name.endswith("_") and not name.endswith("__")
    base = name.rstrip("_")

    def check(args, kwargs, label: Label) -> Problem | None:
        a, b = arg(args, kwargs, 0, "input"), arg(args, kwargs, 1, "other")
        if not (is_tensor(a) and is_tensor(b)):
            return None
        sa, sb = list(a.shape), list(b.shape)
        n = max(len(sa), len(sb))
        for i in range(1, n + 1):
            da = sa[-i] if i <= len(sa) else 1
            db = sb[-i] if i <= len(sb) else 1
            if da != db and da != 1 and db != 1:
                op = SYMBOLS.get(base, base)
                return Problem(f"{label(a)} {op} {label(b)}: at dim {-i} the sizes are {da} and {db}; "
                               "neither is 1, so they do not broadcast", [(a, -i, db), (b, -i, da)])
            if inplace and da == 1 and db != 1:
                return Problem(f"in-place {base}_ on {label(a)} with {label(b)}: the result would grow dim {-i} from "
                               f"1 to {db}, which an in-place op cannot do", [(b, -i, 1)])
        return None

    return check


def masked_fill(args, kwargs, label: Label) -> Problem | None:
    x, mask = arg(args, kwargs, 0, "input"), arg(args, kwargs, 1, "mask")
    if not (is_tensor(x) and is_tensor(mask)):
        return None
    try:
        if torch.broadcast_shapes(x.shape, mask.shape) == x.shape:
            return None
    except RuntimeError:
        pass
    return Problem(f"masked_fill: the mask {label(mask)} does not broadcast to {label(x)}")
