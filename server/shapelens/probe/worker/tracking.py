"""Runtime tracking inside one probe (a forked child of the worker).

- Every nn.Module records where it was constructed: the exact call span in a workspace file
  (from the frame's `co_positions`) and the simple values in scope there (for fix expressions).
- Forward pre-hooks check each layer's input against its rule and, on a mismatch, record a
  finding and continue with an input of the expected shape, so one probe reports every mismatch.
- Forward hooks record each layer's first input/output shapes and which constructor argument
  produced a tensor's width (its provenance), so a fix can reuse that expression.
- A TorchFunctionMode tags tensors with their creation site, keeps the values of small tensors
  whose values are known (the meta device has none), and falls back to CPU for ops lacking meta
  kernels.
"""

from __future__ import annotations

import ast
import functools
import inspect
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
from shapelens.probe.worker.rules import LayerRule, rule_for

VALUE_LIMIT = 1 << 16  # elements: tensors this small keep their values on the meta device
CPU_FALLBACK_LIMIT = 1 << 24  # elements materialised on CPU for an op without a meta kernel
FACTORIES_WITH_VALUES = {"tensor", "as_tensor", "arange", "LongTensor", "IntTensor"}
CREATION = FACTORIES_WITH_VALUES | {"randint", "randn", "rand", "empty", "zeros_like", "ones_like", "randn_like",
                                    "rand_like", "randperm", "linspace", "eye", "normal", "full_like", "empty_like"}


class ProbeTimeout(BaseException):
    """Raised by the probe's timer; a BaseException so user `except Exception:` cannot swallow it."""


@dataclass
class Site:
    path: str
    span: Span
    scope: dict[str, Any] = field(default_factory=dict)


@dataclass
class LayerInfo:
    module: nn.Module
    site: Site | None
    first_in: list[int] | None = None
    first_out: list[int] | None = None
    in_sym: str | None = None
    out_sym: str | None = None


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
        self.called: set[type] = set()
        self.instances: dict[type, nn.Module] = {}
        self.assumed: dict[int, str] = {}
        self.at: tuple[str, int] | None = None

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
                fixes: list[dict] | None = None) -> None:
        key = (code, path, where)
        if key in self._finding_keys:
            return
        self._finding_keys.add(key)
        self.findings.append({"code": code, "path": path, "span": list(where), "message": message,
                              "related": related or [], "fixes": fixes or []})

    # -- attempts (a class probe may try several input sizes) -------------------------------
    def mark(self) -> tuple:
        return (len(self.findings), set(self.tensors), [(li, li.first_in, li.first_out, li.in_sym, li.out_sym)
                                                         for li in self.layers], set(self.called))

    def rollback(self, mark: tuple) -> None:
        n, keys, layer_state, called = mark
        for f in self.findings[n:]:
            self._finding_keys.discard((f["code"], f["path"], tuple(f["span"])))
        del self.findings[n:]
        for k in set(self.tensors) - keys:
            del self.tensors[k]
        for li, fi, fo, isym, osym in layer_state:
            li.first_in, li.first_out, li.in_sym, li.out_sym = fi, fo, isym, osym
        self.called = called

    def errors_since(self, mark: tuple) -> int:
        return sum(1 for f in self.findings[mark[0]:] if f["code"] != "probe-incomplete")

    def symbolic(self, shape) -> str | None:
        if not self.assumed or shape is None:
            return None
        dims, hit = [], False
        products = {a * b: f"{sa}*{sb}" for a, sa in self.assumed.items() for b, sb in self.assumed.items() if a != b}
        for d in shape:
            if d in self.assumed:
                dims.append(self.assumed[d])
                hit = True
            elif d in products:
                dims.append(products[d])
                hit = True
            else:
                dims.append(str(d))
        return "[" + ", ".join(dims) + "]" if hit else None


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
            value, (types.ModuleType, type, types.FunctionType, torch.Tensor)
        ):
            try:
                attrs = {k: v for k, v in vars(value).items() if not k.startswith("_") and _simple(v)}
            except TypeError:
                continue
            if attrs:
                out[name] = types.SimpleNamespace(**attrs)
    return out


