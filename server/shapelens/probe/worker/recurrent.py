"""The rule hooks of nn.RNN / nn.LSTM / nn.GRU: their initial state's shape before they run, and
which argument makes the width of the final state after."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from shapelens.probe.worker import provenance
from shapelens.probe.worker import state as probe
from shapelens.probe.worker.origin import describe, find_site, tensor_label
from shapelens.probe.worker.widths import Call, check_width, first_tensor, input_at, replace, width_mismatch
from shapelens.report.codes import SHAPE_ERROR

if TYPE_CHECKING:
    from shapelens.probe.worker.layer_rule import LayerRule


def check_rnn(module: nn.Module, rule: LayerRule, args: tuple, kwargs: dict) -> Call | None:
    result = check_width(module, rule, args, kwargs)
    more = check_hidden(module, rule, *(result or (args, kwargs)))
    return more or result


def check_hidden(module: nn.Module, rule: LayerRule, args: tuple, kwargs: dict) -> Call | None:
    """An RNN's initial state: [num_layers * directions, batch, hidden] (no batch when the input
    has none); an LSTM takes (h0, c0), with h0 of proj_size when it projects."""
    _, x = first_tensor(args, kwargs)
    where, hx = input_at(args, kwargs, 1, "hx")
    if x is None or hx is None or x.dim() not in (2, 3):
        return None
    layers = module.num_layers * (2 if module.bidirectional else 1)
    batch = [int(x.shape[0] if module.batch_first else x.shape[1])] if x.dim() == 3 else []
    h_out = getattr(module, "proj_size", 0) or module.hidden_size
    states = list(hx) if isinstance(hx, (tuple, list)) else [hx]
    wanted = [(layers, *batch, h_out), (layers, *batch, module.hidden_size)][: len(states)]
    names = ["h0", "c0"] if isinstance(module, nn.LSTM) else ["h0"]
    fixed, changed = [], False
    for t, shape, name in zip(states, wanted, names):
        if not isinstance(t, torch.Tensor) or tuple(t.shape) == shape:
            fixed.append(t)
            continue
        changed = True
        if getattr(t, "_sl_madeup", False):
            # A state the probe made up before it knew which dim the RNN reads as the batch.
            fixed.append(t.new_zeros(shape))
            continue
        layout = "[num_layers * directions, batch, hidden_size]" if batch else "[num_layers * directions, hidden_size]"
        msg = (f"{describe(module)} expects the initial state {name} of shape {list(shape)} {layout} but receives "
               f"{tensor_label(t)}")
        param = "proj_size" if name == "h0" and getattr(module, "proj_size", 0) else "hidden_size"
        if t.dim() == len(shape) and tuple(t.shape[:-1]) == shape[:-1]:
            # hidden_size also sets the output and the other state: the state is the odd one.
            width_mismatch(module, rule, param, shape[-1], t, -1, msg, shared=True)
        else:
            site = find_site(depth=3)
            if site is not None:
                probe.current().finding(SHAPE_ERROR, site.path, site.span, msg)
        fixed.append(t.new_zeros(shape))
    if not changed:
        return None
    new = tuple(fixed) if isinstance(hx, (tuple, list)) else fixed[0]
    return replace(args, kwargs, where, new)


def tag_rnn_state(module: nn.Module, output: Any) -> None:
    """h_n (and c_n) carry hidden_size per direction: a width change there moves hidden_size by
    the same amount, which the part's factor expresses against the output's doubled width."""
    if not (isinstance(output, tuple) and len(output) == 2):
        return
    directions = 2 if module.bidirectional else 1
    states = output[1] if isinstance(output[1], tuple) else (output[1],)
    for t in states[:1] if getattr(module, "proj_size", 0) else states:
        if isinstance(t, torch.Tensor) and t.dim():
            provenance.put(t, {-1: [provenance.Part(module, "hidden_size", int(t.shape[-1]) * directions,
                                                    Fraction(1, directions))]})
