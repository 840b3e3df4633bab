"""The rank a forward parameter must have, read from the forward body.

The first layer an input reaches says its last dim (`nn.Linear(dim, ...)` -> `[B, dim]`), not its
rank: a block whose body unpacks `B, T, C = x.size()`, indexes `x[:, 0]` or rearranges
`"b n (h d) -> b h n d"` takes a 3-D input, and probing it 2-D makes a false error. Read here:
tuple unpacking of `.shape` / `.size()`, `.shape[i]` / `.size(i)`, subscripts, `permute`,
`transpose`/`flatten`/`unbind` dims, and einops patterns. Only uses before the parameter is
rebound by something that may change its rank are read.
"""

from __future__ import annotations

import ast

from shapelens.probe.worker.layer_rule import Spec

# Methods taking dims of their tensor: the largest index named bounds the rank from below.
_DIM_METHODS = frozenset({"transpose", "flatten", "unbind", "softmax", "log_softmax", "mean", "sum", "amax", "max",
                          "min", "argmax", "unsqueeze", "squeeze", "chunk", "split", "narrow", "select", "cumsum",
                          "norm", "std", "var", "roll", "movedim", "swapaxes"})
_EINOPS = frozenset({"rearrange", "reduce", "repeat", "Rearrange"})
_EXTRA = ("T", "S", "U", "V")  # made-up dims inserted after B, in this order
SPATIAL = frozenset({"H", "W", "D", "L"})


def _is(node: ast.AST, param: str) -> bool:
    return isinstance(node, ast.Name) and node.id == param


def _shape_of(node: ast.AST, param: str) -> bool:
    """`x.shape` or `x.size()`."""
    return (isinstance(node, ast.Attribute) and node.attr == "shape" and _is(node.value, param)) or (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "size"
        and _is(node.func.value, param) and not node.args and not node.keywords)


def int_constant(node: ast.AST) -> int | None:
    """`3`, `-1`: an int literal, else None."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant) \
            and type(node.operand.value) is int:
        return -node.operand.value
    return None


def _bound(index: int) -> int:
    return index + 1 if index >= 0 else -index


def _pattern_rank(pattern: str) -> tuple[int, bool] | None:
    """Input rank of an einops pattern: its left side's top-level groups (`...` -> at least)."""
    left = pattern.split("->")[0].split(",")[0]
    depth, count, ellipsis = 0, 0, False
    for token in left.replace("(", " ( ").replace(")", " ) ").split():
        if token == "(":
            depth += 1
            if depth == 1:
                count += 1
        elif token == ")":
            depth -= 1
        elif depth == 0:
            if token in ("...", "…"):
                ellipsis = True
            else:
                count += 1
    return (count, not ellipsis) if count else None


def _keeps_rank(value: ast.expr, param: str) -> bool:
    """`x = self.norm(x)`, `x = x + self.attn(x)`, `x = F.gelu(x)`: a rebinding that keeps the
    rank (layers and elementwise ops on it), so later uses still describe the input."""
    if isinstance(value, ast.BinOp):
        return _keeps_rank(value.left, param) or _keeps_rank(value.right, param)
    if isinstance(value, ast.Call) and value.args and _is(value.args[0], param):
        func = value.func
        return isinstance(func, ast.Attribute) and func.attr not in ("view", "reshape", "flatten", "permute",
                                                                     "squeeze", "unsqueeze", "mean", "sum")
    return _is(value, param)


def _uses(fn: ast.FunctionDef, param: str) -> list[ast.AST]:
    """The nodes of `fn`'s body in source order, up to a rebinding of `param` that may change its rank."""
    out: list[ast.AST] = []
    for stmt in fn.body:
        nodes = list(ast.walk(stmt))
        out += nodes
        for node in nodes:
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(_is(t, param) for t in targets) and not (node.value is not None
                                                                  and _keeps_rank(node.value, param)):
                    return out
    return out


def rank_of(fn: ast.FunctionDef, param: str) -> tuple[int, bool] | None:
    """(rank, exact) the body asks of `param`; exact from unpacking, permute or einops, else at least."""
    least = 0
    for node in _uses(fn, param):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Tuple) \
                and _shape_of(node.value, param) and not any(isinstance(e, ast.Starred) for e in node.targets[0].elts):
            return len(node.targets[0].elts), True
        if isinstance(node, ast.Subscript):
            if _shape_of(node.value, param) and (i := int_constant(node.slice)) is not None:
                least = max(least, _bound(i))
            elif _is(node.value, param):
                items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
                real = [e for e in items if not (isinstance(e, ast.Constant) and e.value in (None, Ellipsis))]
                if len(items) > 1 or isinstance(node.slice, ast.Slice):
                    least = max(least, len(real))
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and _is(func.value, param):
            ints = [v for a in node.args if (v := int_constant(a)) is not None]
            ints += [v for k in node.keywords if k.arg == "dim" and (v := int_constant(k.value)) is not None]
            if func.attr == "permute" and ints and len(ints) == len(node.args):
                return len(ints), True
            if func.attr == "size" and ints:
                least = max(least, _bound(ints[0]))
            elif func.attr in _DIM_METHODS and ints:
                least = max([least, *(_bound(i) for i in ints if func.attr not in ("chunk", "split") or i < 0)])
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in _EINOPS and len(node.args) >= 2 and _is(node.args[0], param) \
                and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
            found = _pattern_rank(node.args[1].value)
            if found is not None and found[1]:
                return found
            if found is not None:
                least = max(least, found[0])
    return (least, False) if least else None


