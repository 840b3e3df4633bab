"""The checks, as forward hooks on every layer: before a layer runs, its input is checked against
what its rule says it declares (and its parameters against their declared shapes); on a
mismatch the finding is recorded on the constructor argument and the layer runs on an input of
the expected shape, so one probe reports every mismatch of a model. After it runs, its first
shapes are recorded and its output learns which argument made its width."""

from __future__ import annotations

import ast
from fractions import Fraction
from typing import Any

import torch
from torch import nn

from shapelens.analysis.source import span
from shapelens.probe.worker import chain, provenance, symdims, tracking
from shapelens.probe.worker.rules import LayerRule, rule_for
from shapelens.probe.worker.tracking import (
    CREATION,
    LayerInfo,
    Site,
    call_site,
    ctor_arg,
    describe,
    expression_for,
    fmt_shape,
    expressions_for,
    find_site,
    module_arg,
    producer_alts,
    producer_related,
    tensor_label,
)


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
                   message: str, code: str | None = None, shared: bool = False) -> None:
    """`shared`: the argument also sets the width of the layer's main input (a decoder's d_model
    for its memory), so changing it is no fix: the finding goes on the call, and only the
    producer of the odd input can be fixed."""
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
        texts = [module_arg(*producer)[2].text] if producer is not None and module_arg(*producer)[2] else []
        for i, text in enumerate(expressions_for(actual, texts, site.scope, arg.text)):
            fix = {"title": f"Change {param} to {text}",
                   "edits": [{"path": site.path, "span": list(arg.span), "new_text": text}]}
            if i == 0:
                fixes.append(fix)
            else:
                variants.append({"code": code or rule.code, "path": site.path, "span": list(where), "message": message,
                                 "related": related, "fixes": [fix]})
    here = [{"path": site.path, "span": list(where), "message": f"{describe(module)} takes {param}={expected}"}]
    alts = producer_alts(
        [(t, axis, expected)], code or rule.code,
        lambda m, p, text, v: (f"{describe(m)} makes {actual} {unit} ({p}={text}) but {describe(module)} takes "
                               f"{param}={expected}"),
        [arg.text] if arg is not None else [], here)
    message, related, steps = told_as_chain(t, describe(module), str(expected), site.path, where, message, related)
    tracking.STATE.finding(code or rule.code, site.path, where, message, related, fixes, variants + alts,  # type: ignore[union-attr]
                           steps)
    # A width read on a channel axis, or handed over unchanged by another layer, is the same for
    # every input size: searching other image sizes cannot make it agree.
    if (rule.in_axis != -1 and axis in (rule.in_axis, rule.in_axis + t.dim())) or producer is not None:
        tracking.STATE.findings[-1]["fixed_size"] = True  # type: ignore[union-attr]


def told_as_chain(t: torch.Tensor, consumer: str, expects: str, path: str, where, message: str,
                  related: list[dict]) -> tuple[str, list[dict], list[dict]]:
    """The finding told as the flow from the input to the layer: a second line of the message,
    one related location per step, and the steps for the squiggle's hover."""
    steps = chain.steps(t, fmt_shape)
    if len(steps) < 2:
        return message, related, []
    records, step_related = chain.records(steps, consumer, expects, path, where)
    return f"{message}\n{chain.told(steps, consumer, expects)}", related + step_related, records


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
        else:
            site, cs, arg = module_arg(module, rule.in_param)
            if site is not None:
                tracking.STATE.finding(rule.code, site.path, arg.span if arg else site.span, msg)  # type: ignore[union-attr]
        _keep(module, rule, x)
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
    _keep(module, rule, x)
    shape = list(x.shape)
    shape[rule.in_axis] = expected
    return _replace(args, kwargs, where, x.new_zeros(shape))


def _keep(module: nn.Module, rule: LayerRule, x: torch.Tensor) -> None:
    info = module.__dict__.get("_sl")
    if rule.keeps_width and info is not None:
        info.restore = x


def _input_at(args: tuple, kwargs: dict, position: int, name: str):
    if position < len(args):
        return position, args[position]
    if name in kwargs:
        return name, kwargs[name]
    return None, None


def check_inputs(module: nn.Module, rule: LayerRule, args: tuple, kwargs: dict, first: torch.Tensor | None = None):
    """The further inputs a rule declares widths for (Bilinear's input2, a decoder's memory).
    `first`: the main input as it came, before any repair."""
    result = None
    for inp in rule.inputs:
        if isinstance(module, nn.RNNBase):
            return check_hidden(module, rule, args, kwargs)
        where, t = _input_at(args, kwargs, inp.position, inp.name)
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
        args, kwargs = result = _replace(args, kwargs, where, t.new_zeros(shape))
    return result


