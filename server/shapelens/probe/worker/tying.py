"""Parameters against their declared shapes. Tying weights across layers
(`self.head.weight = self.embed.weight`) can break that silently: torch then runs with the other
layer's shape and the declared width is a lie."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from shapelens.probe import protocol
from shapelens.probe.protocol import Finding
from shapelens.probe.worker import state as probe
from shapelens.probe.worker.fixtext import expression_for
from shapelens.probe.worker.origin import describe, module_arg
from shapelens.probe.worker.state import LayerInfo, layer_info
from shapelens.report.codes import FEATURE_MISMATCH

if TYPE_CHECKING:
    from shapelens.probe.worker.layer_rule import LayerRule


def check_params(module: nn.Module, rule: LayerRule) -> None:
    """A parameter must keep the shape the constructor declared; on a mismatch the layer goes on
    with a parameter of the declared shape, so the rest of the model is checked against it."""
    info = layer_info(module)
    if info is None or info.params_checked or not rule.params:
        return
    info.params_checked = True
    state = probe.current()
    for attr, axis, param in rule.params:
        t = module._parameters.get(attr)
        declared = getattr(module, param, None)
        if not isinstance(t, torch.Tensor) or type(declared) is not int or t.dim() <= axis or t.shape[axis] == declared:
            continue
        actual = int(t.shape[axis])
        site, cs, arg = module_arg(module, param)
        if site is None:
            return
        other = next((li for li in state.layers
                      if li.module is not module and li.direct and getattr(li.module, attr, None) is t), None)
        shared = f", the parameter of {describe(other.module)} it is tied to" if other is not None else ""
        msg = (f"{describe(module)} declares {param}={declared} but its {attr} has shape {list(t.shape)}{shared}: "
               f"dim {axis} is {actual}")
        here = [protocol.related(site.path, arg.span if arg else site.span,
                                 f"{describe(module)} declares {param}={declared}")]
        texts: list[str] = []
        alts: list[Finding] = []
        if other is not None:
            alt = _tied_alt(other, attr, axis, t, declared, arg.text if arg else None, describe(module), param, here)
            if alt is not None:
                texts.append(alt[0])
                alts.append(alt[1])
        fixes = []
        if arg is not None:
            fixes.append(protocol.change(param, site.path, arg.span, expression_for(actual, texts, site.scope)))
        state.finding(FEATURE_MISMATCH, site.path, arg.span if arg else site.span, msg, here[:0], fixes, alts)
        shape = list(t.shape)
        for a, ax, p in rule.params:
            value = getattr(module, p, None)
            if a == attr and type(value) is int and ax < len(shape):
                shape[ax] = value
        with torch.no_grad():
            module._parameters[attr] = nn.Parameter(t.new_zeros(shape), requires_grad=t.requires_grad)
        return


def _tied_alt(other: LayerInfo, attr: str, axis: int, t: torch.Tensor, declared: int, arg_text: str | None,
              name: str, param: str, here: list) -> tuple[str, Finding] | None:
    """The same finding told on the layer the parameter is tied to: its argument that made the
    shape, and the fix there."""
    o_rule = other.rule
    o_param = next((p for a, ax, p in (o_rule.params if o_rule else ()) if a == attr and ax == axis), None)
    o_site, _, o_arg = module_arg(other.module, o_param) if o_param else (None, None, None)
    if o_arg is None or o_site is None or o_param is None:
        return None
    text = expression_for(declared, [arg_text] if arg_text else [], o_site.scope)
    message = (f"{describe(other.module)} makes its {attr} {list(t.shape)} ({o_param}={o_arg.text}), "
               f"but {name}, which shares it, declares {param}={declared}")
    return o_arg.text, protocol.finding(FEATURE_MISMATCH, o_site.path, o_arg.span, message, here,
                                        [protocol.change(o_param, o_site.path, o_arg.span, text)])


def shape_tied(layers: list[LayerInfo]) -> None:
    """A layer never called whose weights are those of a layer that ran (a model's `shared`
    embedding, tied to the `embed_tokens` of each stack it builds, which are what forward
    calls): it takes that layer's shapes, since every call of the twin is a call of its table."""
    ran: dict[int, LayerInfo] = {}
    for info in layers:
        if info.first_in is not None and info.first_out is not None:
            for p in info.module.parameters(recurse=False):
                ran.setdefault(id(p), info)
    for info in layers:
        if info.first_in is not None or info.first_out is not None:
            continue
        params = list(info.module.parameters(recurse=False))
        twin = ran.get(id(params[0])) if params else None
        if twin is None or type(twin.module) is not type(info.module) or any(ran.get(id(p)) is not twin
                                                                           for p in params):
            continue
        info.first_in, info.in_sym, info.first_out, info.out_sym = twin.first_in, twin.in_sym, twin.first_out, \
            twin.out_sym
        info.symbols = dict(twin.symbols)
