"""The common pre-forward check: a layer's input width against the constructor argument that
declares it (and the further inputs its rule declares). On a mismatch the finding goes on the
argument, with fixes for it and for the producer of the odd width, and the layer runs on an
input of the expected shape, so one probe reports every mismatch of a model."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

import torch
from torch import nn

from shapelens.analysis.source import span
from shapelens.probe import protocol
from shapelens.probe.protocol import Finding
from shapelens.probe.worker import chain, provenance, symexpr
from shapelens.probe.worker import state as probe
from shapelens.probe.worker.bodyrank import SPATIAL
from shapelens.probe.worker.fixtext import expressions_for
from shapelens.probe.worker.origin import describe, find_site, fmt_shape, module_arg, tensor_label
from shapelens.probe.worker.producers import producer_alts, producer_related, producer_text
from shapelens.probe.worker.state import Site, layer_info
from shapelens.report.codes import EMBED_DIM_MISMATCH

if TYPE_CHECKING:
    from shapelens.probe.worker.layer_rule import LayerRule

Call = tuple[tuple, dict]  # a forward call's (args, kwargs)


def first_tensor(args: tuple, kwargs: dict) -> tuple[int | str | None, torch.Tensor | None]:
    for i, a in enumerate(args):
        if isinstance(a, torch.Tensor):
            return i, a
    for k, v in kwargs.items():
        if isinstance(v, torch.Tensor):
            return k, v
    return None, None


def replace(args: tuple, kwargs: dict, where, new) -> Call:
    if isinstance(where, int):
        args = args[:where] + (new,) + args[where + 1 :]
    else:
        kwargs = {**kwargs, where: new}
    return args, kwargs


def input_at(args: tuple, kwargs: dict, position: int, name: str):
    if position < len(args):
        return position, args[position]
    if name in kwargs:
        return name, kwargs[name]
    return None, None


def keep(module: nn.Module, rule: LayerRule, x: torch.Tensor) -> None:
    """A width-keeping layer hands on the width it received (forward_hook restores it)."""
    info = layer_info(module)
    if rule.keeps_width and info is not None:
        info.restore = x


def width_mismatch(module: nn.Module, rule: LayerRule, param: str, expected: int, t: torch.Tensor, axis: int,
                   message: str, code: str | None = None, shared: bool = False) -> None:
    """`shared`: the argument also sets the width of the layer's main input (a decoder's d_model
    for its memory), so changing it is no fix: the finding goes on the call, and only the
    producer of the odd input can be fixed."""
    state = probe.current()
    code = code or rule.code
    site, cs, arg = module_arg(module, param)
    if site is None:
        return
    if shared:
        call = find_site(depth=3)
        if call is None:
            return
        site, cs, arg = Site(call.path, call.span, {}), None, None
    actual = int(t.shape[axis])
    unit = "features" if axis == -1 else "channels"
    producer, related = producer_related(t, axis, f"{actual} {unit}")
    where = arg.span if arg else (span(cs.call.func) if cs else site.span)
    fixes, variants = [], []
    if arg is not None:
        text = producer_text(producer)
        for i, option in enumerate(expressions_for(actual, [text] if text is not None else [], site.scope, arg.text)):
            fix = protocol.change(param, site.path, arg.span, option)
            if i == 0:
                fixes.append(fix)
            else:
                variants.append(protocol.finding(code, site.path, where, message, related, [fix]))
    here = [protocol.related(site.path, where, f"{describe(module)} takes {param}={expected}")]
    alts: list[Finding] = producer_alts(
        [(t, axis, expected)], code,
        lambda m, p, text, v: (f"{describe(m)} makes {actual} {unit} ({p}={text}) but {describe(module)} takes "
                               f"{param}={expected}"),
        [arg.text] if arg is not None else [], here)
    message, related, steps = chain.told_as_chain(t, describe(module), str(expected), site.path, where, message,
                                                  related, fmt_shape)
    entry = state.finding(code, site.path, where, message, related, fixes, variants + alts, steps)
    # A width read on a channel axis, or handed over unchanged by another layer, is the same for
    # every input size: searching other image sizes cannot make it agree.
    # Not when the axis merged sides of the made-up input (`flatten` of a [B, 512, 1, 1]: the
    # producer's 512 times sides that another input size makes 2x2).
    if entry is not None and ((rule.in_axis != -1 and axis in (rule.in_axis, rule.in_axis + t.dim()))
                              or producer is not None) and not _merged_sides(t, axis):
        entry["fixed_size"] = True
    elif entry is not None and (dims := symexpr.get(t)) and -len(dims) <= axis < len(dims) \
            and isinstance(dims[axis], symexpr.Dim) and dims[axis].symbols() and dims[axis].symbols() <= set(SPATIAL):
        state.size_exprs.append((dims[axis], expected))


def _merged_sides(t: torch.Tensor, axis: int) -> bool:
    dims = symexpr.get(t)
    if not dims or not -len(dims) <= axis < len(dims):
        return False
    d = dims[axis]
    return isinstance(d, symexpr.Unknown) or isinstance(d, symexpr.Dim) and bool(d.symbols() & SPATIAL)


def declares_input(module: nn.Module, rule: LayerRule, x: torch.Tensor, axis: int) -> None:
    """A made-up input's width that no layer produced was made to fit the first layer that takes
    it. When that layer keeps the width (a norm before the first Linear), a layer further on that
    disagrees could as well be agreed with by changing this layer's declaration (and so the
    input): the width is recorded as this layer's, so that fix is tried too."""
    if not rule.keeps_width or not probe.current().made_up_inputs or rule.in_param is None:
        return
    neg = axis if axis < 0 else axis - x.dim()
    if neg not in provenance.get(x):
        provenance.put(x, {**provenance.get(x), neg: [provenance.Part(module, rule.in_param, int(x.shape[neg]),
                                                                      Fraction(1))]})


