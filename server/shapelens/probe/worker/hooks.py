"""The forward hooks every layer gets (patches.py registers them). Before a layer runs, its
parameters and its input are checked against its rule (the rule's own `check`, or the common
width check); after it runs, its first shapes are recorded and its output learns which argument
made its width."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from shapelens.probe.worker import chain, provenance, symexpr
from shapelens.probe.worker import state as probe
from shapelens.probe.worker.origin import describe, find_site, fmt_shape
from shapelens.probe.worker.rules import rule_for
from shapelens.probe.worker.state import LayerInfo, layer_info
from shapelens.probe.worker.tying import check_params
from shapelens.probe.worker.widths import check_layer, first_tensor


def pre_hook(module: nn.Module, args: tuple, kwargs: dict):
    state = probe.STATE
    if state is None:
        return None
    state.called.add(type(module))  # at the start: a forward that raises was still called
    info = layer_info(module)
    if info is not None:
        info.restore = None
        # What the layer really receives, before a mismatch is repaired to probe on.
        _, x = first_tensor(args, kwargs)
        if x is not None:
            info.record(x, None)
    rule = rule_for(type(module))
    if rule is None:
        return None
    check_params(module, rule)
    return (rule.check or check_layer)(module, rule, args, kwargs)


def first_output(output: Any) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return None


def forward_hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
    if probe.STATE is None:
        return None
    _, x = first_tensor(args, kwargs)
    out = first_output(output)
    info = layer_info(module)
    if info is not None:
        info.record(x, out)
    if out is None:
        return None
    if info is not None and info.direct:
        chain.made(out, describe(module), find_site(depth=2), x, fmt_shape)
    if info is not None and info.restore is not None:
        return _restored(info, output, out)
    rule = rule_for(type(module))
    if rule is not None and rule.out_param:
        provenance.from_layer(module, rule.out_param, out, rule.out_axis)
        if rule.on_output is not None:
            rule.on_output(module, output)
    elif x is not None:
        provenance.propagate(type(module).__name__, (x,), {}, output)
    return None


def _restored(info: LayerInfo, output: Any, out: torch.Tensor) -> Any:
    """A width-keeping layer that got the wrong width hands on the width it received: the
    mismatch is reported once, on it, and not again on every layer after it."""
    real, info.restore = info.restore, None
    new = out.new_zeros(real.shape) if out.dim() == real.dim() else out
    provenance.put(new, provenance.get(real))
    if new is not out:
        symexpr.put(new, symexpr.get(real) or ())
        chain.passed(new, real)
    if isinstance(output, torch.Tensor):
        return new
    return (new, *output[1:]) if isinstance(output, tuple) else output
