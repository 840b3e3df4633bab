"""Runtime tracking inside one probe (a forked child of the worker).

- Every nn.Module records where it was constructed: the exact call span in a workspace file
  (from the frame's `co_positions`) and the simple values in scope there (for fix expressions).
  Its forward hooks (hooks.py) check its inputs against its rule.
- Fix expressions: which source text to write for a width, and the same finding told from the
  constructor arguments that produced the disagreeing widths (their provenance).
- A TorchFunctionMode checks the common ops before they run (ops.py), tags tensors with their
  creation site and their widths' provenance, keeps the values of small tensors whose values are
  known (the meta device has none), makes shape-only results where torch's meta kernels are slow
  Python, and falls back to CPU for ops lacking meta kernels.
"""

from __future__ import annotations

import ast
import functools
import inspect
import math
import os
import sys
import types
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

from shapelens.analysis.index import ArgSite, CallSite, SourceIndex
from shapelens.analysis.source import Span, span
from shapelens.probe.worker import chain, fastmeta, ops, provenance, symdims
from shapelens.probe.worker.rules import LayerRule, rule_for

VALUE_LIMIT = 1 << 16  # elements: tensors this small keep their values on the meta device
CPU_FALLBACK_LIMIT = 1 << 24  # elements materialised on CPU for an op without a meta kernel
FACTORIES_WITH_VALUES = {"tensor", "as_tensor", "arange", "LongTensor", "IntTensor", "full", "zeros", "ones", "eye"}
FACTORIES = {"full", "zeros", "ones", "eye", "empty", "tensor", "as_tensor", "arange", "linspace", "logspace",
             "zeros_like", "ones_like", "full_like", "empty_like", "rand", "randn", "randint", "randperm", "tril_indices",
             "triu_indices", "empty_strided", "new_zeros", "new_ones", "new_full", "new_empty", "new_tensor"}
TO_PYTHON = {"__bool__", "item", "__int__", "__float__", "__index__", "tolist"}
CREATION = FACTORIES_WITH_VALUES | {"randint", "randn", "rand", "empty", "zeros_like", "ones_like", "randn_like",
                                    "rand_like", "randperm", "linspace", "eye", "normal", "full_like", "empty_like"}
DEVICE_ARGS = CREATION | FACTORIES


class ProbeTimeout(BaseException):
    """Raised by the probe's timer; a BaseException so user `except Exception:` cannot swallow it."""


class ShapeMismatch(RuntimeError):
    """An op whose inputs do not fit, found by a check before torch ran it. `alts` are findings
    on the constructor arguments that made the disagreeing widths, each with its fix."""

    def __init__(self, message: str, alts: list[dict]) -> None:
        super().__init__(message)
        self.alts = alts


@dataclass
class Site:
    path: str
    span: Span
    scope: dict[str, Any] = field(default_factory=dict)

    def __deepcopy__(self, memo) -> "Site":
        return self  # a record of where something was built; layers torch deep-copies share it


@dataclass
class LayerInfo:
    module: nn.Module
    site: Site | None
    first_in: list[int] | None = None
    first_out: list[int] | None = None
    in_sym: list[str] | None = None  # the dims as hovers show them, when some were assumed
    out_sym: list[str] | None = None
    symbols: dict[str, int] = field(default_factory=dict)  # assumed sizes those dims use
    # Built by the user's own call (not inside a torch layer's constructor): only then do the
    # call's arguments belong to this module.
    direct: bool = True
    params_checked: bool = False
    restore: Any = None  # the input a width-keeping layer really got, when the probe repaired it
    origin: "LayerInfo | None" = None  # for a copy torch made (nn.TransformerEncoder clones its layer)
    owner: str | None = None  # the class whose probe built it (None: module-level code)

    def __deepcopy__(self, memo) -> "LayerInfo":
        import copy

        new = LayerInfo(copy.deepcopy(self.module, memo), self.site, direct=self.direct,
                        params_checked=self.params_checked, origin=self.origin or self, owner=self.owner)
        if STATE is not None:
            STATE.copies.append(new)
        return new

    def record(self, x: torch.Tensor | None, out: torch.Tensor | None) -> None:
        """The shapes of the first call; a copy's first call also shapes the layer it copies,
        which the user built and may never call itself."""
        for info in (self, self.origin) if self.origin is not None else (self,):
            if x is not None and info.first_in is None and info.first_out is None:
                info.first_in, info.in_sym = list(x.shape), symdims.dims_text(x)
                info.symbols = {**info.symbols, **symdims.used_symbols(x)}
            if out is not None and info.first_out is None:
                info.first_out, info.out_sym = list(out.shape), symdims.dims_text(out)
                info.symbols = {**info.symbols, **symdims.used_symbols(out)}


