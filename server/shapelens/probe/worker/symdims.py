"""Symbolic dims: which sizes of a tensor the probe made up, and the formula of each.

The probe runs on concrete sizes (the meta device wants numbers), but every size it assumes
(batch, sequence, image sides, widths assumed by a constructor) is a symbol: a made-up input
carries, per dim, an expression in those symbols (`_sl_dims`), and every op hands expressions on
to its result. A dim with no expression is a number that came from the file.

How an op's result gets its expressions, cheapest first:
- shape-keeping and broadcasting ops: aligned from the right, the input's expression;
- `view`/`reshape`/`flatten`: dims grouped by products, merged dims multiply their formulas
  (`64 * (H/4) * (W/4)`);
- `transpose`/`permute`, `linear`/`matmul`, `cat`/`stack`, `split`/`chunk`: by their rule;
- any other op whose result has as many dims as its input (convolutions, pooling, slicing,
  padding): run once more on the meta device with every symbol scaled by its own prime factor,
  and fit each result dim as `a * symbol + b` (`H/2`, `H - 2`, `T - 1`). That is the cheap,
  local form of probing twice with different sizes: it costs one extra call of that op only;
- else, dims matched in order by size with the input's dims (`mean(dim=1)`, `squeeze`).
Sizes an op takes as numbers (`torch.arange(T)`, `expand(B, -1)`) lost their symbol on the way;
only sizes chosen to be rare (batch 17, sequence 13) are matched back by value there.

The expressions and their text are symexpr.py; mode.py calls `propagate` for every op.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import torch

from shapelens.probe.worker.symexpr import RARE, UNKNOWN, VALUES, Affine, Dim, Expr, Unknown, get, put, symbol

PRIMES = (2, 3, 5, 7, 11, 13, 17, 19)


# -- propagation ---------------------------------------------------------------------------------
RESHAPES = {"view", "reshape", "flatten", "unflatten", "view_as", "reshape_as"}
PERMUTES = {"transpose", "swapaxes", "swapdims", "permute", "t", "movedim", "moveaxis"}
SIZE_ARGS = RESHAPES | {"expand", "expand_as", "repeat", "new_zeros", "new_ones", "new_full", "new_empty", "tile",
                        "broadcast_to", "zeros", "ones", "full", "empty", "arange", "randn", "rand", "randint",
                        "tril_indices", "triu_indices", "eye", "linspace", "tensor", "as_tensor"}
REDUCTIONS = {"mean", "sum", "amax", "amin", "max", "min", "norm", "var", "std", "prod", "logsumexp", "all", "any",
              "argmax", "argmin", "count_nonzero", "nansum", "nanmean", "median", "adaptive_avg_pool1d",
              "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d",
              "adaptive_max_pool3d", "var_mean", "std_mean"}
MATMUL = {"matmul", "__matmul__", "bmm", "mm", "baddbmm", "addmm"}


def _tensors(args: tuple, kwargs: dict) -> list[torch.Tensor]:
    out = []
    for a in (*args, *kwargs.values()):
        if isinstance(a, torch.Tensor):
            out.append(a)
        elif isinstance(a, (list, tuple)):
            out += [x for x in a if isinstance(x, torch.Tensor)]
    return out


def propagate(name: str, func, args: tuple, kwargs: dict, result: Any) -> None:
    """Give `result` (a tensor, or a tuple/list of them) the expressions of its dims."""
    try:
        _propagate(name, func, args, kwargs, result)
    except Exception:  # noqa: BLE001 — a shape's formula is a nicety; the probe goes on without it
        pass


def _propagate(name: str, func, args: tuple, kwargs: dict, result: Any) -> None:
    tensors = _tensors(args, kwargs)
    sources = [t for t in tensors if get(t) is not None]
    if isinstance(result, (tuple, list)):
        if sources:
            _parts(sources[0], [r for r in result if isinstance(r, torch.Tensor)], name, args, kwargs)
        return
    if not isinstance(result, torch.Tensor) or get(result) is not None:
        return
    if not sources:
        if RARE and (name in SIZE_ARGS or name == "__getitem__"):
            put(result, [_rare(int(d)) for d in result.shape])
        return
    out = _rule(name, func, args, kwargs, result, sources)
    if out is None:
        return
    if name in SIZE_ARGS and RARE:
        out = [_rare(int(d)) if e is None else e for e, d in zip(out, result.shape)]
    put(result, out)


def _rare(size: int) -> Expr:
    name = RARE.get(size)
    return symbol(name) if name else None


def _rule(name, func, args, kwargs, result, sources) -> list[Expr] | None:
    first = sources[0]
    shape = tuple(result.shape)
    if name in RESHAPES:
        return _reshape(first, shape)
    if name in PERMUTES:
        return _permute(name, first, args, kwargs, shape)
    if name in ("cat", "concat", "concatenate", "stack") and args and isinstance(args[0], (list, tuple)):
        return _cat(name, list(args[0]), kwargs.get("dim", kwargs.get("axis", args[1] if len(args) > 1 else 0)), shape)
    if name == "linear" and first is args[0]:
        return list(get(first)[:-1]) + [None] if len(shape) == first.dim() else None
    if name in MATMUL:
        return _matmul(args, shape)
    broadcast = _broadcast(sources, shape)
    if broadcast is not None:
        return broadcast
    if first.dim() == len(shape) and all(o == int(i) or (o == 1 and name in REDUCTIONS)
                                         for o, i in zip(shape, first.shape)):
        # Every dim kept or reduced to 1 (`mean(-1, keepdim=True)`): no need to run it again. A
        # strided conv that takes 2x2 to 1x1 is not a reduction: its 1 depends on the input size.
        return [e if o == int(i) else None for e, o, i in zip(get(first), shape, first.shape)]
    if first.dim() == len(shape) and name not in SIZE_ARGS:
        fitted = _refit(func, args, kwargs, result, sources)
        if fitted is not None:
            return fitted
        if name not in REDUCTIONS:
            # A dim of made-up size that no formula here fits (a strided conv on an odd side):
            # it still depends on the made-up size, unlike a number from the file.
            return [e if e is not None or d is None else UNKNOWN
                    for e, d in zip(_in_order(first, shape), get(first))]
    return _in_order(first, shape)


def _broadcast(sources: list[torch.Tensor], shape: tuple) -> list[Expr] | None:
    """Every dim of the result is an input's aligned dim (elementwise ops, softmax, norms)."""
    n = len(shape)
    out: list[Expr] = [None] * n
    for j in range(1, n + 1):
        size = shape[-j]
        found = False
        for t in sources:
            if t.dim() >= j and int(t.shape[-j]) == size:
                found = True
                e = get(t)[-j]
                if e is not None:
                    out[-j] = e
                    break
        if not found and not any(t.dim() >= j and int(t.shape[-j]) == 1 for t in sources):
            return None
    return out


