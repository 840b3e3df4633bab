"""The rule hook of nn.Embedding / nn.EmbeddingBag: integer indices, inside the table."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

import torch
from torch import nn

from shapelens.analysis.source import span
from shapelens.probe import protocol
from shapelens.probe.protocol import Fix, Related
from shapelens.probe.worker import state as probe
from shapelens.probe.worker.mode import CREATION
from shapelens.probe.worker.origin import call_site, ctor_arg, describe, find_site, tensor_label
from shapelens.probe.worker.state import Site, layer_info
from shapelens.probe.worker.widths import Call, first_tensor, replace
from shapelens.report.codes import INDEX_DTYPE, INDEX_OUT_OF_RANGE

if TYPE_CHECKING:
    from shapelens.probe.worker.layer_rule import LayerRule


def _index_site(x: torch.Tensor) -> Site | None:
    return getattr(x, "_sl_site", None) or find_site(depth=3)


def check_embedding(module: nn.Module, rule: LayerRule, args: tuple, kwargs: dict) -> Call | None:
    where, x = first_tensor(args, kwargs)
    if x is None:
        return None
    state = probe.current()
    info = layer_info(module)
    result = None
    if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
        site = _index_site(x)
        if site is not None:
            fixes = []
            cs = call_site(site)
            func = cs.call.func if cs else None
            if cs and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.attr in CREATION:
                fixes.append(_dtype_fix(site, cs.call, func.value.id))
            state.finding(INDEX_DTYPE, site.path, site.span,
                          f"{describe(module)} needs integer indices (torch.long) but receives {tensor_label(x)} "
                          f"of dtype {str(x.dtype).removeprefix('torch.')}", fixes=fixes)
        x = x.long()
        result = replace(args, kwargs, where, x)
    n = module.num_embeddings
    values = getattr(x, "_sl_values", None) if x.device.type == "meta" else x.detach()
    if getattr(values, "_sl_assumed", False):
        values = None  # positions over a length the probe assumed: not the file's range
    bad_value = None
    if values is not None and values.numel() and not values.dtype.is_floating_point:
        bad = values[(values < 0) | (values >= n)]
        if bad.numel():
            bad_value = int(bad.flatten()[0])
    high = getattr(x, "_sl_high", None)
    if bad_value is None and high is not None and high > n:
        hsite = getattr(x, "_sl_high_site", None)
        if hsite is not None:
            state.finding(INDEX_OUT_OF_RANGE, hsite.path, hsite.span,
                          f"indices are drawn from [0, {high}) but {describe(module)} has num_embeddings={n} "
                          f"(valid indices 0..{n - 1})", related=_table_related(module, n))
    if bad_value is not None:
        site = _index_site(x)
        if site is not None:
            cs = call_site(site)
            where_span = site.span
            index = state.index(site.path)
            if cs is not None and index is not None:
                where_span = index.literal_element(cs.call, bad_value) or site.span
            _, arg = ctor_arg(type(module), info.rule if info else None, info.site if info else None,
                              "num_embeddings")
            fixes = []
            if info is not None and info.site is not None and arg is not None and bad_value >= n:
                top = int(values.max()) + 1
                fixes.append(protocol.fix(f"Grow the table to num_embeddings={top}",
                                          [protocol.edit(info.site.path, arg.span, str(top))]))
            state.finding(INDEX_OUT_OF_RANGE, site.path, where_span,
                          f"index {bad_value} is out of range for {describe(module)}: num_embeddings={n}, "
                          f"valid indices are 0..{n - 1}", related=_table_related(module, n), fixes=fixes)
        clamped = x.clamp(0, n - 1) if x.device.type != "meta" else x
        if x.device.type == "meta":
            clamped = x.new_zeros(x.shape)
        args, kwargs = result if result else (args, kwargs)
        result = replace(args, kwargs, where, clamped)
    return result


def _table_related(module: nn.Module, n: int) -> list[Related]:
    info = layer_info(module)
    cs, arg = ctor_arg(type(module), info.rule if info else None, info.site if info else None, "num_embeddings")
    if cs is None or info is None or info.site is None:
        return []
    where = arg.span if arg else span(cs.call)
    return [protocol.related(info.site.path, where,
                             f"{describe(module)} has num_embeddings={n} rows: valid indices are 0..{n - 1}")]


def _dtype_fix(site: Site, call: ast.Call, torch_name: str) -> Fix:
    title = "Create the indices as torch.long"
    for kw in call.keywords:
        if kw.arg == "dtype":
            return protocol.fix(title, [protocol.edit(site.path, span(kw.value), f"{torch_name}.long")])
    close = (call.end_lineno, call.end_col_offset - 1)
    sep = ", " if call.args or call.keywords else ""
    return protocol.fix(title, [protocol.edit(site.path, [*close, *close], f"{sep}dtype={torch_name}.long")])