class State:
    """Everything one probe records. One per child process."""

    def __init__(self, files: dict[str, str], device: str) -> None:
        self.sources = files  # path -> source text of every planned workspace file
        self.indexes: dict[str, SourceIndex] = {}
        self.device = device
        self.meta = device == "meta"
        self.findings: list[dict] = []
        self._finding_keys: set[tuple] = set()
        self.tensors: dict[tuple[str, Span], dict] = {}
        self.layers: list[LayerInfo] = []
        self.copies: list[LayerInfo] = []  # layers torch deep-copied (they are not the user's calls)
        self.called: set[type] = set()
        self.instances: dict[type, nn.Module] = {}
        self.assumed: dict[int, str] = {}
        self.at: tuple[str, int] | None = None
        self.missing_notes: dict[tuple[str, int], dict] = {}  # failed import -> its note
        self.timed_out = False
        self.last_split: dict | None = None  # the last split/unbind, to explain a failed unpacking
        # The class whose probe is running (None: module-level code): everything recorded is
        # tagged with it, so the engine can reuse a class's results while its text is unchanged.
        self.owner: str | None = None
        self.probed: list[str] = []

    def index(self, path: str) -> SourceIndex | None:
        if path not in self.indexes:
            src = self.sources.get(path)
            if src is None:
                return None
            try:
                self.indexes[path] = SourceIndex(path, src)
            except SyntaxError:
                return None
        return self.indexes[path]

    # -- findings ---------------------------------------------------------------------------
    def finding(self, code: str, path: str, where: Span, message: str, related: list[dict] | None = None,
                fixes: list[dict] | None = None, alts: list[dict] | None = None,
                steps: list[dict] | None = None) -> None:
        """`alts`: the same problem told from other constructor arguments (the producers of a
        width); the probe keeps whichever fix it verifies to make the file consistent."""
        key = (code, path, tuple(where))
        if key in self._finding_keys:
            return
        self._finding_keys.add(key)
        entry = {"code": code, "path": path, "span": list(where), "message": message,
                 "related": related or [], "fixes": fixes or [], "owner": self.owner}
        if alts:
            entry["alts"] = alts
        if steps:
            entry["chain"] = steps
        self.findings.append(entry)

    # -- attempts (a class probe may try several input sizes) -------------------------------
    def mark(self) -> tuple:
        return (len(self.findings), set(self.tensors), [(li, li.first_in, li.first_out, li.in_sym, li.out_sym,
                                                          li.symbols) for li in self.layers + self.copies],
                set(self.called))

    def rollback(self, mark: tuple) -> None:
        n, keys, layer_state, called = mark
        for f in self.findings[n:]:
            self._finding_keys.discard((f["code"], f["path"], tuple(f["span"])))
        del self.findings[n:]
        for k in set(self.tensors) - keys:
            del self.tensors[k]
        for li, fi, fo, isym, osym, symbols in layer_state:
            li.first_in, li.first_out, li.in_sym, li.out_sym, li.symbols = fi, fo, isym, osym, symbols
        self.called = called

    def errors_since(self, mark: tuple) -> int:
        return sum(1 for f in self.findings[mark[0]:] if f["code"] != "probe-incomplete")


STATE: State | None = None
on_progress = None  # set by the worker: called with (path, line) as the probe moves on


# -- sites ------------------------------------------------------------------------------------
_positions: dict[types.CodeType, list] = {}


def frame_span(frame: types.FrameType, lasti: int | None = None) -> Span:
    code = frame.f_code
    pos = _positions.get(code)
    if pos is None:
        pos = _positions[code] = list(code.co_positions())
    i = (frame.f_lasti if lasti is None else lasti) // 2
    if 0 <= i < len(pos):
        line, end_line, col, end_col = pos[i]
        if line is not None and col is not None:
            return (line, col, end_line or line, end_col if end_col is not None else col)
    return (frame.f_lineno, 0, frame.f_lineno, 0)


def _simple(value: Any) -> bool:
    return isinstance(value, (int, float, str)) or (
        isinstance(value, tuple) and all(isinstance(v, (int, float)) for v in value)
    )