def find_site(skip_self: object = None, with_scope: bool = False, depth: int = 2) -> Site | None:
    state = STATE
    if state is None:
        return None
    frame = sys._getframe(depth)
    while frame is not None:
        if frame.f_code.co_filename in state.sources:
            if skip_self is None or frame.f_locals.get("self") is not skip_self:
                scope = snapshot(frame.f_locals) if with_scope else {}
                return Site(frame.f_code.co_filename, frame_span(frame), scope)
        frame = frame.f_back
    return None


def call_site(site: Site | None) -> CallSite | None:
    if site is None or STATE is None:
        return None
    index = STATE.index(site.path)
    return index.call_at(site.span) if index else None


@functools.cache
def ctor_params(cls: type) -> list[str]:
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


def describe(module: nn.Module) -> str:
    info = module.__dict__.get("_sl")
    cs = call_site(info.site) if info else None
    if cs is not None and cs.target is not None and STATE is not None:
        return STATE.index(info.site.path).segment(span(cs.target))  # type: ignore[union-attr]
    return type(module).__name__


def fmt_shape(t: torch.Tensor) -> str:
    return STATE.symbolic(list(t.shape)) if STATE and STATE.symbolic(list(t.shape)) else str(list(t.shape))


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


def fix_text(value: int, producer: tuple[nn.Module, str] | None, scope: dict) -> str:
    """The source expression for `value` in the consumer's scope: the producer's own argument
    expression when it evaluates there to the same value, else a name in scope that holds it,
    else the literal."""
    if producer is not None:
        module, param = producer
        info = module.__dict__.get("_sl")
        _, arg = ctor_arg(type(module), info.site if info else None, param)
        if arg is not None and eval_in(arg.text, scope) == value:
            return arg.text
    for name, v in scope.items():
        if type(v) is int and v == value and name not in {"self"}:
            return name
    return str(value)


def producer_related(t: torch.Tensor, axis: int, what: str) -> tuple[tuple[nn.Module, str] | None, list[dict]]:
    prov = getattr(t, "_sl_prov", None) or {}
    producer = prov.get(axis)
    related: list[dict] = []
    if producer is not None:
        module, param = producer
        info = module.__dict__.get("_sl")
        cs, arg = ctor_arg(type(module), info.site if info else None, param)
        if cs is not None and info is not None:
            where = span(cs.statement) if cs.statement is not None else span(cs.call)
            detail = f" ({param}={arg.text})" if arg is not None else ""
            related.append({"path": info.site.path, "span": list(where),
                            "message": f"{what} come from {describe(module)}{detail}"})
    else:
        site = getattr(t, "_sl_site", None)
        if site is not None:
            related.append({"path": site.path, "span": list(site.span),
                            "message": f"the input is created here with shape {fmt_shape(t)}"})
    return producer, related


def tensor_label(t: torch.Tensor) -> str:
    name = getattr(t, "_sl_name", None)
    return f"`{name}` {fmt_shape(t)}" if name else f"a tensor of shape {fmt_shape(t)}"


# -- checks (forward pre-hooks) ---------------------------------------------------------------
def _first_tensor(args: tuple, kwargs: dict) -> tuple[int | str | None, torch.Tensor | None]:
    for i, a in enumerate(args):
        if isinstance(a, torch.Tensor):
            return i, a
    for k, v in kwargs.items():
        if isinstance(v, torch.Tensor):
            return k, v
    return None, None


def _replace(args: tuple, kwargs: dict, where, new) -> tuple[tuple, dict]:
    if isinstance(where, int):
        args = args[:where] + (new,) + args[where + 1 :]
    else:
        kwargs = {**kwargs, where: new}
    return args, kwargs


def width_mismatch(module: nn.Module, rule: LayerRule, param: str, expected: int, t: torch.Tensor, axis: int,
                   message: str) -> None:
    info = module.__dict__.get("_sl")
    site = info.site if info else None
    if site is None:
        return
    cs, arg = ctor_arg(type(module), site, param)
    actual = int(t.shape[axis])
    producer, related = producer_related(t, axis, f"{actual} features")
    where = arg.span if arg else (span(cs.call.func) if cs else site.span)
    fixes = []
    if arg is not None:
        text = fix_text(actual, producer, site.scope)
        fixes.append({"title": f"Change {param} to {text}",
                      "edits": [{"path": site.path, "span": list(arg.span), "new_text": text}]})
    STATE.finding(rule.code, site.path, where, message, related, fixes)  # type: ignore[union-attr]