def _reshape(src: torch.Tensor, shape: tuple) -> list[Expr] | None:
    ins, dims = [int(d) for d in src.shape], get(src)
    if 0 in ins or 0 in shape:
        return None
    out: list[Expr] = [None] * len(shape)
    i = j = 0
    ones: list[Expr] = []  # made-up sides that are 1 here, merged away (`flatten` of [B, 512, ~1, ~1])
    last: int | None = None
    while i < len(ins) or j < len(shape):
        if j < len(shape) and shape[j] == 1 and (i >= len(ins) or ins[i] != 1):
            j += 1
            continue
        if i < len(ins) and ins[i] == 1 and (j >= len(shape) or shape[j] != 1):
            if dims[i] is not None:
                if last is not None:  # another input size makes it more than 1: part of that width
                    out[last] = _product([out[last], dims[i]], [shape[last], 1])
                else:
                    ones.append(dims[i])
            i += 1
            continue
        if i >= len(ins) or j >= len(shape):
            return None
        group_in, group_out = [i], [j]
        p_in, p_out = ins[i], shape[j]
        i, j = i + 1, j + 1
        while p_in != p_out:
            if p_in < p_out:
                if i >= len(ins):
                    return None
                p_in *= ins[i]
                group_in.append(i)
                i += 1
            else:
                if j >= len(shape):
                    return None
                p_out *= shape[j]
                group_out.append(j)
                j += 1
        exprs = [dims[k] for k in group_in] + ones
        sizes = [ins[k] for k in group_in] + [1] * len(ones)
        ones = []
        last = group_out[-1]
        if all(e is None for e in exprs):
            continue
        if len(group_out) == 1:
            out[group_out[0]] = _product(exprs, sizes)
        elif len(group_in) == 1:
            for k, e in zip(group_out, _split(exprs[0], ins[group_in[0]], [shape[k] for k in group_out])):
                out[k] = e
        else:
            for k in group_out:
                out[k] = UNKNOWN
    return out