def snapshot(f_locals: dict) -> dict[str, Any]:
    """Simple values in scope where a layer was built: the fix may write an expression of them."""
    out: dict[str, Any] = {}
    for name, value in f_locals.items():
        if name.startswith("__"):
            continue
        if _simple(value):
            out[name] = value
        elif hasattr(value, "__dict__") and not isinstance(
            value, (types.ModuleType, types.FunctionType, torch.Tensor)
        ):
            try:
                attrs = _simple_attrs(value)
            except TypeError:
                continue
            if attrs:
                out[name] = types.SimpleNamespace(**attrs)
    return out


def _simple_attrs(value: Any) -> dict[str, Any]:
    """An object's simple attributes, with those of its own (non-torch) classes under them, so a
    fix can write `self.expansion * planes`."""
    attrs: dict[str, Any] = {}
    if not isinstance(value, type):
        for klass in reversed(type(value).__mro__):
            if not klass.__module__.startswith(("torch", "builtins")):
                attrs.update((k, v) for k, v in vars(klass).items() if not k.startswith("_") and _simple(v))
    attrs.update((k, v) for k, v in vars(value).items() if not k.startswith("_") and _simple(v))
    return attrs


def find_site(skip_self: object = None, with_scope: bool = False, depth: int = 2) -> Site | None:
    state = STATE
    if state is None:
        return None
    frame = sys._getframe(depth)
    while frame is not None:
        if frame.f_code.co_filename in state.sources:
            if skip_self is None or frame.f_locals.get("self") is not skip_self:
                # A module's globals are kept as is and filtered only when a fix needs it:
                # copying them at every layer built there made long scripts quadratic. A
                # function's locals are few, and are copied now: a layer built in a loop must
                # see the loop variable's value of its own iteration.
                scope = {}
                if with_scope:
                    scope = frame.f_locals if frame.f_code.co_name == "<module>" else snapshot(frame.f_locals)
                return Site(frame.f_code.co_filename, frame_span(frame), scope)
        frame = frame.f_back
    return None


def caller_literal(layer: nn.Module, arg: ArgSite) -> tuple[str, ArgSite] | None:
    """Where to fix an argument that only passes a parameter through.

    `nn.MultiheadAttention(dim, heads)` inside `Block.__init__(self, dim, heads)`: the value of
    `heads` was chosen where Block was built (`Block(100, 8)`). Fixing the literal there changes
    this model; rewriting `heads` inside Block would change every model that uses Block.
    """
    if STATE is None or not arg.text.isidentifier():
        return None
    frame = sys._getframe(2)
    while frame is not None and not (frame.f_code.co_filename in STATE.sources
                                     and frame.f_locals.get("self") is not layer):
        frame = frame.f_back
    if frame is None:
        return None
    code = frame.f_code
    owner = frame.f_locals.get("self")
    if arg.text not in code.co_varnames[: code.co_argcount + code.co_kwonlyargcount] or not isinstance(owner, nn.Module):
        return None
    info = owner.__dict__.get("_sl")
    if info is None or info.site is None:
        return None
    _, outer = ctor_arg(type(owner), info.site, arg.text)
    if outer is None:
        return None
    try:
        ast.literal_eval(outer.text)
    except (ValueError, SyntaxError):
        return None  # passed through again: keep the fix where the layer is built
    return info.site.path, outer


def call_site(site: Site | None) -> CallSite | None:
    if site is None or STATE is None:
        return None
    index = STATE.index(site.path)
    return index.call_at(site.span) if index else None


@functools.cache
def ctor_params(cls: type) -> list[str]:
    rule = rule_for(cls)
    if rule is not None and rule.signature is not None and rule.cls is cls:
        return list(rule.signature)
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return []
    return [p.name for p in sig.parameters.values()
            if p.name != "self" and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def ctor_arg(module_cls: type, site: Site | None, param: str) -> tuple[CallSite | None, ArgSite | None]:
    cs = call_site(site)
    if cs is None or STATE is None:
        return cs, None
    index = STATE.index(site.path)  # type: ignore[union-attr]
    return cs, index.bind_args(cs.call, ctor_params(module_cls)).get(param)


def module_arg(module: nn.Module, param: str) -> tuple[Site | None, CallSite | None, ArgSite | None]:
    """Where `module` was built and the source of its constructor argument `param`. A layer that
    torch built inside another layer's constructor shares that call but none of its arguments."""
    info = module.__dict__.get("_sl")
    site = info.site if info else None
    cs, arg = ctor_arg(type(module), site, param)
    if info is not None and not info.direct:
        arg = None
    return site, cs, arg


def describe(module: nn.Module) -> str:
    info = module.__dict__.get("_sl")
    cs = call_site(info.site) if info else None
    if cs is not None and cs.target is not None and STATE is not None:
        return STATE.index(info.site.path).segment(span(cs.target))  # type: ignore[union-attr]
    return type(module).__name__


def fmt_shape(t: torch.Tensor) -> str:
    """A shape as hovers show it: `[B, T, 256]` where dims were assumed."""
    return symdims.shape_text(t) or str(list(t.shape))


# -- fix expressions ----------------------------------------------------------------------------
_SAFE_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Name, ast.Load, ast.Constant, ast.Attribute,
               ast.operator, ast.unaryop, ast.Tuple)