def check_width(module: nn.Module, rule: LayerRule, args: tuple, kwargs: dict):
    where, x = _first_tensor(args, kwargs)
    if x is None or rule.in_width is None or rule.in_param is None:
        return None
    expected = rule.in_width(module)
    if isinstance(expected, tuple):  # LayerNorm: the trailing dims
        n = len(expected)
        if x.dim() < n or tuple(x.shape[-n:]) == expected:
            return None
        msg = (f"{describe(module)} normalizes over {rule.in_param}={list(expected)} but receives "
               f"{tensor_label(x)}, whose last {n} dim(s) are {list(x.shape[-n:])}")
        if n == 1:
            width_mismatch(module, rule, rule.in_param, expected[0], x, -1, msg)
        new = x.new_zeros(tuple(x.shape[:-n]) + expected)
        return _replace(args, kwargs, where, new)
    if x.dim() < rule.min_dims or -rule.in_axis > x.dim() or x.shape[rule.in_axis] == expected:
        return None
    actual = int(x.shape[rule.in_axis])
    unit = "features" if rule.in_axis == -1 else "channels"
    if rule.code == "embed-dim-mismatch":
        msg = (f"{describe(module)} has {rule.in_param}={expected} but its input {tensor_label(x)} has {actual} "
               f"features; torch's check embed_dim == embed_dim_to_check fails")
    else:
        msg = (f"{describe(module)} expects {rule.in_param}={expected} input {unit} but receives "
               f"{tensor_label(x)} with {actual} {unit}")
    width_mismatch(module, rule, rule.in_param, expected, x, rule.in_axis, msg)
    shape = list(x.shape)
    shape[rule.in_axis] = expected
    return _replace(args, kwargs, where, x.new_zeros(shape))


def check_mha(module: nn.Module, rule: LayerRule, args: tuple, kwargs: dict):
    names = ["query", "key", "value"]
    vals = [args[i] if i < len(args) else kwargs.get(n) for i, n in enumerate(names)]
    q, k, v = vals
    if not all(isinstance(t, torch.Tensor) for t in vals) or q.dim() < 2:
        return None
    E = module.embed_dim
    changed = False
    if q.shape[-1] != E:
        msg = (f"{describe(module)} has embed_dim={E} but the query {tensor_label(q)} has {q.shape[-1]} "
               f"features; torch's assertion embed_dim == embed_dim_to_check ({E} vs {q.shape[-1]}) fails")
        width_mismatch(module, rule, "embed_dim", E, q, -1, msg)
        new_q = q.new_zeros(list(q.shape[:-1]) + [E])
        k = new_q if k is q else k
        v = new_q if v is q else v
        q, changed = new_q, True
    for t, dim_attr, label in ((k, "kdim", "key"), (v, "vdim", "value")):
        expected = getattr(module, dim_attr)
        if t.shape[-1] != expected:
            info = module.__dict__.get("_sl")
            cs = call_site(info.site if info else None)
            if cs is not None:
                close = (cs.call.end_lineno, cs.call.end_col_offset - 1)
                new_text = f", {dim_attr}={t.shape[-1]}"
                STATE.finding("embed-dim-mismatch", info.site.path, span(cs.call.func),  # type: ignore[union-attr]
                              f"{describe(module)} expects the {label} to have {dim_attr}={expected} features but "
                              f"it has {t.shape[-1]} ({tensor_label(t)})",
                              fixes=[{"title": f"Pass {dim_attr}={t.shape[-1]}",
                                      "edits": [{"path": info.site.path, "span": [*close, *close], "new_text": new_text}]}])
            changed = True
    if not changed:
        return None
    # Continue with inputs of the expected widths so later layers are still checked.
    q = q if q.shape[-1] == E else q.new_zeros(list(q.shape[:-1]) + [E])
    k = k if k.shape[-1] == module.kdim else k.new_zeros(list(k.shape[:-1]) + [module.kdim])
    v = v if v.shape[-1] == module.vdim else v.new_zeros(list(v.shape[:-1]) + [module.vdim])
    rest = args[3:]
    kw = {n: val for n, val in kwargs.items() if n not in names}
    return (q, k, v, *rest), kw