def fit(spec, rank: tuple[int, bool] | None):
    """A first layer's spec brought to the body's rank: made-up dims inserted after the batch
    (`[B, 64]` -> `[B, T, 64]`), or dropped when the body unpacks fewer. Only specs that fix just
    their last dims (Linear, LayerNorm, and an Embedding's `[B, T]` indices) change; a
    convolution's spec is its own."""
    if rank is None or not isinstance(spec, Spec) or not _last_dims_only(spec):
        return spec
    want, exact = rank
    dims = list(spec.dims)
    extra = [d for d in _EXTRA if d not in dims]
    while len(dims) < want and extra:
        dims.insert(1 + sum(1 for d in dims[1:] if isinstance(d, str)), extra.pop(0))
    while exact and len(dims) > want and any(isinstance(d, str) and d != "B" for d in dims):
        dims.remove(next(d for d in reversed(dims) if isinstance(d, str) and d != "B"))
    return Spec(tuple(dims), spec.dtype, spec.high) if tuple(dims) != spec.dims else spec


def widened(spec):
    """One more made-up dim, for the rank search (None when the spec is not a last-dims one)."""
    if not isinstance(spec, Spec) or not _last_dims_only(spec) or len(spec.dims) > 3:
        return None
    return fit(spec, (len(spec.dims) + 1, True))


def aligned(specs: dict) -> dict:
    """The inputs whose rank came only from a first layer that fixes their last dims, brought to
    the rank of the longest input beside them (TSLib's `x_mark_enc`, [B, 4] by its Linear, goes
    with `x_enc` [B, T, 7]: both are [B, T, ...]). Empty when none is shorter."""
    ranks = [len(s.dims) for s in specs.values() if isinstance(s, Spec)]
    if not ranks:
        return {}
    top = max(ranks)
    out = {}
    for name, s in specs.items():
        if isinstance(s, Spec) and len(s.dims) < top and (wider := fit(s, (top, True))) is not s:
            out[name] = wider
    return out


def _last_dims_only(spec: Spec) -> bool:
    if not spec.dims or spec.dims[0] != "B" or not spec.dtype.is_floating_point and any(
            isinstance(d, int) for d in spec.dims):
        return False
    names = [d for d in spec.dims if isinstance(d, str)]
    if SPATIAL & set(names):
        return False
    first_int = next((i for i, d in enumerate(spec.dims) if isinstance(d, int)), len(spec.dims))
    return first_int > 0 and all(isinstance(d, int) for d in spec.dims[first_int:])


def one_layout(specs: dict, inferred: set[str]) -> dict:
    """One sequence layout for all of a forward's inputs: where one input reaches a sequence-first
    layer (`nn.MultiheadAttention` takes `[T, B, E]`), an inferred input whose first layer fixes
    only its last dims (a LayerNorm's `[B, T, E]`, found in a branch not taken) is made
    sequence-first too, so the two meet in the same layout."""
    if not any(isinstance(s, Spec) and s.dims[:2] == ("T", "B") for s in specs.values()):
        return specs
    out = dict(specs)
    for name in inferred:
        s = specs.get(name)
        if isinstance(s, Spec) and s.dims[:2] == ("B", "T") and _last_dims_only(s):
            out[name] = Spec(("T", "B", *s.dims[2:]), s.dtype, s.high)
    return out


# Calls whose positional arguments are sizes or ends of a range: a parameter given to one is a number.
_SIZE_CALLS = frozenset({"arange", "range", "zeros", "ones", "empty", "full", "randn", "rand", "eye", "linspace"})


def used_as_size(fn: ast.FunctionDef, param: str) -> bool:
    """`torch.arange(j - i, j)`, `torch.ones(n, n)`: the body makes a range or a tensor of `param`
    elements, so `param` is a length, not a tensor (a position bias's `forward(self, i, j)`)."""
    for node in ast.walk(fn):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name not in _SIZE_CALLS:
            continue
        for arg in node.args:
            if any(_is(n, param) for n in ast.walk(arg)) and not any(
                    isinstance(n, (ast.Attribute, ast.Subscript, ast.Call)) for n in ast.walk(arg)):
                return True
    return False
