"""The rule hook of nn.MultiheadAttention: query, key and value against embed_dim, kdim, vdim."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from shapelens.analysis.source import span
from shapelens.probe import protocol
from shapelens.probe.worker import state as probe
from shapelens.probe.worker.origin import call_site, describe, tensor_label
from shapelens.probe.worker.state import layer_info
from shapelens.probe.worker.widths import Call, keep, width_mismatch
from shapelens.report.codes import EMBED_DIM_MISMATCH

if TYPE_CHECKING:
    from shapelens.probe.worker.layer_rule import LayerRule


def check_mha(module: nn.Module, rule: LayerRule, args: tuple, kwargs: dict) -> Call | None:
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
        keep(module, rule, q)
        new_q = q.new_zeros(list(q.shape[:-1]) + [E])
        k = new_q if k is q else k
        v = new_q if v is q else v
        q, changed = new_q, True
    for t, dim_attr, label in ((k, "kdim", "key"), (v, "vdim", "value")):
        expected = getattr(module, dim_attr)
        if t.shape[-1] != expected:
            info = layer_info(module)
            cs = call_site(info.site if info else None)
            if info is not None and info.site is not None and cs is not None:
                close = (cs.call.end_lineno, cs.call.end_col_offset - 1)
                passed = f"{dim_attr}={t.shape[-1]}"
                probe.current().finding(
                    EMBED_DIM_MISMATCH, info.site.path, span(cs.call.func),
                    f"{describe(module)} expects the {label} to have {dim_attr}={expected} features but "
                    f"it has {t.shape[-1]} ({tensor_label(t)})",
                    fixes=[protocol.fix(f"Pass {passed}", [protocol.edit(info.site.path, [*close, *close],
                                                                         f", {passed}")])])
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