def _product(exprs: list[Expr], sizes: list[int]) -> Expr:
    coef, factors = Fraction(1), []
    for e, size in zip(exprs, sizes):
        if e is None:
            coef *= size
        elif isinstance(e, Dim):
            coef *= e.coef
            factors += e.factors
        else:
            return UNKNOWN
    return Dim(coef, tuple(factors))


def _split(e: Expr, size: int, parts: list[int]) -> list[Expr]:
    """One dim viewed as several: a product's factors come apart again (`B * T` -> B, T); else
    the largest part keeps the formula, divided by the others (numbers from the file)."""
    if not isinstance(e, Dim):
        return [UNKNOWN] * len(parts)
    factors, out, rest = list(e.factors), [], Fraction(1)
    for p in parts:
        if factors and factors[0].value(VALUES) == p:
            out.append(Dim(Fraction(1), (factors.pop(0),)))
        else:
            out.append(None)
            rest *= p
    if not factors and rest == e.coef:
        return out
    big = max(range(len(parts)), key=lambda k: parts[k])
    rest = Fraction(size, parts[big])
    return [Dim(e.coef / rest, e.factors) if k == big else None for k in range(len(parts))]


def _permute(name, src, args, kwargs, shape) -> list[Expr] | None:
    dims, n = list(get(src)), src.dim()
    rest = [a for a in args[1:] if not isinstance(a, torch.Tensor)]
    if name == "t":
        order = list(range(n))[::-1]
    elif name == "permute":
        order = list(rest[0]) if len(rest) == 1 and isinstance(rest[0], (list, tuple)) else list(rest)
        order = list(kwargs.get("dims", order))
    elif name in ("movedim", "moveaxis"):
        order = list(range(n))
        a, b = (rest + [kwargs.get("source"), kwargs.get("destination")])[:2]
        if not isinstance(a, int) or not isinstance(b, int):
            return None
        order.insert(b % n, order.pop(a % n))
    else:
        a = rest[0] if rest else kwargs.get("dim0")
        b = rest[1] if len(rest) > 1 else kwargs.get("dim1")
        order = list(range(n))
        order[a % n], order[b % n] = order[b % n], order[a % n]
    if len(order) != len(shape):
        return None
    return [dims[k % n] for k in order]


def _cat(name, tensors, dim, shape) -> list[Expr] | None:
    ts = [t for t in tensors if isinstance(t, torch.Tensor)]
    if not ts or not isinstance(dim, int):
        return None
    n = len(shape)
    if name == "stack":
        base = [_aligned(ts, k) for k in range(ts[0].dim())]
        base.insert(dim % n, None)
        return base
    d = dim % n
    out = [_aligned(ts, k) for k in range(n)]
    out[d] = _sum([(get(t)[d] if get(t) is not None else None, int(t.shape[d])) for t in ts if t.dim() == n])
    return out


def _aligned(ts: list[torch.Tensor], k: int) -> Expr:
    for t in ts:
        dims = get(t)
        if dims is not None and k < len(dims) and dims[k] is not None:
            return dims[k]
    return None


def _sum(parts: list[tuple[Expr, int]]) -> Expr:
    """cat along a dim: the sizes add up; `T` and `1` make `T + 1`, `T` and `T` make `2 * T`."""
    if all(e is None for e, _ in parts):
        return None
    sym, a, b = None, Fraction(0), Fraction(0)
    for e, size in parts:
        if e is None:
            b += size
            continue
        if not isinstance(e, Dim) or len(e.factors) != 1 or (sym is not None and e.factors[0].sym != sym):
            return UNKNOWN
        f = e.factors[0]
        sym, a, b = f.sym, a + e.coef * f.a, b + e.coef * f.b
    return Dim(Fraction(1), (Affine(sym, a, b),))


