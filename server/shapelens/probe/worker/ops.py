"""Shape checks for the common tensor ops, run before torch runs the op.

Each check works out from the shapes what the op needs and, when the inputs do not fit, says so
in terms of the user's tensors ("(10x256) @ (128x64): inner dims 256 and 128 differ") instead
of leaving it to torch's kernel message. A check also names the axes whose sizes disagree
(`sides`), so the caller can trace those widths back to the constructor arguments that made
them. A check that is unsure returns None and lets torch decide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

Label = Callable[[torch.Tensor], str]


@dataclass
class Problem:
    message: str
    # (tensor, axis, size that axis would need): the widths to trace back to their producers
    sides: list[tuple[torch.Tensor, int, int]] = field(default_factory=list)


def _dims(t: torch.Tensor) -> str:
    return "(" + "x".join(str(int(d)) for d in t.shape) + ")"


def _arg(args: tuple, kwargs: dict, i: int, name: str, default=None):
    if name in kwargs:
        return kwargs[name]
    return args[i] if i < len(args) else default


def _tensor(x) -> bool:
    return isinstance(x, torch.Tensor)


def _norm_dim(d: int, n: int) -> int | None:
    return d + n if -n <= d < 0 else (d if 0 <= d < n else None)


def _range_text(n: int) -> str:
    return f"{-n}..{n - 1}" if n else "none"


# -- matrix products ----------------------------------------------------------------------------
def matmul(args, kwargs, label: Label, name: str = "matmul") -> Problem | None:
    a, b = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "other")
    if not (_tensor(a) and _tensor(b)) or a.dim() == 0 or b.dim() == 0:
        return None
    b_axis = -2 if b.dim() >= 2 else 0
    inner_a, inner_b = int(a.shape[-1]), int(b.shape[b_axis])
    if inner_a != inner_b:
        return Problem(f"{label(a)} @ {label(b)}: {_dims(a)} @ {_dims(b)}: inner dims {inner_a} and {inner_b} differ",
                       [(a, -1, inner_b), (b, b_axis, inner_a)])
    if a.dim() > 2 and b.dim() > 2:
        try:
            torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except RuntimeError:
            return Problem(f"{label(a)} @ {label(b)}: {_dims(a)} @ {_dims(b)}: the batch dims "
                           f"{list(a.shape[:-2])} and {list(b.shape[:-2])} do not broadcast")
    return None


def bmm(args, kwargs, label: Label) -> Problem | None:
    a, b = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "mat2")
    if not (_tensor(a) and _tensor(b)):
        return None
    if a.dim() != 3 or b.dim() != 3:
        bad = a if a.dim() != 3 else b
        # A width of 1 that should have been squeezed away is the usual cause: offer each axis.
        return Problem(f"torch.bmm needs two 3-D tensors [batch, n, m] and [batch, m, p] but {label(bad)} is "
                       f"{bad.dim()}-D", [(bad, ax, 1) for ax in range(-bad.dim(), 0)] if bad.dim() == 4 else [])
    if a.shape[0] != b.shape[0]:
        return Problem(f"torch.bmm: {label(a)} and {label(b)} have different batch sizes "
                       f"({int(a.shape[0])} vs {int(b.shape[0])}); bmm does not broadcast", [(a, 0, int(b.shape[0]))])
    return matmul((a, b), {}, label, "bmm")


def mm(args, kwargs, label: Label) -> Problem | None:
    a, b = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "mat2")
    if _tensor(a) and _tensor(b) and (a.dim() != 2 or b.dim() != 2):
        bad = a if a.dim() != 2 else b
        return Problem(f"torch.mm needs two 2-D matrices but {label(bad)} is {bad.dim()}-D; use matmul or @ for batches")
    return matmul(args, kwargs, label)


def linear(args, kwargs, label: Label) -> Problem | None:
    x, w = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "weight")
    if not (_tensor(x) and _tensor(w)) or x.dim() == 0 or w.dim() != 2:
        return None
    if x.shape[-1] != w.shape[1]:
        return Problem(f"F.linear: {label(x)} has {int(x.shape[-1])} features but the weight {_dims(w)} takes "
                       f"{int(w.shape[1])} ([out_features, in_features])", [(x, -1, int(w.shape[1]))])
    return None


# -- joining ------------------------------------------------------------------------------------
def cat(args, kwargs, label: Label, name: str = "cat") -> Problem | None:
    tensors = _arg(args, kwargs, 0, "tensors")
    dim = _arg(args, kwargs, 1, "dim", 0)
    if not isinstance(tensors, (list, tuple)) or not isinstance(dim, int):
        return None
    ts = [t for t in tensors if _tensor(t) and not (t.dim() == 1 and t.shape[0] == 0)]
    if len(ts) < 2:
        return None
    first = ts[0]
    n = first.dim()
    d = _norm_dim(dim, n)
    if d is None:
        return Problem(f"torch.{name}(dim={dim}) on {label(first)}: dims are {_range_text(n)}")
    for other in ts[1:]:
        if other.dim() != n:
            return Problem(f"torch.{name}: {label(first)} is {n}-D but {label(other)} is {other.dim()}-D; "
                           "every tensor needs the same number of dims")
        for i in range(n):
            if i != d and first.shape[i] != other.shape[i]:
                return Problem(f"torch.{name} along dim {dim}: {label(first)} and {label(other)} differ at dim {i} "
                               f"({int(first.shape[i])} vs {int(other.shape[i])}); every dim but {dim} must match",
                               [(first, i - n, int(other.shape[i])), (other, i - n, int(first.shape[i]))])
    return None


def stack(args, kwargs, label: Label) -> Problem | None:
    tensors = _arg(args, kwargs, 0, "tensors")
    if not isinstance(tensors, (list, tuple)):
        return None
    ts = [t for t in tensors if _tensor(t)]
    for other in ts[1:]:
        if other.shape != ts[0].shape:
            return Problem(f"torch.stack needs equal shapes but {label(ts[0])} and {label(other)} differ")
    return None


# -- reshaping ----------------------------------------------------------------------------------
def _shape_arg(args: tuple, kwargs: dict) -> list | None:
    rest = args[1:]
    if "shape" in kwargs or "size" in kwargs:
        rest = (kwargs.get("shape", kwargs.get("size")),)
    if len(rest) == 1 and isinstance(rest[0], (list, tuple, torch.Size)):
        rest = tuple(rest[0])
    if not rest or not all(isinstance(d, int) and not isinstance(d, bool) for d in rest):
        return None
    return list(rest)


def view(args, kwargs, label: Label, name: str = "view") -> Problem | None:
    x = args[0] if args else None
    shape = _shape_arg(args, kwargs)
    if not _tensor(x) or shape is None or shape.count(-1) > 1 or any(d < -1 for d in shape):
        return None
    numel = x.numel()
    known = math.prod(d for d in shape if d != -1)
    target = " to " + str(shape)
    if -1 in shape:
        if known == 0 or numel % known == 0:
            return None
        return Problem(f"{name}{target}: {label(x)} has {numel} elements, not a multiple of {known}")
    if known == numel:
        return None
    sides = []
    for axis in range(-x.dim(), 0):
        rest = numel // max(int(x.shape[axis]), 1)
        if rest and known % rest == 0:
            sides.append((x, axis, known // rest))
    return Problem(f"{name}{target}: {label(x)} has {numel} elements but that shape holds {known}", sides)


def flatten(args, kwargs, label: Label) -> Problem | None:
    x = args[0] if args else None
    if not _tensor(x):
        return None
    start = _arg(args, kwargs, 1, "start_dim", 0)
    end = _arg(args, kwargs, 2, "end_dim", -1)
    if not (isinstance(start, int) and isinstance(end, int)):
        return None
    n = max(x.dim(), 1)
    s, e = _norm_dim(start, n), _norm_dim(end, n)
    if s is None or e is None:
        bad = start if s is None else end
        return Problem(f"flatten(start_dim={start}, end_dim={end}) on {label(x)}: dim {bad} does not exist "
                       f"(dims are {_range_text(x.dim())})")
    if s > e:
        return Problem(f"flatten(start_dim={start}, end_dim={end}) on {label(x)}: start_dim comes after end_dim")
    return None


def permute(args, kwargs, label: Label) -> Problem | None:
    x = args[0] if args else None
    dims = _shape_arg(args, kwargs) if len(args) > 1 or "dims" in kwargs else None
    if "dims" in kwargs:
        dims = list(kwargs["dims"])
    if not _tensor(x) or dims is None:
        return None
    n = x.dim()
    if len(dims) != n:
        return Problem(f"permute{tuple(dims)} names {len(dims)} dims but {label(x)} has {n}")
    normed = [_norm_dim(d, n) for d in dims]
    if None in normed or len(set(normed)) != n:
        return Problem(f"permute{tuple(dims)} on {label(x)} is not a permutation of its dims {_range_text(n)}")
    return None


def transpose(args, kwargs, label: Label) -> Problem | None:
    x = args[0] if args else None
    d0, d1 = _arg(args, kwargs, 1, "dim0"), _arg(args, kwargs, 2, "dim1")
    if not _tensor(x) or not isinstance(d0, int) or not isinstance(d1, int):
        return None
    n = max(x.dim(), 1)
    for d in (d0, d1):
        if _norm_dim(d, n) is None:
            return Problem(f"transpose({d0}, {d1}) on {label(x)}: dim {d} does not exist (dims are {_range_text(x.dim())})")
    return None


def softmax(args, kwargs, label: Label, name: str = "softmax") -> Problem | None:
    x = args[0] if args else kwargs.get("input")
    dim = _arg(args, kwargs, 1, "dim")
    if not _tensor(x) or not isinstance(dim, int):
        return None
    if _norm_dim(dim, max(x.dim(), 1)) is None:
        return Problem(f"{name}(dim={dim}) on {label(x)}: dims are {_range_text(x.dim())}")
    return None


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
        x, w = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "weight")
        if not (_tensor(x) and _tensor(w)) or w.dim() != n + 2 or x.dim() not in (n + 1, n + 2):
            return None
        groups = _arg(args, kwargs, 6, "groups", 1)  # the 7th argument of conv and conv_transpose alike
        if not isinstance(groups, int):
            return None
        c = int(x.shape[-(n + 1)])
        wants = int(w.shape[0]) if transposed else int(w.shape[1]) * groups
        name = f"conv_transpose{n}d" if transposed else f"conv{n}d"
        if c != wants:
            return Problem(f"F.{name}: {label(x)} has {c} channels at dim {-(n + 1)} but the weight {_dims(w)} "
                           f"expects {wants}" + (f" ({int(w.shape[1])} per group x {groups} groups)" if groups > 1 else ""),
                           [(x, -(n + 1), wants)])
        if transposed:
            return None
        padding = _arg(args, kwargs, 4, "padding", 0)
        if isinstance(padding, str):
            return None
        return _spatial(x, n, tuple(w.shape[2:]), _arg(args, kwargs, 3, "stride", 1), padding,
                        _arg(args, kwargs, 5, "dilation", 1), f"F.{name}", label)

    return check


def pool(n: int, kind: str):
    def check(args, kwargs, label: Label) -> Problem | None:
        x = _arg(args, kwargs, 0, "input")
        if not _tensor(x) or x.dim() not in (n + 1, n + 2):
            return None
        if _arg(args, kwargs, 5 if kind == "max" else 4, "ceil_mode", False) is True:
            return None
        dilation = _arg(args, kwargs, 4, "dilation", 1) if kind == "max" else 1
        return _spatial(x, n, _arg(args, kwargs, 1, "kernel_size"), _arg(args, kwargs, 2, "stride", None),
                        _arg(args, kwargs, 3, "padding", 0), dilation, f"{kind}_pool{n}d", label)

    return check


# -- losses -----------------------------------------------------------------------------------
def nll(name: str):
    def check(args, kwargs, label: Label) -> Problem | None:
        x, target = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "target")
        if not (_tensor(x) and _tensor(target)) or x.dim() == 0:
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
        x, target = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "target")
        if not (_tensor(x) and _tensor(target)) or x.shape == target.shape:
            return None
        sides = []
        if x.dim() == target.dim():
            sides = [(x, i - x.dim(), int(target.shape[i])) for i in range(x.dim()) if x.shape[i] != target.shape[i]]
        return Problem(f"F.{name} compares the input {label(x)} with the target {label(target)} element by element, "
                       "so their shapes must be equal", sides)

    return check


def setitem(args, kwargs, label: Label) -> Problem | None:
    x, index, value = (list(args) + [None, None, None])[:3]
    if not (_tensor(x) and _tensor(value)):
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
        a, b = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "other")
        if not (_tensor(a) and _tensor(b)):
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
    x, mask = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "mask")
    if not (_tensor(x) and _tensor(mask)):
        return None
    try:
        if torch.broadcast_shapes(x.shape, mask.shape) == x.shape:
            return None
    except RuntimeError:
        pass
    return Problem(f"masked_fill: the mask {label(mask)} does not broadcast to {label(x)}")


CHECKS: dict[str, Callable] = {
    "matmul": matmul, "__matmul__": matmul, "__rmatmul__": lambda a, k, l: matmul(a[::-1], k, l),
    "bmm": bmm, "mm": mm, "linear": linear,
    "cat": cat, "concat": lambda a, k, l: cat(a, k, l, "concat"), "concatenate": lambda a, k, l: cat(a, k, l, "concatenate"),
    "stack": stack,
    "view": view, "reshape": lambda a, k, l: view(a, k, l, "reshape"),
    "flatten": flatten, "permute": permute, "transpose": transpose, "swapaxes": transpose, "swapdims": transpose,
    "softmax": softmax, "log_softmax": lambda a, k, l: softmax(a, k, l, "log_softmax"),
    "conv1d": conv(1), "conv2d": conv(2), "conv3d": conv(3),
    "conv_transpose1d": conv(1, True), "conv_transpose2d": conv(2, True), "conv_transpose3d": conv(3, True),
    "max_pool1d": pool(1, "max"), "max_pool2d": pool(2, "max"), "max_pool3d": pool(3, "max"),
    "avg_pool1d": pool(1, "avg"), "avg_pool2d": pool(2, "avg"), "avg_pool3d": pool(3, "avg"),
    "nll_loss": nll("nll_loss"), "cross_entropy": nll("cross_entropy"),
    **{n: same_shape_loss(n) for n in ("binary_cross_entropy", "binary_cross_entropy_with_logits", "mse_loss",
                                       "l1_loss", "smooth_l1_loss", "huber_loss")},
    "__setitem__": setitem,
    "masked_fill": masked_fill, "masked_fill_": masked_fill,
    **{op: broadcast(op) for op in SYMBOLS},
    **{f"{op}_": broadcast(f"{op}_") for op in ("add", "sub", "mul", "div")},
    **{f"__{op}__": broadcast(op) for op in ("add", "sub", "mul", "truediv", "radd", "rmul")},
}


def check(name: str, args: tuple, kwargs: dict, label: Label) -> Problem | None:
    fn = CHECKS.get(name)
    if fn is None:
        return None
    try:
        return fn(args, kwargs or {}, label)
    except Exception:  # noqa: BLE001 — a check that trips over odd arguments leaves it to torch
        return None


# -- shape-only results on the meta device ---------------------------------------------------------
# fastmeta.py has the shape-only results of the most common ops; these are the ones it lacks
# that convnets run at every layer (BatchNorm in training mode takes ~3 ms on the meta device,
# InstanceNorm ~7 ms). They run after the checks above passed; anything unusual goes to torch.
_SAME_SHAPE = frozenset({"dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout",
                         "hardtanh", "relu6", "selu", "celu", "hardsigmoid", "silu", "gelu"})


def meta_result(name: str, args: tuple, kwargs: dict) -> torch.Tensor | None:
    x = args[0] if args else kwargs.get("input")
    if not _tensor(x) or x.device.type != "meta" or not x.dtype.is_floating_point:
        return None
    if name in _SAME_SHAPE:
        inplace = kwargs.get("inplace", False) or any(a is True for a in args[1:])
        return None if inplace else torch.empty_like(x)
    if name in ("batch_norm", "instance_norm"):
        stats = [_arg(args, kwargs, i, n) for i, n in ((1, "running_mean"), (2, "running_var"), (3, "weight"),
                                                         (4, "bias"))]
        training = _arg(args, kwargs, 5, "training" if name == "batch_norm" else "use_input_stats", False)
        if x.dim() < 2 or any(_tensor(t) and t.shape != (x.shape[1],) for t in stats):
            return None
        if name == "batch_norm" and training and x.numel() == x.shape[1]:
            return None  # one value per channel: torch's own error says it
        return torch.empty_like(x)
    if name == "group_norm":
        groups = _arg(args, kwargs, 1, "num_groups")
        params = [_arg(args, kwargs, 2, "weight"), _arg(args, kwargs, 3, "bias")]
        if x.dim() < 2 or not isinstance(groups, int) or groups <= 0 or x.shape[1] % groups or \
                any(_tensor(t) and t.shape != (x.shape[1],) for t in params):
            return None
        return torch.empty_like(x)
    return None