def check_width(module: nn.Module, rule: LayerRule, args: tuple, kwargs: dict) -> Call | None:
    where, x = first_tensor(args, kwargs)
    if x is None or rule.in_width is None or rule.in_param is None:
        return None
    expected = rule.in_width(module)
    if isinstance(expected, tuple):  # LayerNorm: the trailing dims
        n = len(expected)
        if x.dim() >= n and tuple(x.shape[-n:]) == expected and n == 1:
            declares_input(module, rule, x, -1)
        if x.dim() < n or tuple(x.shape[-n:]) == expected:
            return None
        msg = (f"{describe(module)} normalizes over {rule.in_param}={list(expected)} but receives "
               f"{tensor_label(x)}, whose last {n} dim(s) are {list(x.shape[-n:])}")
        if n == 1:
            width_mismatch(module, rule, rule.in_param, expected[0], x, -1, msg)
        else:
            site, cs, arg = module_arg(module, rule.in_param)
            if site is not None:
                probe.current().finding(rule.code, site.path, arg.span if arg else site.span, msg)
        keep(module, rule, x)
        new = x.new_zeros(tuple(x.shape[:-n]) + expected)
        return replace(args, kwargs, where, new)
    if x.dim() < rule.min_dims or -rule.in_axis > x.dim():
        return None
    if x.shape[rule.in_axis] == expected:
        declares_input(module, rule, x, rule.in_axis)
        return None
    actual = int(x.shape[rule.in_axis])
    unit = "features" if rule.in_axis == -1 else "channels"
    if rule.code == EMBED_DIM_MISMATCH:
        msg = (f"{describe(module)} has {rule.in_param}={expected} but its input {tensor_label(x)} has {actual} "
               f"features; torch's check embed_dim == embed_dim_to_check fails")
    else:
        msg = (f"{describe(module)} expects {rule.in_param}={expected} input {unit} but receives "
               f"{tensor_label(x)} with {actual} {unit}")
    width_mismatch(module, rule, rule.in_param, expected, x, rule.in_axis, msg)
    keep(module, rule, x)
    shape = list(x.shape)
    shape[rule.in_axis] = expected
    return replace(args, kwargs, where, x.new_zeros(shape))


def check_inputs(module: nn.Module, rule: LayerRule, args: tuple, kwargs: dict,
                 first: torch.Tensor | None = None) -> Call | None:
    """The further inputs a rule declares widths for (Bilinear's input2, a decoder's memory).
    `first`: the main input as it came, before any repair."""
    result = None
    for inp in rule.inputs:
        where, t = input_at(args, kwargs, inp.position, inp.name)
        if not isinstance(t, torch.Tensor) or t.dim() == 0 or -inp.axis > t.dim():
            continue
        expected = inp.width(module)
        actual = int(t.shape[inp.axis])
        if actual == expected:
            continue
        shared = inp.param == rule.in_param
        same = isinstance(first, torch.Tensor) and first.dim() and int(first.shape[-1]) == actual
        if not (shared and same):  # else: the main input's finding, and its fix, cover this one
            msg = (f"{describe(module)} expects its {inp.name} to have {inp.param}={expected} features but "
                   f"receives {tensor_label(t)} with {actual}")
            width_mismatch(module, rule, inp.param, expected, t, inp.axis, msg, shared=shared)
        shape = list(t.shape)
        shape[inp.axis] = expected
        args, kwargs = result = replace(args, kwargs, where, t.new_zeros(shape))
    return result


def check_layer(module: nn.Module, rule: LayerRule, args: tuple, kwargs: dict) -> Call | None:
    """The check of a rule without its own: the main input's width, then the further inputs."""
    result = check_width(module, rule, args, kwargs)
    more = check_inputs(module, rule, *(result or (args, kwargs)), first=first_tensor(args, kwargs)[1])
    return more or result