def _index_site(x: torch.Tensor) -> Site | None:
    return getattr(x, "_sl_site", None) or find_site(depth=3)


def check_embedding(module: nn.Module, rule: LayerRule, args: tuple, kwargs: dict):
    where, x = _first_tensor(args, kwargs)
    if x is None:
        return None
    state = STATE
    info = module.__dict__.get("_sl")
    result = None
    if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
        site = _index_site(x)
        if site is not None:
            fixes = []
            cs = call_site(site)
            func = cs.call.func if cs else None
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.attr in CREATION:
                fixes.append(_dtype_fix(site, cs.call, func.value.id))
            state.finding("index-dtype", site.path, site.span,
                          f"{describe(module)} needs integer indices (torch.long) but receives {tensor_label(x)} "
                          f"of dtype {str(x.dtype).removeprefix('torch.')}", fixes=fixes)
        x = x.long()
        result = _replace(args, kwargs, where, x)
    n = module.num_embeddings
    values = getattr(x, "_sl_values", None) if x.device.type == "meta" else x.detach()
    bad_value = None
    if values is not None and values.numel() and not values.dtype.is_floating_point:
        bad = values[(values < 0) | (values >= n)]
        if bad.numel():
            bad_value = int(bad.flatten()[0])
    high = getattr(x, "_sl_high", None)
    if bad_value is None and high is not None and high > n:
        hsite = getattr(x, "_sl_high_site", None)
        if hsite is not None:
            state.finding("index-out-of-range", hsite.path, hsite.span,
                          f"indices are drawn from [0, {high}) but {describe(module)} has num_embeddings={n} "
                          f"(valid indices 0..{n - 1})", related=_table_related(module, n))
    if bad_value is not None:
        site = _index_site(x)
        if site is not None:
            cs = call_site(site)
            where_span = site.span
            if cs is not None:
                where_span = state.index(site.path).literal_element(cs.call, bad_value) or site.span
            cs_e, arg = ctor_arg(type(module), info.site if info else None, "num_embeddings")
            fixes = []
            if arg is not None and bad_value >= n:
                top = int(values.max()) + 1
                fixes.append({"title": f"Grow the table to num_embeddings={top}",
                              "edits": [{"path": info.site.path, "span": list(arg.span), "new_text": str(top)}]})
            state.finding("index-out-of-range", site.path, where_span,
                          f"index {bad_value} is out of range for {describe(module)}: num_embeddings={n}, "
                          f"valid indices are 0..{n - 1}", related=_table_related(module, n), fixes=fixes)
        clamped = x.clamp(0, n - 1) if x.device.type != "meta" else x
        if x.device.type == "meta":
            clamped = x.new_zeros(x.shape)
        args, kwargs = result if result else (args, kwargs)
        result = _replace(args, kwargs, where, clamped)
    return result


def _table_related(module: nn.Module, n: int) -> list[dict]:
    info = module.__dict__.get("_sl")
    cs, arg = ctor_arg(type(module), info.site if info else None, "num_embeddings")
    if cs is None or info is None:
        return []
    where = arg.span if arg else span(cs.call)
    return [{"path": info.site.path, "span": list(where),
             "message": f"{describe(module)} has num_embeddings={n} rows: valid indices are 0..{n - 1}"}]


def _dtype_fix(site: Site, call: ast.Call, torch_name: str) -> dict:
    for kw in call.keywords:
        if kw.arg == "dtype":
            return {"title": "Create the indices as torch.long",
                    "edits": [{"path": site.path, "span": list(span(kw.value)), "new_text": f"{torch_name}.long"}]}
    close = (call.end_lineno, call.end_col_offset - 1)
    sep = ", " if call.args or call.keywords else ""
    return {"title": "Create the indices as torch.long",
            "edits": [{"path": site.path, "span": [*close, *close], "new_text": f"{sep}dtype={torch_name}.long"}]}


