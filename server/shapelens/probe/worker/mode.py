"""The TorchFunctionMode every probe runs under. Before an op runs it checks the common ops
(ops.py); it tags tensors with their creation site and their widths' provenance, keeps the
values of small tensors whose values are known (the meta device has none), makes shape-only
results where torch's meta kernels are slow Python, and falls back to CPU for ops lacking meta
kernels."""

from __future__ import annotations

import ast
import math
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

from shapelens.analysis.source import span
from shapelens.probe import protocol
from shapelens.probe.protocol import Finding
from shapelens.probe.worker import chain, fastmeta, ops, provenance, symdims
from shapelens.probe.worker import state as probe
from shapelens.probe.worker.origin import call_site, describe, find_site, fmt_shape, tensor_label
from shapelens.probe.worker.producers import producer_alts, producer_text, single_producer
from shapelens.probe.worker.state import ShapeMismatch, Site
from shapelens.report.codes import SHAPE_ERROR

VALUE_LIMIT = 1 << 16  # elements: tensors this small keep their values on the meta device
CPU_FALLBACK_LIMIT = 1 << 24  # elements materialised on CPU for an op without a meta kernel
FACTORIES_WITH_VALUES = {"tensor", "as_tensor", "arange", "LongTensor", "IntTensor", "full", "zeros", "ones", "eye",
                         "linspace", "logspace"}
FACTORIES = {"full", "zeros", "ones", "eye", "empty", "tensor", "as_tensor", "arange", "linspace", "logspace",
             "zeros_like", "ones_like", "full_like", "empty_like", "rand", "randn", "randint", "randperm", "tril_indices",
             "triu_indices", "empty_strided", "new_zeros", "new_ones", "new_full", "new_empty", "new_tensor"}
TO_PYTHON = {"__bool__", "item", "__int__", "__float__", "__index__", "tolist"}
CREATION = FACTORIES_WITH_VALUES | {"randint", "randn", "rand", "empty", "zeros_like", "ones_like", "randn_like",
                                    "rand_like", "randperm", "linspace", "eye", "normal", "full_like", "empty_like"}
DEVICE_ARGS = CREATION | FACTORIES


def is_meta_gap(exc: BaseException) -> bool:
    text = str(exc)
    # A tensor the code made off the meta device (`Tensor(list)` in a buffer) meeting one on it:
    # a limit of the probe, not of the code, which runs on one device.
    return isinstance(exc, NotImplementedError) and ("Meta" in text or "meta" in text) or (
        isinstance(exc, RuntimeError) and "expected device meta" in text)


def _to_cpu(t: Any) -> Any:
    if isinstance(t, torch.Tensor) and t.device.type == "meta":
        values = getattr(t, "_sl_values", None)
        if values is not None:
            return values
        return torch.zeros(t.shape, dtype=t.dtype, device="cpu")
    return t


def _to_meta(t: Any) -> Any:
    return t.to("meta") if isinstance(t, torch.Tensor) else t


