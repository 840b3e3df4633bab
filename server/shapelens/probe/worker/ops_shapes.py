"""Op checks for matrix products, joining and reshaping (ops.py dispatches to them)."""

from __future__ import annotations

import math

import torch

from shapelens.probe.worker.op_args import Label, Problem, arg, dims_text, is_tensor, norm_dim, range_text


# -- matrix products ----------------------------------------------------------------------------
def matmul(args, kwargs, label: Label, name: str = "matmul") -> Problem | None:
    a, b = arg(args, kwargs, 0, "input"), arg(args, kwargs, 1, "other")
    if not (is_tensor(a) and is_tensor(b)) or a.dim() == 0 or b.dim() == 0:
        return None
    b_axis = -2 if b.dim() >= 2 else 0
    inner_a, inner_b = int(a.shape[-1]), int(b.shape[b_axis])
    if inner_a != inner_b:
        return Problem(f"{label(a)} @ {label(b)}: {dims_text(a)} @ {dims_text(b)}: inner dims {inner_a} and {inner_b} differ",
                       [(a, -1, inner_b), (b, b_axis, inner_a)])
    if a.dim() > 2 and b.dim() > 2:
        try:
            torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except RuntimeError:
            return Problem(f"{label(a)} @ {label(b)}: {dims_text(a)} @ {dims_text(b)}: the batch dims "
                           f"{list(a.shape[:-2])} and {list(b.shape[:-2])} do not broadcast")
    return None


def einsum(args, kwargs, label: Label) -> Problem | None:
    """A letter of the equation that names axes of different sizes (neither 1, which broadcasts):
    `einsum('b h i d, b h j d -> b h i j', q, k)` with q's d 64 and k's d 128."""
    if not args or not isinstance(args[0], str) or "." in args[0]:
        return None
    ops = list(args[1] if len(args) == 2 and isinstance(args[1], (list, tuple)) else args[1:])
    terms = args[0].replace(" ", "").split("->")[0].split(",")
    if len(terms) != len(ops) or not all(is_tensor(t) and t.dim() == len(term) for term, t in zip(terms, ops)):
        return None
    seen: dict[str, tuple[int, int]] = {}  # letter -> (operand, axis) that first gave it a size other than 1
    for i, (term, t) in enumerate(zip(terms, ops)):
        for axis, letter in enumerate(term):
            size = int(t.shape[axis])
            if size == 1:
                continue
            if letter not in seen:
                seen[letter] = (i, axis)
                continue
            j, other_axis = seen[letter]
            other = ops[j]
            want = int(other.shape[other_axis])
            if size != want:
                return Problem(f"einsum('{args[0]}'): `{letter}` is {want} in {label(other)} but {size} in {label(t)}",
                               [(t, axis - t.dim(), want), (other, other_axis - other.dim(), size)])
    return None


def bmm(args, kwargs, label: Label) -> Problem | None:
    a, b = arg(args, kwargs, 0, "input"), arg(args, kwargs, 1, "mat2")
    if not (is_tensor(a) and is_tensor(b)):
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
    a, b = arg(args, kwargs, 0, "input"), arg(args, kwargs, 1, "mat2")
    if is_tensor(a) and is_tensor(b) and (a.dim() != 2 or b.dim() != 2):
        bad = a if a.dim() != 2 else b
        return Problem(f"torch.mm needs two 2-D matrices but {label(bad)} is {bad.dim()}-D; use matmul or @ for batches")
    return matmul(args, kwargs, label)


def linear(args, kwargs, label: Label) -> Problem | None:
    x, w = arg(args, kwargs, 0, "input"), arg(args, kwargs, 1, "weight")
    if not (is_tensor(x) and is_tensor(w)) or x.dim() == 0 or w.dim() != 2:
        return None
    if x.shape[-1] != w.shape[1]:
        return Problem(f"F.linear: {label(x)} has {int(x.shape[-1])} features but the weight {dims_text(w)} takes "
                       f"{int(w.shape[1])} ([out_features, in_features])", [(x, -1, int(w.shape[1]))])
    return None