def eval_in(text: str, scope: dict) -> Any:
    """Evaluate a constructor argument's text against simple values only (no calls)."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if not isinstance(node, _SAFE_NODES) or isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            return None
    try:
        return eval(compile(tree, "<fix>", "eval"), {"__builtins__": {}}, dict(scope))  # noqa: S307
    except Exception:  # noqa: BLE001
        return None


def expression_for(value: int, texts: list[str], scope: dict) -> str:
    """The source text to write for `value` where `scope` is: the first of `texts` (expressions
    the code already uses for this width) that evaluates there to `value`, else a name holding
    it, else the literal."""
    return expressions_for(value, texts, scope)[0]


def _is_number(text: str) -> bool:
    return text.strip().lstrip("-").isdigit()


def expressions_for(value: int, texts: list[str], scope: dict, current: str | None = None,
                    limit: int = 4) -> list[str]:
    """Texts that evaluate to `value` in `scope`, best first: an expression the code already uses
    for this width (`embed_dim * 2`), a part of the argument's own expression (`hidden` in
    `hidden * 2`), a name holding the value, and the literal. The probe verifies them in this
    order, so a literal that only fits one layer built in a loop gives way to a name that fits
    every iteration."""
    scope = snapshot(scope)
    found: list[str] = []

    def add(text: str) -> None:
        if text not in found and eval_in(text, scope) == value:
            found.append(text)

    for text in texts:
        if not _is_number(text):
            add(text)
    if current:
        try:
            tree = ast.parse(current.strip(), mode="eval")
        except SyntaxError:
            tree = None
        parts = [n for n in ast.walk(tree) if isinstance(n, (ast.BinOp, ast.Name, ast.Attribute))
                 and n is not tree.body] if tree else []
        for node in sorted(parts, key=lambda n: -(n.end_col_offset - n.col_offset)):
            add(ast.get_source_segment(current.strip(), node) or "")
    for name, v in scope.items():
        if type(v) is int and v == value and name not in {"self"}:
            add(name)
    for text in texts:
        add(text)
    if str(value) not in found:
        found.append(str(value))
    return found[:limit]


def single_producer(t: torch.Tensor, axis: int) -> tuple[nn.Module, str] | None:
    parts = provenance.get(t).get(axis if axis < 0 else axis - t.dim(), [])
    if len(parts) == 1 and parts[0].factor == 1:
        return parts[0].module, parts[0].param
    return None


def producer_related(t: torch.Tensor, axis: int, what: str) -> tuple[tuple[nn.Module, str] | None, list[dict]]:
    neg = axis if axis < 0 else axis - t.dim()
    parts = provenance.get(t).get(neg, [])
    related: list[dict] = []
    for part in parts:
        site, cs, arg = module_arg(part.module, part.param)
        if cs is None or site is None:
            continue
        where = span(cs.statement) if cs.statement is not None else span(cs.call)
        detail = f" ({part.param}={arg.text})" if arg is not None else ""
        share = what if len(parts) == 1 else f"{part.size} of the {int(t.shape[neg])} features"
        related.append({"path": site.path, "span": list(where), "message": f"{share} come from {describe(part.module)}{detail}"})
    if not parts:
        site = getattr(t, "_sl_site", None)
        if site is not None:
            related.append({"path": site.path, "span": list(site.span),
                            "message": f"the input is created here with shape {fmt_shape(t)}"})
    return single_producer(t, neg), related


def producer_alts(sides: list[tuple[torch.Tensor, int, int]], code: str, message, texts: list[str],
                  related: list[dict]) -> list[dict]:
    """The same problem told from the constructor arguments that produced the disagreeing widths:
    one finding per producer, on its argument, with the value that would make the widths agree.
    `message(module, param, arg_text, value)` words it."""
    alts, seen = [], set()
    for t, axis, wanted in sides:
        for module, param, value in provenance.alternatives(t, axis, wanted):
            site, cs, arg = module_arg(module, param)
            if site is None or arg is None or (site.path, arg.span) in seen:
                continue
            seen.add((site.path, arg.span))
            text = expression_for(value, texts, site.scope)
            alts.append({"code": code, "path": site.path, "span": list(arg.span),
                         "message": message(module, param, arg.text, value), "related": related,
                         "fixes": [{"title": f"Change {param} to {text}",
                                    "edits": [{"path": site.path, "span": list(arg.span), "new_text": text}]}]})
    return alts


def tensor_label(t: torch.Tensor) -> str:
    name = getattr(t, "_sl_name", None)
    return f"`{name}` {fmt_shape(t)}" if name else f"a tensor of shape {fmt_shape(t)}"


# -- construction ---------------------------------------------------------------------------
_orig_module_init = nn.Module.__init__


def _built_by_user(module: nn.Module) -> bool:
    """Whether the code that called the layer's constructor is the user's (not torch building
    the parts of a layer, like the Linear layers inside nn.TransformerEncoderLayer)."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_locals.get("self") is module:
        frame = frame.f_back
    return frame is not None and STATE is not None and frame.f_code.co_filename in STATE.sources


