"""Where a layer or a tensor was built: the exact call span in a workspace file (from the
frame's `co_positions`), the simple values in scope there (for fix expressions), and the source
of a constructor argument."""

from __future__ import annotations

import ast
import functools
import inspect
import sys
import types
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from shapelens.analysis.index import ArgSite, CallSite
from shapelens.analysis.source import Span, span
from shapelens.probe.worker import state as probe
from shapelens.probe.worker import symexpr
from shapelens.probe.worker.state import Site, layer_info

if TYPE_CHECKING:
    from shapelens.probe.worker.layer_rule import LayerRule

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
    answered = vars(value).get("_sl_values")  # an assumed config: the attributes it answered so far
    if isinstance(answered, dict):
        attrs.update((k, v) for k, v in answered.items() if _simple(v))
    return attrs


def find_site(skip_self: object = None, with_scope: bool = False, depth: int = 2) -> Site | None:
    state = probe.STATE
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
    state = probe.STATE
    if state is None or not arg.text.isidentifier():
        return None
    frame = sys._getframe(2)
    while frame is not None and not (frame.f_code.co_filename in state.sources
                                     and frame.f_locals.get("self") is not layer):
        frame = frame.f_back
    if frame is None:
        return None
    code = frame.f_code
    owner = frame.f_locals.get("self")
    if arg.text not in code.co_varnames[: code.co_argcount + code.co_kwonlyargcount] or not isinstance(owner, nn.Module):
        return None
    info = layer_info(owner)
    if info is None or info.site is None:
        return None
    _, outer = ctor_arg(type(owner), info.rule, info.site, arg.text)
    if outer is None:
        return None
    try:
        ast.literal_eval(outer.text)
    except (ValueError, SyntaxError):
        return None  # passed through again: keep the fix where the layer is built
    return info.site.path, outer


def call_site(site: Site | None) -> CallSite | None:
    if site is None or probe.STATE is None:
        return None
    index = probe.STATE.index(site.path)
    return index.call_at(site.span) if index else None


@functools.cache
def ctor_params(cls: type, rule: LayerRule | None = None) -> list[str]:
    """The constructor's parameters in order; `rule` is the class's entry in the rule table,
    whose `signature` names them for classes whose __init__ hides them (`*args`)."""
    if rule is not None and rule.signature is not None and rule.cls is cls:
        return list(rule.signature)
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return []
    return [p.name for p in sig.parameters.values()
            if p.name != "self" and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def ctor_arg(module_cls: type, rule: LayerRule | None, site: Site | None,
             param: str) -> tuple[CallSite | None, ArgSite | None]:
    cs = call_site(site)
    if cs is None or probe.STATE is None or site is None:
        return cs, None
    index = probe.STATE.index(site.path)
    if index is None:
        return cs, None
    return cs, index.bind_args(cs.call, ctor_params(module_cls, rule)).get(param)


def module_arg(module: nn.Module, param: str) -> tuple[Site | None, CallSite | None, ArgSite | None]:
    """Where `module` was built and the source of its constructor argument `param`. A layer that
    torch built inside another layer's constructor shares that call but none of its arguments."""
    info = layer_info(module)
    site = info.site if info else None
    cs, arg = ctor_arg(type(module), info.rule if info else None, site, param)
    if info is not None and not info.direct:
        arg = None
    return site, cs, arg


def describe(module: nn.Module) -> str:
    info = layer_info(module)
    cs = call_site(info.site) if info else None
    if info is not None and info.site is not None and cs is not None and cs.target is not None and probe.STATE:
        index = probe.STATE.index(info.site.path)
        if index is not None:
            return index.segment(span(cs.target))
    return type(module).__name__


def fmt_shape(t: torch.Tensor) -> str:
    """A shape as hovers show it: `[B, T, 256]` where dims were assumed."""
    text = symexpr.shape_text(t)
    if text is None:
        with torch._C.DisableTorchFunction():  # called from hooks: a shape read needs no dispatch
            text = str(list(t.shape))
    return text


def tensor_label(t: torch.Tensor) -> str:
    name = getattr(t, "_sl_name", None)
    return f"`{name}` {fmt_shape(t)}" if name else f"a tensor of shape {fmt_shape(t)}"
