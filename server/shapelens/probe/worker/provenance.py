"""Which constructor arguments a tensor's widths come from.

A layer's output records, on the axis its rule names, the layer and the argument that declares
that width (`nn.Linear(..., out_features)`). Ops carry the record along: an axis that survives
keeps it, `flatten`/`view` merging it with other axes multiply it by a factor, `cat` sums the
parts of every input. When a width is wrong further down, each part says how its own argument
would have to change: that is how a fix can land on the producer rather than the consumer.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, NamedTuple

import torch
from torch import nn


class Part(NamedTuple):
    module: nn.Module  # the producing layer
    param: str  # its constructor argument declaring the width
    size: int  # the width it produced
    factor: Fraction  # how much one unit of `size` adds to this axis


Prov = dict[int, list[Part]]  # negative axis -> the parts whose sum makes its size


def tensors_in(obj: Any) -> list[torch.Tensor]:
    """The tensors among an op's arguments (nested tuples, lists and dicts), in order. Every op
    of a probe asks this; torch's pytree flatten, which also builds the tree's spec, took a third
    of a 7B model's probe."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    out: list[torch.Tensor] = []
    if isinstance(obj, (tuple, list)):
        for item in obj:
            out += [item] if isinstance(item, torch.Tensor) else tensors_in(item) if isinstance(
                item, (tuple, list, dict)) else []
    elif isinstance(obj, dict):
        out += tensors_in(list(obj.values()))
    return out


def get(t: Any) -> Prov:
    return getattr(t, "_sl_prov", None) or {}


def put(t: torch.Tensor, prov: Prov) -> None:
    if not prov:
        return
    try:
        t._sl_prov = prov
    except (AttributeError, RuntimeError):
        pass


def from_layer(module: nn.Module, param: str, out: torch.Tensor, axis: int) -> None:
    if -axis <= out.dim() if axis < 0 else axis < out.dim():
        neg = axis if axis < 0 else axis - out.dim()
        put(out, {neg: [Part(module, param, int(out.shape[axis]), Fraction(1))]})


# A weight's axes and the arguments declaring them, for code that uses the weight without calling
# the layer (mamba's `self.in_proj.weight @ rearrange(x, "b l d -> d (b l)")`, a tied head's
# `F.linear(x, self.wte.weight)`).
_WEIGHT_AXES = {nn.Linear: {-1: "in_features", -2: "out_features"}, nn.Embedding: {-1: "embedding_dim"}}


def tag_weights(module: nn.Module) -> None:
    axes = next((a for cls, a in _WEIGHT_AXES.items() if type(module) is cls), None)
    weight = getattr(module, "weight", None)
    if axes is None or not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        return
    put(weight, {axis: [Part(module, param, int(weight.shape[axis]), Fraction(1))] for axis, param in axes.items()})


def _scaled(parts: list[Part], by: Fraction) -> list[Part]:
    return [p._replace(factor=p.factor * by) for p in parts]


def _carry(src: torch.Tensor, dst: torch.Tensor, out: Prov, absorb: int | None = None) -> None:
    """Map each recorded axis of `src` onto `dst` by sizes: the same axis when it kept its size,
    else the only axis of that size, else an axis that merged it with neighbours (flatten,
    view(B, -1)) or the last of the axes it was split into (view(B, T, heads, -1)), else the -1
    of a view, which takes whatever the other axes leave (`absorb`)."""
    for axis, parts in get(src).items():
        if -axis > src.dim():
            continue
        s = int(src.shape[axis])
        if -axis <= dst.dim() and int(dst.shape[axis]) == s and (axis == -1 or dst.dim() == src.dim()):
            out.setdefault(axis, parts)
            continue
        same = [j for j in range(-dst.dim(), 0) if int(dst.shape[j]) == s]
        if len(same) == 1:
            out.setdefault(same[0], parts)
            continue
        if same or s <= 1:
            continue
        hit = _merged(src, axis, dst) or _split(src, axis, dst)
        if hit is None and absorb is not None and -absorb <= dst.dim():
            hit = absorb, Fraction(int(dst.shape[absorb]), s)
        if hit is not None:
            j, by = hit
            out.setdefault(j, _scaled(parts, by))


def _merged(src: torch.Tensor, axis: int, dst: torch.Tensor) -> tuple[int, Fraction] | None:
    dims = [int(d) for d in src.shape]
    a = axis + len(dims)
    for j in range(-dst.dim(), 0):
        size = int(dst.shape[j])
        for lo in range(0, a + 1):
            for hi in range(a, len(dims)):
                if hi > lo and math.prod(dims[lo : hi + 1]) == size:
                    return j, Fraction(size, dims[a])
    return None


def _split(src: torch.Tensor, axis: int, dst: torch.Tensor) -> tuple[int, Fraction] | None:
    s = int(src.shape[axis])
    dims = [int(d) for d in dst.shape]
    for lo in range(len(dims)):
        for hi in range(lo + 1, len(dims)):
            if math.prod(dims[lo : hi + 1]) == s:
                return hi - len(dims), Fraction(dims[hi], s)
    return None


def _cat(tensors: list, dim: int, result: torch.Tensor) -> Prov:
    out: Prov = {}
    axis = dim if dim < 0 else dim - result.dim()
    summed: list[Part] = []
    for t in tensors:
        if not isinstance(t, torch.Tensor):
            continue
        summed += get(t).get(axis, []) if t.dim() == result.dim() else []
        for a, parts in get(t).items():
            if a != axis and -a <= result.dim() and t.dim() == result.dim():
                out.setdefault(a, parts)
    if summed:
        out[axis] = summed
    return out