def _matmul(args, shape) -> list[Expr] | None:
    ts = [a for a in args if isinstance(a, torch.Tensor)][-2:]
    if len(ts) != 2 or ts[0].dim() < 2 or ts[1].dim() < 2:
        return None
    x, y = ts
    dx, dy = get(x) or (None,) * x.dim(), get(y) or (None,) * y.dim()
    n = len(shape)
    out: list[Expr] = [None] * n
    for j in range(3, n + 1):  # batch dims, broadcast
        for t, d in ((x, dx), (y, dy)):
            if t.dim() >= j and int(t.shape[-j]) == shape[-j] and d[-j] is not None:
                out[-j] = d[-j]
                break
    out[-2], out[-1] = dx[-2], dy[-1]
    return out


def _in_order(src: torch.Tensor, shape: tuple) -> list[Expr]:
    """Dims matched in order by size with the input's dims (reductions, squeeze, indexing)."""
    dims, sizes = get(src), [int(d) for d in src.shape]
    out: list[Expr] = [None] * len(shape)
    i = 0
    for j, size in enumerate(shape):
        k = i
        while k < len(sizes) and sizes[k] != size:
            k += 1
        if k < len(sizes):
            out[j] = dims[k]
            i = k + 1
    return out


def _refit(func, args, kwargs, result, sources) -> list[Expr] | None:
    """Run the op again with every symbol scaled by its own prime and fit each result dim as an
    affine function of one symbol. Only on the meta device, where a call costs no memory."""
    if result.device.type != "meta" or any(t.device.type != "meta" for t in sources):
        return None
    syms: list[str] = []
    for t in sources:
        for e in get(t):
            if isinstance(e, Unknown):
                return None
            if isinstance(e, Dim):
                syms += [s for s in sorted(e.symbols()) if s not in syms]
    if not syms or len(syms) > len(PRIMES) or any(s not in VALUES for s in syms):
        return None
    scaled = {s: VALUES[s] * PRIMES[k] for k, s in enumerate(syms)}
    values = {**VALUES, **scaled}
    swap: dict[int, torch.Tensor] = {}
    for t in sources:
        new = []
        for e, size in zip(get(t), t.shape):
            v = e.value(values) if isinstance(e, Dim) else Fraction(int(size))
            if v.denominator != 1 or v <= 0:
                return None
            new.append(int(v))
        swap[id(t)] = torch.empty(new, dtype=t.dtype, device="meta")

    def sub(a):
        if isinstance(a, torch.Tensor):
            return swap.get(id(a), a)
        if isinstance(a, (list, tuple)):
            return type(a)(sub(x) for x in a)
        return a

    again = func(*[sub(a) for a in args], **{k: sub(v) for k, v in kwargs.items()})
    if not isinstance(again, torch.Tensor) or again.dim() != result.dim():
        return None
    first = get(sources[0])
    out: list[Expr] = []
    for j, (o, o2) in enumerate(zip(result.shape, again.shape)):
        o, o2 = int(o), int(o2)
        if o == o2:
            out.append(None)
            continue
        here = first[j].symbols() if j < len(first) and isinstance(first[j], Dim) else set()
        best = None
        for s in sorted(syms, key=lambda s: s not in here):
            a = Fraction(o2 - o, scaled[s] - VALUES[s])
            b = o - a * VALUES[s]
            if (a.numerator == 1 or a.denominator == 1) and b.denominator == 1 and a.numerator * (o2 - o) > 0:
                best = Dim(Fraction(1), (Affine(s, a, b),))
                break
        out.append(best if best is not None else UNKNOWN)
    return out


def _parts(src: torch.Tensor, results: list[torch.Tensor], name: str, args, kwargs) -> None:
    """split/chunk/unbind: every part keeps the input's dims but the one it was cut along."""
    dims = get(src)
    for r in results:
        if get(r) is not None:
            continue
        if r.dim() == src.dim():
            put(r, [e if int(a) == int(b) else None for e, a, b in zip(dims, src.shape, r.shape)])
        else:
            put(r, _in_order(src, tuple(int(d) for d in r.shape)))