def check_hidden(module: nn.Module, rule: LayerRule, args: tuple, kwargs: dict):
    """An RNN's initial state: [num_layers * directions, batch, hidden] (no batch when the input
    has none); an LSTM takes (h0, c0), with h0 of proj_size when it projects."""
    _, x = _first_tensor(args, kwargs)
    where, hx = _input_at(args, kwargs, 1, "hx")
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
                tracking.STATE.finding("shape-error", site.path, site.span, msg)  # type: ignore[union-attr]
        fixed.append(t.new_zeros(shape))
    if not changed:
        return None
    new = tuple(fixed) if isinstance(hx, (tuple, list)) else fixed[0]
    return _replace(args, kwargs, where, new)


def check_params(module: nn.Module, rule: LayerRule) -> None:
    """A parameter must keep the shape the constructor declared. Tying weights across layers
    (`self.head.weight = self.embed.weight`) can break that silently: torch then runs with the
    other layer's shape and the declared width is a lie."""
    info = module.__dict__.get("_sl")
    if info is None or info.params_checked or not rule.params:
        return
    info.params_checked = True
    for attr, axis, param in rule.params:
        t = module._parameters.get(attr)
        declared = getattr(module, param, None)
        if not isinstance(t, torch.Tensor) or type(declared) is not int or t.dim() <= axis or t.shape[axis] == declared:
            continue
        actual = int(t.shape[axis])
        site, cs, arg = module_arg(module, param)
        if site is None:
            return
        other = next((li.module for li in tracking.STATE.layers  # type: ignore[union-attr]
                      if li.module is not module and li.direct and getattr(li.module, attr, None) is t), None)
        shared = f", the parameter of {describe(other)} it is tied to" if other is not None else ""
        msg = (f"{describe(module)} declares {param}={declared} but its {attr} has shape {list(t.shape)}{shared}: "
               f"dim {axis} is {actual}")
        here = [{"path": site.path, "span": list(arg.span if arg else site.span),
                 "message": f"{describe(module)} declares {param}={declared}"}]
        texts = []
        alts = []
        if other is not None:
            o_rule = rule_for(type(other))
            o_param = next((p for a, ax, p in (o_rule.params if o_rule else ()) if a == attr and ax == axis), None)
            o_site, _, o_arg = module_arg(other, o_param) if o_param else (None, None, None)
            if o_arg is not None:
                texts.append(o_arg.text)
                text = expression_for(declared, [arg.text] if arg else [], o_site.scope)
                alts.append({"code": "feature-mismatch", "path": o_site.path, "span": list(o_arg.span),
                             "message": f"{describe(other)} makes its {attr} {list(t.shape)} ({o_param}={o_arg.text}), "
                                        f"but {describe(module)}, which shares it, declares {param}={declared}",
                             "related": here, "fixes": [{"title": f"Change {o_param} to {text}", "edits": [
                                 {"path": o_site.path, "span": list(o_arg.span), "new_text": text}]}]})
        fixes = []
        if arg is not None:
            text = expression_for(actual, texts, site.scope)
            fixes.append({"title": f"Change {param} to {text}",
                          "edits": [{"path": site.path, "span": list(arg.span), "new_text": text}]})
        tracking.STATE.finding("feature-mismatch", site.path, arg.span if arg else site.span, msg,  # type: ignore[union-attr]
                      here[:0], fixes, alts)
        # Go on with the parameter the constructor declared, so the rest of the model is checked
        # against the declared widths.
        shape = list(t.shape)
        for a, ax, p in rule.params:
            value = getattr(module, p, None)
            if a == attr and type(value) is int and ax < len(shape):
                shape[ax] = value
        with torch.no_grad():
            module._parameters[attr] = nn.Parameter(t.new_zeros(shape), requires_grad=t.requires_grad)
        return


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
        _keep(module, rule, q)
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
                tracking.STATE.finding("embed-dim-mismatch", info.site.path, span(cs.call.func),  # type: ignore[union-attr]
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
    state = tracking.STATE
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
    if tracking.STATE is None:
        return None
    tracking.STATE.called.add(type(module))  # at the start: a forward that raises was still called
    info = module.__dict__.get("_sl")
    if info is not None:
        info.restore = None
    if info is not None:
        # What the layer really receives, before a mismatch is repaired to probe on.
        _, x = _first_tensor(args, kwargs)
        if x is not None:
            info.record(x, None)
    rule = rule_for(type(module))
    if rule is None:
        return None
    check_params(module, rule)
    check = next((fn for cls, fn in SPECIAL_CHECKS.items() if isinstance(module, cls)), check_width)
    result = check(module, rule, args, kwargs)
    more = check_inputs(module, rule, *(result or (args, kwargs)), first=_first_tensor(args, kwargs)[1])
    return more or result


def _first_out(output: Any) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return None


def _tag_rnn_state(module: nn.Module, output: Any) -> None:
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


def forward_hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
    state = tracking.STATE
    if state is None:
        return
    _, x = _first_tensor(args, kwargs)
    out = _first_out(output)
    info = module.__dict__.get("_sl")
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
        if isinstance(module, nn.RNNBase):
            _tag_rnn_state(module, output)
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
        symdims.put(new, symdims.get(real) or ())
        chain.passed(new, real)
    if isinstance(output, torch.Tensor):
        return new
    return (new, *output[1:]) if isinstance(output, tuple) else output
