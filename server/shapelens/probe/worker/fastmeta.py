"""Fast shape rules for the ops models run most, on the meta device.

torch's meta kernels for elementwise ops, norms and attention are written in Python
(torch._refs / prims) and cost 0.5–7 ms per call; a GPT block runs dozens of them. For these
ops the output shape and dtype follow from the inputs directly. Each rule validates the shape
constraints it relies on and returns NotImplemented whenever anything is unusual or wrong, so
that torch's own kernel runs and raises its own error: the fast path never decides an error.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F

Fallback = NotImplemented


_PLAIN = (torch.Tensor, torch.nn.Parameter)


def _meta(*values) -> bool:
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    # Plain tensors and Parameters (a layer's weight; its __torch_function__ is torch's own), no
    # other subclass: one may change what an op means.
    return bool(tensors) and all(t.device.type == "meta" and type(t) in _PLAIN for t in tensors)


def _like(t: torch.Tensor) -> torch.Tensor:
    """`torch.empty_like` (same shape and dtype; a dense input's strides, else contiguous, as
    torch does) without its Python meta kernel, which imports sympy on first use."""
    if not t.is_contiguous():
        expect = 1
        for d in sorted(range(t.dim()), key=t.stride):
            if t.shape[d] == 1:
                continue
            if t.stride(d) != expect:
                return torch.empty(t.shape, dtype=t.dtype, device="meta")  # overlapping or gapped
            expect *= t.shape[d]
        return torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="meta")
    return torch.empty(t.shape, dtype=t.dtype, device="meta")


def _unary(x, *rest, **kwargs):
    if not isinstance(x, torch.Tensor) or not _meta(x) or not x.dtype.is_floating_point:
        return Fallback
    if kwargs.get("inplace") or (rest and rest[-1] is True and len(rest) >= 2):
        return Fallback
    return _like(x)


def _broadcast(sa: tuple, sb: tuple) -> tuple | None:
    """Broadcasting of two shapes, or None where torch would refuse. torch.broadcast_shapes
    imports sympy on first use (a second in a cold probe)."""
    out = []
    for i in range(1, max(len(sa), len(sb)) + 1):
        x = sa[-i] if i <= len(sa) else 1
        y = sb[-i] if i <= len(sb) else 1
        if x != y and 1 not in (x, y):
            return None
        out.append(y if x == 1 else x)
    return tuple(reversed(out))


def _binary(a, b, *rest, **kwargs):
    if rest or kwargs.get("out") is not None or kwargs.get("alpha") not in (None, 1):
        return Fallback
    if not _meta(a, b):
        return Fallback
    for v in (a, b):
        if not isinstance(v, (torch.Tensor, numbers.Number)) or isinstance(v, bool):
            return Fallback
    sa = a.shape if isinstance(a, torch.Tensor) else ()
    sb = b.shape if isinstance(b, torch.Tensor) else ()
    shape = _broadcast(tuple(sa), tuple(sb))
    try:
        dtype = torch.result_type(a, b)
    except (RuntimeError, TypeError):
        return Fallback
    if shape is None:
        return Fallback
    for t in (a, b):
        if isinstance(t, torch.Tensor) and t.shape == shape and t.dtype == dtype:
            return _like(t)
    return torch.empty(shape, dtype=dtype, device="meta")


def _div(a, b, *rest, **kwargs):
    if kwargs.get("rounding_mode") is not None:
        return Fallback
    out = _binary(a, b, *rest, **{k: v for k, v in kwargs.items() if k != "rounding_mode"})
    if out is Fallback or out.dtype.is_floating_point:
        return out
    return Fallback  # true division of integers promotes to float: let torch say how


def _linear(x, weight, bias=None):
    if not _meta(x, weight, bias) or weight.dim() not in (1, 2) or x.dim() < 1 or x.dtype != weight.dtype:
        return Fallback
    if x.shape[-1] != weight.shape[-1]:
        return Fallback
    out = tuple(x.shape[:-1]) + ((weight.shape[0],) if weight.dim() == 2 else ())
    if bias is not None:
        if bias.dtype != x.dtype:
            return Fallback
        try:
            if _broadcast(tuple(out), tuple(bias.shape)) != tuple(out):
                return Fallback
        except RuntimeError:
            return Fallback
    return torch.empty(out, dtype=x.dtype, device="meta")


def _norm(x, normalized_shape, weight=None, bias=None, eps=None):
    if not _meta(x, weight, bias) or not x.dtype.is_floating_point:
        return Fallback
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if x.dim() < len(ns) or tuple(x.shape[x.dim() - len(ns):]) != ns:
        return Fallback
    for p in (weight, bias):
        if p is not None and tuple(p.shape) != ns:
            return Fallback
    return torch.empty(x.shape, dtype=x.dtype, device="meta")


def _softmax(x, dim=None, _stacklevel=3, dtype=None):
    if not _meta(x) or dim is None or dtype is not None or not x.dtype.is_floating_point:
        return Fallback
    if not -max(x.dim(), 1) <= dim < max(x.dim(), 1):
        return Fallback
    return _like(x)


def _sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    if not _meta(query, key, value) or attn_mask is not None or enable_gqa:
        return Fallback
    if query.dim() < 2 or key.dim() != query.dim() or value.dim() != query.dim():
        return Fallback
    if not (query.dtype == key.dtype == value.dtype) or not query.dtype.is_floating_point:
        return Fallback
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        return Fallback
    if tuple(query.shape[:-2]) != tuple(key.shape[:-2]) or tuple(key.shape[:-2]) != tuple(value.shape[:-2]):
        return Fallback
    return torch.empty(tuple(query.shape[:-1]) + (value.shape[-1],), dtype=query.dtype, device="meta")


def _randint(*args, size=None, dtype=None, device=None, generator=None, requires_grad=False, layout=None,
             pin_memory=False, out=None):
    """`torch.randint(high, size)` / `(low, high, size)` on meta. Its meta kernel imports sympy
    (a second in a cold probe); every probe's integer inputs are made with it."""
    if size is None and args:
        args, size = args[:-1], args[-1]
    if len(args) == 1:
        low, high = 0, args[0]
    elif len(args) == 2:
        low, high = args
    else:
        return Fallback
    if out is not None or generator is not None or requires_grad or pin_memory or layout not in (None, torch.strided):
        return Fallback
    if device is not None and torch.device(device).type != "meta":
        return Fallback
    if not all(type(v) is int for v in (low, high)) or low >= high:
        return Fallback
    if not isinstance(size, (tuple, list, torch.Size)) or not all(type(d) is int and d >= 0 for d in size):
        return Fallback
    if dtype is not None and (not isinstance(dtype, torch.dtype) or dtype.is_complex or dtype == torch.bool):
        return Fallback
    return torch.empty(tuple(size), dtype=dtype or torch.int64, device="meta")