def propagate(name: str, args: tuple, kwargs: dict, result: Any) -> None:
    """Give `result` (a tensor, or a tuple of them) the widths' records of the op's inputs."""
    sources = [t for t in tensors_in((args, kwargs)) if get(t)]
    if not sources:
        return
    results = [result] if isinstance(result, torch.Tensor) else [r for r in result if isinstance(r, torch.Tensor)] \
        if isinstance(result, (tuple, list)) else []
    if name in _PIECES and args and isinstance(args[0], torch.Tensor):
        _pieces(name, args, kwargs, results)
        return
    if name in ("matmul", "__matmul__", "bmm") and len(args) >= 2 and isinstance(result, torch.Tensor):
        _matmul(args[0], args[1], result)
        return
    if name == "einsum" and isinstance(result, torch.Tensor):
        _einsum(args, result)
        return
    for r in results:
        if get(r) or any(r is s for s in sources):
            continue
        if name in ("cat", "concat", "concatenate") and args and isinstance(args[0], (list, tuple)):
            dim = kwargs.get("dim", kwargs.get("axis", args[1] if len(args) > 1 else 0))
            put(r, _cat(list(args[0]), int(dim), r))
            continue
        prov: Prov = {}
        for s in sources:
            _carry(s, r, prov, _free_axis(name, args, kwargs) if s is (args[0] if args else None) else None)
        put(r, prov)


_PIECES = frozenset({"chunk", "split", "tensor_split", "split_with_sizes"})


def _pieces(name: str, args: tuple, kwargs: dict, pieces: list[torch.Tensor]) -> None:
    """`q, k, v = qkv.chunk(3, dim=-1)`: each piece holds its share of the split axis's width
    (the producer's width over 3 each), the other axes as they were."""
    src = args[0]
    dim = kwargs.get("dim", kwargs.get("axis", args[2] if len(args) > 2 else 0))
    if type(dim) is not int or not -src.dim() <= dim < src.dim():
        return
    axis = dim if dim < 0 else dim - src.dim()
    whole = int(src.shape[axis])
    for r in pieces:
        if get(r) or r.dim() != src.dim() or not whole:
            continue
        prov = {a: parts for a, parts in get(src).items() if a != axis}
        if axis in get(src):
            prov[axis] = _scaled(get(src)[axis], Fraction(int(r.shape[axis]), whole))
        put(r, prov)


def _matmul(a: Any, b: Any, result: torch.Tensor) -> None:
    """`attn @ v`: the rows come from the left operand, the columns from the right one."""
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or min(a.dim(), b.dim(), result.dim()) < 2:
        return
    prov = {}
    if -2 in get(a):
        prov[-2] = get(a)[-2]
    if -1 in get(b):
        prov[-1] = get(b)[-1]
    put(result, prov)


def _einsum(args: tuple, result: torch.Tensor) -> None:
    """`einsum('b h i d, b h j d -> b h i j', q, k)`: each output letter's width is its operand's."""
    if not args or not isinstance(args[0], str) or "->" not in args[0] or "." in args[0]:
        return
    ops = list(args[1][0] if len(args) == 2 and isinstance(args[1], (list, tuple)) else args[1:])
    left, out = args[0].replace(" ", "").split("->")
    terms = left.split(",")
    if len(terms) != len(ops) or len(out) != result.dim():
        return
    prov: Prov = {}
    for j, letter in enumerate(out):
        for term, t in zip(terms, ops):
            if isinstance(t, torch.Tensor) and letter in term and len(term) == t.dim():
                parts = get(t).get(term.index(letter) - t.dim())
                if parts:
                    prov[j - result.dim()] = parts
                break
    put(result, prov)


def _free_axis(name: str, args: tuple, kwargs: dict) -> int | None:
    """The -1 of `view(-1, 17)` / `reshape(B, -1)`, as a negative axis."""
    if name not in ("view", "reshape"):
        return None
    rest = args[1:] if "shape" not in kwargs and "size" not in kwargs else (kwargs.get("shape", kwargs.get("size")),)
    if len(rest) == 1 and isinstance(rest[0], (list, tuple, torch.Size)):
        rest = tuple(rest[0])
    if rest.count(-1) != 1:
        return None
    return rest.index(-1) - len(rest)


def alternatives(t: torch.Tensor, axis: int, wanted: int) -> list[tuple[nn.Module, str, int]]:
    """For each layer that produced part of `t`'s width on `axis`: the width it would have to
    produce to give that axis the size `wanted` (its rule turns that into its argument's value)."""
    if not isinstance(t, torch.Tensor) or t.dim() == 0:
        return []
    neg = axis if axis < 0 else axis - t.dim()
    actual = int(t.shape[neg])
    # One argument may feed an axis several times (cat of both directions of a GRU): its parts
    # move together, so their factors add up.
    grouped: dict[tuple[int, str], Part] = {}
    for part in get(t).get(neg, []):
        key = (id(part.module), part.param)
        seen = grouped.get(key)
        grouped[key] = part if seen is None else seen._replace(factor=seen.factor + part.factor)
    out = []
    for part in grouped.values():
        delta = Fraction(wanted - actual) / part.factor
        if delta.denominator != 1:
            continue
        out.append((part.module, part.param, part.size + int(delta)))
    return out