def tracked_init(self: nn.Module, *args, **kwargs) -> None:
    _orig_module_init(self, *args, **kwargs)
    if STATE is None or "_sl" in self.__dict__:
        return
    info = LayerInfo(self, find_site(skip_self=self, with_scope=True), direct=_built_by_user(self), owner=STATE.owner)
    self.__dict__["_sl"] = info
    STATE.layers.append(info)
    STATE.instances.setdefault(type(self), self)
    self.register_forward_pre_hook(hooks.pre_hook, with_kwargs=True)
    self.register_forward_hook(hooks.forward_hook, with_kwargs=True)


def wrap_constructor(rule: LayerRule) -> None:
    """Check constructor arguments torch would reject, report them on the argument, and build
    the layer with a repaired value so the rest of the model is still probed."""
    if not rule.checks:
        return
    cls = rule.cls
    orig = cls.__init__
    sig = inspect.signature(orig)
    plain = all(p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in sig.parameters.values())

    @functools.wraps(orig)
    def init(self, *args, **kwargs):
        if STATE is None or not plain:
            return orig(self, *args, **kwargs)
        try:
            bound = sig.bind(self, *args, **kwargs)
        except TypeError:
            return orig(self, *args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        changed = False
        for check in rule.checks:
            try:
                ok = check.ok(values)
            except Exception:  # noqa: BLE001 — odd argument types are torch's to reject
                ok = True
            if ok:
                continue
            site = find_site(skip_self=self, with_scope=True)
            repaired = check.repair(values)
            if site is not None:
                cs, arg = ctor_arg(type(self), site, check.param)
                where = arg.span if arg else (span(cs.call) if cs else site.span)
                fixes = []
                if arg is not None and check.fixable:
                    path, fix_arg = caller_literal(self, arg) or (site.path, arg)
                    fixes.append({"title": f"Change {check.param} to {repaired}",
                                  "edits": [{"path": path, "span": list(fix_arg.span), "new_text": str(repaired)}]})
                STATE.finding("invalid-layer-config", site.path, where, check.message(values), fixes=fixes)
            values[check.param] = repaired
            changed = True
        if changed:
            return orig(**values)
        return orig(self, *args, **kwargs)

    cls.__init__ = init


# -- the function mode ---------------------------------------------------------------------
def _is_meta_gap(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, NotImplementedError) and ("Meta" in text or "meta" in text)


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
        state = STATE
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
            raise ShapeMismatch(problem.message, self._alternatives(problem))
        result = None
        if state.meta:  # shape-only results for ops whose meta kernels are slow Python
            result = fastmeta.fast(func, args, kwargs)
            result = ops.meta_result(name, args, kwargs) if result is NotImplemented else result
        try:
            if result is None:
                result = func(*args, **kwargs)
        except NotImplementedError as exc:
            if not (state.meta and _is_meta_gap(exc)):
                raise
            result = self._cpu_fallback(func, args, kwargs, exc)
        if isinstance(result, torch.Tensor):
            self._tag(result, name, func, args, kwargs, values)
        elif isinstance(result, (tuple, list)):
            provenance.propagate(name, args, kwargs, result)
            symdims.propagate(name, func, args, kwargs, result)
            if name == "split" and args and isinstance(args[0], torch.Tensor):
                size = args[1] if len(args) > 1 else kwargs.get("split_size", kwargs.get("split_size_or_sections"))
                site = find_site(depth=2)
                if type(size) is int and site is not None:
                    state.last_split = {"path": site.path, "line": site.span[0], "tensor": args[0], "size": size,
                                        "dim": kwargs.get("dim", args[2] if len(args) > 2 else 0), "parts": len(result)}
        return result

    @staticmethod
    def _alternatives(problem: ops.Problem) -> list[dict]:
        """The op's disagreeing widths, traced back to the constructor arguments that made them."""
        if not problem.sides:
            return []
        site = find_site(depth=2)
        related = [{"path": site.path, "span": list(site.span), "message": problem.message}] if site else []
        texts = []
        for t, axis, _ in problem.sides:
            producer = single_producer(t, axis)
            if producer is not None:
                arg = module_arg(*producer)[2]
                if arg is not None:
                    texts.append(arg.text)

        def message(module, param, text, value):
            return f"{problem.message}; {describe(module)} makes that width with {param}={text}"

        return producer_alts(problem.sides, "shape-error", message, texts, related)

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
            if STATE is not None and any(e in STATE.assumed for e in ends):
                return None  # positions over an assumed length: their range is not the user's
        try:
            with torch.device("cpu"):
                vals = func(*args, **{**kwargs, "device": "cpu"})
        except Exception:  # noqa: BLE001
            return None
        if isinstance(vals, torch.Tensor) and vals.numel() <= VALUE_LIMIT:
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
        state = STATE
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
            first = next((a for a in args if isinstance(a, torch.Tensor)), None)
            if first is None and args and isinstance(args[0], (list, tuple)):
                first = next((a for a in args[0] if isinstance(a, torch.Tensor)), None)  # cat, stack
            if first is not None and first is not result:
                if name in chain.STEP_OPS:
                    chain.made(result, name.strip("_"), find_site(depth=3), first, fmt_shape)
                else:
                    chain.passed(result, first)
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
        flat, _ = tree_flatten((args, kwargs))
        tensors = [t for t in flat if isinstance(t, torch.Tensor)]
        if not tensors or any(getattr(t, "_sl_values", None) is None for t in tensors if t.device.type == "meta"):
            return
        try:
            cpu_args, cpu_kwargs = tree_map(_to_cpu, (args, kwargs))
            with torch.device("cpu"):
                vals = func(*cpu_args, **cpu_kwargs)
        except Exception:  # noqa: BLE001
            return
        if isinstance(vals, torch.Tensor) and tuple(vals.shape) == tuple(result.shape):
            result._sl_values = vals


# -- device moves ---------------------------------------------------------------------------
def _strip_device(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    kept = []
    for a in args:
        if isinstance(a, (str, torch.device)):
            continue
        if isinstance(a, torch.Tensor):
            kept.append(a.dtype)
            continue
        kept.append(a)
    return tuple(kept), {k: v for k, v in kwargs.items() if k != "device"}


def activate(state: State) -> None:
    """Make `state` the probe's record (a re-probe of edited sources starts a fresh one)."""
    global STATE
    STATE = state


def install(state: State) -> None:
    """Patch torch for this probe. The child process is thrown away afterwards."""
    activate(state)
    nn.Module.__init__ = tracked_init
    from shapelens.probe.worker.rules import RULES

    for rule in RULES:
        wrap_constructor(rule)
    # Model code moves tensors between devices; the probe keeps everything on its own device.
    tensor_to = torch.Tensor.to
    module_to = nn.Module.to

    def t_to(self, *args, **kwargs):
        args, kwargs = _strip_device(args, kwargs)
        return tensor_to(self, *args, **kwargs) if args or kwargs else self

    def m_to(self, *args, **kwargs):
        args, kwargs = _strip_device(args, kwargs)
        return module_to(self, *args, **kwargs) if args or kwargs else self

    torch.Tensor.to = t_to
    nn.Module.to = m_to
    for owner in (torch.Tensor, nn.Module):
        owner.cuda = lambda self, *a, **k: self
        owner.cpu = lambda self, *a, **k: self
    if state.device != "cuda":
        torch.cuda.is_available = lambda: False

    def _exit(code=0):
        # A hard exit would leave no trace of where it happened; as SystemExit it is reported
        # at its line like sys.exit().
        raise SystemExit(code)

    os._exit = _exit


from shapelens.probe.worker import hooks  # noqa: E402 — the hooks use this module's helpers
