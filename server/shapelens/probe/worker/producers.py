"""Which layer produced a width, told as findings: the related notes that name the producers of
a tensor's width, and the same mismatch told on the producer's constructor argument, with the
value that would make the widths agree (the probe verifies which fix makes the file consistent)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from shapelens.analysis.source import span
from shapelens.probe import protocol
from shapelens.probe.protocol import Finding, Related
from shapelens.probe.worker import provenance
from shapelens.probe.worker.fixtext import expressions_for
from shapelens.probe.worker.origin import describe, fmt_shape, module_arg
from shapelens.probe.worker.state import rule_of

# message(module, param, arg_text, value) -> the finding's text
AltMessage = Callable[[nn.Module, str, str, int], str]


def single_producer(t: torch.Tensor, axis: int) -> tuple[nn.Module, str] | None:
    parts = provenance.get(t).get(axis if axis < 0 else axis - t.dim(), [])
    if len(parts) == 1 and parts[0].factor == 1:
        return parts[0].module, parts[0].param
    return None


def producer_text(producer: tuple[nn.Module, str] | None) -> str | None:
    """The source text of the argument that made a width, when one argument did."""
    if producer is None:
        return None
    arg = module_arg(*producer)[2]
    return arg.text if arg is not None else None


def producer_related(t: torch.Tensor, axis: int, what: str) -> tuple[tuple[nn.Module, str] | None, list[Related]]:
    neg = axis if axis < 0 else axis - t.dim()
    parts = provenance.get(t).get(neg, [])
    related: list[Related] = []
    for part in parts:
        site, cs, arg = module_arg(part.module, part.param)
        if cs is None or site is None:
            continue
        where = span(cs.statement) if cs.statement is not None else span(cs.call)
        detail = f" ({part.param}={arg.text})" if arg is not None else ""
        share = what if len(parts) == 1 else f"{part.size} of the {int(t.shape[neg])} features"
        related.append(protocol.related(site.path, where, f"{share} come from {describe(part.module)}{detail}"))
    if not parts:
        site = getattr(t, "_sl_site", None)
        if site is not None:
            related.append(protocol.related(site.path, site.span, f"the input is created here with shape {fmt_shape(t)}"))
    return single_producer(t, neg), related


def _param_values(t: torch.Tensor, axis: int, wanted: int) -> list[tuple[nn.Module, str, int]]:
    """provenance's sizes turned into argument values by each producer's rule (a bidirectional
    RNN's hidden_size is half its output width)."""
    out = []
    for module, param, size in provenance.alternatives(t, axis, wanted):
        rule = rule_of(module)
        value = rule.out_to_param(module, size) if rule is not None else size
        if isinstance(value, int) and value > 0:
            out.append((module, param, value))
    return out


def producer_alts(sides: list[tuple[torch.Tensor, int, int]], code: str, message: AltMessage, texts: list[str],
                  related: list[Related]) -> list[Finding]:
    """The same problem told from the constructor arguments that produced the disagreeing widths:
    one finding per producer, on its argument, with the value that would make the widths agree."""
    alts: list[Finding] = []
    seen = set()
    for t, axis, wanted in sides:
        for module, param, value in _param_values(t, axis, wanted):
            site, cs, arg = module_arg(module, param)
            if site is None or arg is None or (site.path, arg.span) in seen:
                continue
            seen.add((site.path, arg.span))
            # a part of the argument's own text (`config.n_embd` in `(config.n_embd) * 2`) before a literal
            text = expressions_for(value, texts, site.scope, arg.text)[0]
            alts.append(protocol.finding(code, site.path, arg.span, message(module, param, arg.text, value), related,
                                         [protocol.change(param, site.path, arg.span, text)]))
    return alts