def _random(*size, generator=None, dtype=None, layout=None, device=None, requires_grad=False, pin_memory=False,
            out=None, names=None):
    """`torch.randn(size)` / `torch.rand(size)` on meta (every probe's float inputs are made with
    it): values do not exist there. Its meta kernel imports sympy (a third of a second in a cold
    probe, more than the rest of a small model's probe)."""
    if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)):
        size = tuple(size[0])
    if out is not None or generator is not None or requires_grad or pin_memory or names is not None \
            or layout not in (None, torch.strided):
        return Fallback
    if device is not None and torch.device(device).type != "meta":
        return Fallback
    if not size or not all(type(d) is int and d >= 0 for d in size):
        return Fallback
    if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
        return Fallback  # complex, or an integer dtype torch refuses: its own kernel says so
    return torch.empty(size, dtype=dtype or torch.get_default_dtype(), device="meta")


def _arange(*args, start=None, end=None, step=None, dtype=None, device=None, requires_grad=False, layout=None,
            pin_memory=False, out=None):
    """`torch.arange` with integer bounds on meta (positions); its meta kernel imports sympy."""
    if start is not None or end is not None or step is not None or len(args) not in (1, 2, 3):
        return Fallback
    lo, hi, by = (0, args[0], 1) if len(args) == 1 else (*args, 1)[:3]
    if out is not None or requires_grad or pin_memory or layout not in (None, torch.strided):
        return Fallback
    if device is not None and torch.device(device).type != "meta":
        return Fallback
    if not all(type(v) is int for v in (lo, hi, by)) or by == 0:
        return Fallback
    if dtype is not None and dtype not in (torch.int64, torch.int32, torch.float32):
        return Fallback
    n = max(0, -((lo - hi) // by)) if by > 0 else max(0, -((hi - lo) // -by))
    return torch.empty((n,), dtype=dtype or torch.int64, device="meta")


def _embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
               sparse=False):
    """`F.embedding` on meta: indices' shape + (embedding dim,). Its meta kernel imports sympy;
    index bounds are checked before any fast path runs (ops.check, from known values)."""
    if not _meta(input, weight) or max_norm is not None or weight.dim() != 2:
        return Fallback
    if input.dtype not in (torch.int64, torch.int32) or not weight.dtype.is_floating_point:
        return Fallback
    return torch.empty(tuple(input.shape) + (weight.shape[1],), dtype=weight.dtype, device="meta")


def _init_normal_(tensor, mean=0.0, std=1.0, generator=None):
    return _normal_(tensor, mean, std, generator=generator)


def _normal_(x, mean=0.0, std=1.0, *, generator=None):
    """`nn.init.normal_` (Embedding's init) on meta: values do not exist, so there is nothing to
    fill. torch's meta kernel for it imports torch._dynamo, seconds in a cold probe."""
    # A Parameter (what init fills) is fine too: the op returns its own input.
    if not isinstance(x, torch.Tensor) or x.device.type != "meta" or not x.dtype.is_floating_point:
        return Fallback
    if generator is not None:
        return Fallback
    for v in (mean, std):
        if not isinstance(v, numbers.Real) or isinstance(v, bool):
            return Fallback
    if std < 0:
        return Fallback  # torch's own error
    return x


UNARY = [F.relu, F.gelu, F.silu, F.elu, F.leaky_relu, F.mish, F.hardswish, F.softplus, F.dropout,
         torch.relu, torch.tanh, torch.sigmoid, torch.exp, torch.rsqrt, torch.sqrt, torch.neg,
         torch.Tensor.relu, torch.Tensor.tanh, torch.Tensor.sigmoid, torch.Tensor.exp, torch.Tensor.rsqrt,
         torch.Tensor.sqrt, torch.Tensor.neg, torch.Tensor.__neg__, torch.Tensor.float]
BINARY = [torch.add, torch.mul, torch.sub, torch.Tensor.add, torch.Tensor.mul, torch.Tensor.sub,
          torch.Tensor.__add__, torch.Tensor.__radd__, torch.Tensor.__mul__, torch.Tensor.__rmul__,
          torch.Tensor.__sub__]

RULES: dict = {f: _unary for f in UNARY}
RULES.update({f: _binary for f in BINARY})
RULES.update({torch.div: _div, torch.Tensor.div: _div, torch.Tensor.__truediv__: _div,
              F.linear: _linear, torch._C._nn.linear: _linear,
              F.layer_norm: _norm, torch.layer_norm: _norm,
              F.softmax: _softmax, F.log_softmax: _softmax, torch.softmax: _softmax, torch.Tensor.softmax: _softmax,
              F.scaled_dot_product_attention: _sdpa, torch.Tensor.normal_: _normal_,
              torch.nn.init.normal_: _init_normal_, torch.randint: _randint,
              torch.randn: _random, torch.rand: _random,
              torch.arange: _arange, F.embedding: _embedding})
if hasattr(F, "rms_norm"):
    RULES[F.rms_norm] = _norm
del RULES[torch.Tensor.float]  # `.float()` converts integer tensors too: not a float-only unary op


def fast(func, args: tuple, kwargs: dict):
    """The output of `func(*args, **kwargs)` on meta tensors, or NotImplemented."""
    rule = RULES.get(func)
    if rule is None:
        return Fallback
    try:
        return rule(*args, **kwargs)
    except TypeError:  # an unexpected signature: let torch handle it
        return Fallback