# -- joining ------------------------------------------------------------------------------------
def cat(args, kwargs, label: Label, name: str = "cat") -> Problem | None:
    tensors = arg(args, kwargs, 0, "tensors")
    dim = arg(args, kwargs, 1, "dim", 0)
    if not isinstance(tensors, (list, tuple)) or not isinstance(dim, int):
        return None
    ts = [t for t in tensors if is_tensor(t) and not (t.dim() == 1 and t.shape[0] == 0)]
    if len(ts) < 2:
        return None
    first = ts[0]
    n = first.dim()
    d = norm_dim(dim, n)
    if d is None:
        return Problem(f"torch.{name}(dim={dim}) on {label(first)}: dims are {range_text(n)}")
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
    tensors = arg(args, kwargs, 0, "tensors")
    if not isinstance(tensors, (list, tuple)):
        return None
    ts = [t for t in tensors if is_tensor(t)]
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
    if not is_tensor(x) or shape is None or shape.count(-1) > 1 or any(d < -1 for d in shape):
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
    if not is_tensor(x):
        return None
    start = arg(args, kwargs, 1, "start_dim", 0)
    end = arg(args, kwargs, 2, "end_dim", -1)
    if not (isinstance(start, int) and isinstance(end, int)):
        return None
    n = max(x.dim(), 1)
    s, e = norm_dim(start, n), norm_dim(end, n)
    if s is None or e is None:
        bad = start if s is None else end
        return Problem(f"flatten(start_dim={start}, end_dim={end}) on {label(x)}: dim {bad} does not exist "
                       f"(dims are {range_text(x.dim())})")
    if s > e:
        return Problem(f"flatten(start_dim={start}, end_dim={end}) on {label(x)}: start_dim comes after end_dim")
    return None


def permute(args, kwargs, label: Label) -> Problem | None:
    x = args[0] if args else None
    dims = _shape_arg(args, kwargs) if len(args) > 1 or "dims" in kwargs else None
    if "dims" in kwargs:
        dims = list(kwargs["dims"])
    if not is_tensor(x) or dims is None:
        return None
    n = x.dim()
    if len(dims) != n:
        return Problem(f"permute{tuple(dims)} names {len(dims)} dims but {label(x)} has {n}")
    normed = [norm_dim(d, n) for d in dims]
    if None in normed or len(set(normed)) != n:
        return Problem(f"permute{tuple(dims)} on {label(x)} is not a permutation of its dims {range_text(n)}")
    return None


def transpose(args, kwargs, label: Label) -> Problem | None:
    x = args[0] if args else None
    d0, d1 = arg(args, kwargs, 1, "dim0"), arg(args, kwargs, 2, "dim1")
    if not is_tensor(x) or not isinstance(d0, int) or not isinstance(d1, int):
        return None
    n = max(x.dim(), 1)
    for d in (d0, d1):
        if norm_dim(d, n) is None:
            return Problem(f"transpose({d0}, {d1}) on {label(x)}: dim {d} does not exist (dims are {range_text(x.dim())})")
    return None


def softmax(args, kwargs, label: Label, name: str = "softmax") -> Problem | None:
    x = args[0] if args else kwargs.get("input")
    dim = arg(args, kwargs, 1, "dim")
    if not is_tensor(x) or not isinstance(dim, int):
        return None
    if norm_dim(dim, max(x.dim(), 1)) is None:
        return Problem(f"{name}(dim={dim}) on {label(x)}: dims are {range_text(x.dim())}")
    return None


def split(args, kwargs, label: Label) -> Problem | None:
    """`torch.split(x_dbl, [dt_rank, d_state, d_state], dim=-1)`: sizes that do not add up to the
    axis. The axis's width traces back to the layer that made it (mamba's `x_proj`)."""
    x = args[0] if args else kwargs.get("tensor", kwargs.get("input"))
    sizes = arg(args, kwargs, 1, "split_size_or_sections", kwargs.get("split_size"))
    dim = arg(args, kwargs, 2, "dim", 0)
    if not is_tensor(x) or not isinstance(sizes, (list, tuple)) or not sizes or not isinstance(dim, int) \
            or not all(isinstance(s, int) and s >= 0 for s in sizes) or not -x.dim() <= dim < x.dim():
        return None
    axis = dim - x.dim() if dim >= 0 else dim
    total = sum(sizes)
    if total == int(x.shape[axis]):
        return None
    return Problem(f"split into {list(sizes)} along dim {dim}: {label(x)} is {int(x.shape[axis])} wide there, "
                   f"but the sizes add up to {total}", [(x, axis, total)])