class ProbeMode(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        state = probe.STATE
        name = getattr(func, "__name__", "")
        if state is None:
            return func(*args, **kwargs)
        if "device" in kwargs and kwargs["device"] is not None and name in DEVICE_ARGS:
            # Model code creates tensors on its own device (`device=device`); the probe keeps
            # everything on the probe's device.
            kwargs = {**kwargs, "device": None}
        if name in TO_PYTHON and args and isinstance(args[0], torch.Tensor) and args[0].device.type == "meta":
            known = getattr(args[0], "_sl_values", None)
            if known is not None:
                return getattr(known, name)()  # a small tensor whose values the probe knows
        values = None
        if state.meta and name in FACTORIES_WITH_VALUES and kwargs.get("device") in (None, "meta"):
            values = self._values_of_factory(func, args, kwargs)
        problem = ops.check(name, args, kwargs, tensor_label)
        if problem is not None:
            fixed = bool(problem.sides) and all(single_producer(t, axis) is not None for t, axis, _ in problem.sides)
            raise ShapeMismatch(problem.message, self._alternatives(problem), fixed)
        result = None
        if state.meta:  # shape-only results for ops whose meta kernels are slow Python
            result = fastmeta.fast(func, args, kwargs)
            result = ops.meta_result(name, args, kwargs) if result is NotImplemented else result
        try:
            if result is None:
                result = func(*args, **kwargs)
        except NotImplementedError as exc:
            if not (state.meta and is_meta_gap(exc)):
                raise
            result = self._cpu_fallback(func, args, kwargs, exc)
        if isinstance(result, torch.Tensor):
            self._tag(result, name, func, args, kwargs, values)
        elif isinstance(result, (tuple, list)):
            if state.meta:  # `for rate in torch.linspace(0, 0.1, depth)` unbinds a tensor with values
                self._propagate_values(result, func, args, kwargs)
            provenance.propagate(name, args, kwargs, result)
            symdims.propagate(name, func, args, kwargs, result)
            if name == "split" and args and isinstance(args[0], torch.Tensor):
                size = args[1] if len(args) > 1 else kwargs.get("split_size", kwargs.get("split_size_or_sections"))
                site = find_site(depth=2)
                if type(size) is int and site is not None:
                    state.last_split = {"path": site.path, "line": site.span[0], "tensor": args[0], "size": size,
                                        "dim": kwargs.get("dim", kwargs.get("axis", args[2] if len(args) > 2 else 0)), "parts": len(result)}
        return result

    @staticmethod
    def _alternatives(problem: ops.Problem) -> list[Finding]:
        """The op's disagreeing widths, traced back to the constructor arguments that made them."""
        if not problem.sides:
            return []
        site = find_site(depth=2)
        related = [protocol.related(site.path, site.span, problem.message)] if site else []
        texts = [text for t, axis, _ in problem.sides if (text := producer_text(single_producer(t, axis))) is not None]

        def message(module, param, text, value):
            return f"{problem.message}; {describe(module)} makes that width with {param}={text}"

        return producer_alts(problem.sides, SHAPE_ERROR, message, texts, related)

    @staticmethod
    def _values_of_factory(func, args, kwargs):
        if func.__name__ in ("full", "zeros", "ones", "eye"):
            # Only small ones: their values are computed on CPU first.
            if args and isinstance(args[0], (tuple, list, torch.Size)):
                size = list(args[0])
            else:
                size = [a for a in (args[:1] if func.__name__ == "full" else args) if isinstance(a, int)]
            if func.__name__ == "eye" and len(size) == 1:
                size = size * 2
            if not size or not all(isinstance(d, int) for d in size) or math.prod(size) > VALUE_LIMIT:
                return None
        if func.__name__ == "arange":
            ends = [a for a in args if isinstance(a, int)]
            if any(abs(e) > VALUE_LIMIT for e in ends):
                return None
        try:
            with torch.device("cpu"):
                vals = func(*args, **{**kwargs, "device": "cpu"})
        except Exception:  # noqa: BLE001
            return None
        if isinstance(vals, torch.Tensor) and vals.numel() <= VALUE_LIMIT:
            if func.__name__ == "arange" and probe.STATE is not None and any(e in probe.STATE.assumed for e in ends):
                # Positions over an assumed length: their range is not the user's (no index check
                # reads it), but a library's `(positions[:, -1] == 0).all()` may still branch on it.
                vals._sl_assumed = True
            return vals
        return None

    @staticmethod
    def _cpu_fallback(func, args, kwargs, exc):
        flat, _ = tree_flatten((args, kwargs))
        size = sum(t.numel() for t in flat if isinstance(t, torch.Tensor))
        if size > CPU_FALLBACK_LIMIT:
            raise exc
        cpu_args, cpu_kwargs = tree_map(_to_cpu, (args, kwargs))
        return tree_map(_to_meta, func(*cpu_args, **cpu_kwargs))

    def _tag(self, result: torch.Tensor, name: str, func, args, kwargs, values) -> None:
        state = probe.current()
        try:
            if name in CREATION and getattr(result, "_sl_site", None) is None:
                site = find_site(depth=3)
                if site is not None:
                    result._sl_site = site
                    if name == "randint":
                        self._tag_randint(result, site, args, kwargs)
            if state.meta and result.device.type == "meta":
                if values is not None:
                    result._sl_values = values
                elif result.numel() <= VALUE_LIMIT and name not in CREATION:
                    self._propagate_values(result, func, args, kwargs)
            provenance.propagate(name, args, kwargs, result)
            symdims.propagate(name, func, args, kwargs, result)
            chain.after_op(name, args, result, lambda: find_site(depth=4), fmt_shape)
            first = next((a for a in args if isinstance(a, torch.Tensor)), None)
            if first is not None and first is not result:
                if getattr(result, "_sl_site", None) is None and getattr(first, "_sl_values", None) is not None:
                    result._sl_site = first._sl_site
        except (AttributeError, RuntimeError):
            pass

    @staticmethod
    def _tag_randint(result, site: Site, args, kwargs) -> None:
        ints = [a for a in args if isinstance(a, int)]
        high = kwargs.get("high", ints[1] if len(ints) >= 2 else (ints[0] if ints else None))
        if not isinstance(high, int):
            return
        result._sl_high = high
        cs = call_site(site)
        if cs is not None:
            pos = [a for a in cs.call.args if not isinstance(a, ast.Starred)]
            node = next((k.value for k in cs.call.keywords if k.arg == "high"), None)
            if node is None and len(ints) >= 2 and len(pos) >= 2:
                node = pos[1]
            elif node is None and len(ints) == 1 and pos:
                node = pos[0]
            if node is not None:
                result._sl_high_site = Site(site.path, span(node))

    @staticmethod
    def _propagate_values(result, func, args, kwargs) -> None:
        tensors = provenance.tensors_in((args, kwargs))
        if not tensors or any(getattr(t, "_sl_values", None) is None for t in tensors if t.device.type == "meta"):
            return
        try:
            cpu_args, cpu_kwargs = tree_map(_to_cpu, (args, kwargs))
            with torch.device("cpu"):
                vals = func(*cpu_args, **cpu_kwargs)
        except Exception:  # noqa: BLE001
            return
        if any(getattr(getattr(t, "_sl_values", None), "_sl_assumed", False) for t in tensors):
            for val in vals if isinstance(vals, (tuple, list)) else [vals]:
                if isinstance(val, torch.Tensor):
                    val._sl_assumed = True
        if isinstance(result, (tuple, list)) and isinstance(vals, (tuple, list)) and len(vals) == len(result):
            for part, val in zip(result, vals):
                if isinstance(part, torch.Tensor) and isinstance(val, torch.Tensor) and part.shape == val.shape \
                        and part.device.type == "meta":
                    part._sl_values = val
        elif isinstance(vals, torch.Tensor) and tuple(vals.shape) == tuple(result.shape):
            result._sl_values = vals