SPECIAL_CHECKS = {nn.MultiheadAttention: check_mha, nn.Embedding: check_embedding, nn.EmbeddingBag: check_embedding}


def pre_hook(module: nn.Module, args: tuple, kwargs: dict):
    if STATE is None:
        return None
    STATE.called.add(type(module))  # at the start: a forward that raises was still called
    info = module.__dict__.get("_sl")
    if info is not None and info.first_out is None and info.first_in is None:
        # What the layer really receives, before a mismatch is repaired to probe on.
        _, x = _first_tensor(args, kwargs)
        if x is not None:
            info.first_in = list(x.shape)
            info.in_sym = STATE.symbolic(info.first_in)
    rule = rule_for(type(module))
    if rule is None:
        return None
    check = next((fn for cls, fn in SPECIAL_CHECKS.items() if isinstance(module, cls)), check_width)
    return check(module, rule, args, kwargs)


def _first_out(output: Any) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return None


def copy_provenance(src: torch.Tensor, dst: torch.Tensor) -> None:
    prov = getattr(src, "_sl_prov", None)
    if not prov or dst is src or getattr(dst, "_sl_prov", None):
        return
    kept = {a: p for a, p in prov.items()
            if -a <= dst.dim() and -a <= src.dim() and dst.shape[a] == src.shape[a] and (a == -1 or dst.dim() == src.dim())}
    if kept:
        try:
            dst._sl_prov = kept
        except (AttributeError, RuntimeError):
            pass


def forward_hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
    state = STATE
    if state is None:
        return
    _, x = _first_tensor(args, kwargs)
    out = _first_out(output)
    info = module.__dict__.get("_sl")
    if info is not None and info.first_out is None:
        if info.first_in is None and x is not None:
            info.first_in = list(x.shape)
            info.in_sym = state.symbolic(info.first_in)
        info.first_out = list(out.shape) if out is not None else None
        info.out_sym = state.symbolic(info.first_out)
    if out is None:
        return
    rule = rule_for(type(module))
    if rule is not None and rule.out_param:
        try:
            out._sl_prov = {rule.out_axis: (module, rule.out_param)}
        except (AttributeError, RuntimeError):
            pass
    elif x is not None:
        copy_provenance(x, out)


# -- construction ---------------------------------------------------------------------------
_orig_module_init = nn.Module.__init__


def tracked_init(self: nn.Module, *args, **kwargs) -> None:
    _orig_module_init(self, *args, **kwargs)
    if STATE is None or "_sl" in self.__dict__:
        return
    info = LayerInfo(self, find_site(skip_self=self, with_scope=True))
    self.__dict__["_sl"] = info
    STATE.layers.append(info)
    STATE.instances.setdefault(type(self), self)
    self.register_forward_pre_hook(pre_hook, with_kwargs=True)
    self.register_forward_hook(forward_hook, with_kwargs=True)


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
                    fixes.append({"title": f"Change {check.param} to {repaired}",
                                  "edits": [{"path": site.path, "span": list(arg.span), "new_text": str(repaired)}]})
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
        values = None
        if state.meta and name in FACTORIES_WITH_VALUES and kwargs.get("device") in (None, "meta"):
            values = self._values_of_factory(func, args, kwargs)
        try:
            result = func(*args, **kwargs)
        except NotImplementedError as exc:
            if not (state.meta and _is_meta_gap(exc)):
                raise
            result = self._cpu_fallback(func, args, kwargs, exc)
        if isinstance(result, torch.Tensor):
            self._tag(result, name, func, args, kwargs, values)
        return result

    @staticmethod
    def _values_of_factory(func, args, kwargs):
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
            first = next((a for a in args if isinstance(a, torch.Tensor)), None)
            if first is not None and first is not result:
                copy_provenance(first, result)
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


def install(state: State) -> None:
    """Patch torch for this probe. The child process is thrown away afterwards."""
    global STATE
    STATE = state
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
