"""A probe's record turned into its result message (protocol.Result): the findings, the shapes
of the tensors and layers at their source ranges, and one summary per class that ran."""

from __future__ import annotations

import ast
import hashlib
import types

from torch import nn

from shapelens.analysis.index import SourceIndex
from shapelens.analysis.source import Span, span
from shapelens.probe import protocol
from shapelens.probe.protocol import ClassShape, LayerShape, Result
from shapelens.probe.worker.origin import call_site
from shapelens.probe.worker.state import LayerInfo, State, layer_info
from shapelens.probe.worker.tying import shape_tied
from shapelens.probe.worker.unreached import note_unreached
from shapelens.report.codes import PROBE_INCOMPLETE


def class_name_span(index: SourceIndex, node: ast.ClassDef) -> Span:
    line = index.text.splitlines()[node.lineno - 1].encode("utf-8")
    col = line.find(node.name.encode(), node.col_offset + 5)
    return (node.lineno, max(col, 0), node.lineno, max(col, 0) + len(node.name.encode()))


def _params(module: nn.Module) -> tuple[int, int]:
    n = b = 0
    for p in module.parameters():
        n += p.numel()
        b += p.numel() * p.element_size()
    return n, b


def _own_classes(module: types.ModuleType) -> list[type]:
    return [obj for obj in module.__dict__.values()
            if isinstance(obj, type) and issubclass(obj, nn.Module) and obj.__module__ == module.__name__]


def collect(state: State, module: types.ModuleType, index: SourceIndex, target: str,
            assumptions: dict[str, str], notes: list[str], assumed_args: dict[str, dict[str, str]] | None = None) -> Result:
    layers, seen = [], set()
    shape_tied(state.layers)
    # Of the layers one line built (a block in a loop), show one that ran.
    ordered = sorted(state.layers, key=lambda li: li.first_in is None and li.first_out is None)
    for info in ordered:
        try:
            entry = layer_entry(state, info, seen)
        except Exception:  # noqa: BLE001 — a module whose constructor failed half-way
            continue
        if entry is not None:
            layers.append(entry)
    classes = []
    for obj in _own_classes(module):
        try:
            summary = class_summary(state, obj, index, target, assumptions, (assumed_args or {}).get(obj.__name__))
        except Exception:  # noqa: BLE001
            continue
        if summary is not None:
            classes.append(summary)
    storage = 0
    for info in state.layers:
        try:
            for p in info.module.parameters(recurse=False):
                if p.device.type != "meta":
                    storage += p.untyped_storage().nbytes()
        except Exception:  # noqa: BLE001
            continue
    if not state.timed_out:  # a probe that overran says so; what it did not reach is no news
        note_unreached(state, _own_classes(module), module, index, target, class_name_span)
    for note in notes:
        state.finding(PROBE_INCOMPLETE, target, (1, 0, 1, 0), note)
    stats = {"device": state.device, "param_storage_bytes": storage, "modules": len(state.layers),
             "probed": len(state.probed)}
    return protocol.result(state.findings, list(state.tensors.values()), layers, classes, stats,
                           probed=list(state.probed))


def layer_entry(state: State, info: LayerInfo, seen: set) -> LayerShape | None:
    cs = call_site(info.site)
    if info.site is None or cs is None or (cs.target is None and not info.direct):
        return None
    # A layer built without a name (inside nn.Sequential(...), a list, a loop) is shown on its
    # callee, `nn.Conv2d` in `nn.Conv2d(in_channels, v, 3)`.
    where = span(cs.target) if cs.target is not None else span(cs.call.func)
    key = (info.site.path, where)
    if key in seen:
        return None
    seen.add(key)
    params, nbytes = _params(info.module)
    first_in, in_sym, first_out, out_sym = info.first_in, info.in_sym, info.first_out, info.out_sym
    symbols = info.symbols
    if isinstance(info.module, (nn.ModuleList, nn.ModuleDict)) and len(info.module):
        # Never called itself: what its first layer takes and its last layer gives.
        kids = list(info.module.children())
        head, tail = layer_info(kids[0]), layer_info(kids[-1])
        if head is not None and tail is not None:
            first_in, in_sym, first_out, out_sym = head.first_in, head.in_sym, tail.first_out, tail.out_sym
            symbols = {**head.symbols, **tail.symbols}
    index = state.index(info.site.path)
    leaf = not list(info.module.children())
    return protocol.layer_shape(
        info.site.path, where, index.segment(where) if index else "", first_in, first_out, in_sym, out_sym,
        repr(info.module).splitlines()[0] if leaf else type(info.module).__name__, params, nbytes, info.owner,
        symbols)


def class_summary(state: State, cls: type, index: SourceIndex, target: str, assumptions: dict,
                  assumed_args: dict[str, str] | None = None) -> ClassShape | None:
    inst = state.instances.get(cls)
    node = index.class_def(cls.__name__)
    if inst is None or node is None or cls not in state.called:
        return None
    rows, symbols = [], {}
    for sub_name, sub in inst.named_modules():
        info = layer_info(sub)
        n, _ = _params(sub)
        # Only a container's items (`blocks.3`) can repeat their neighbours.
        sig = signature(sub) if sub_name.rpartition(".")[2].isdigit() else None
        rows.append(protocol.summary_row(sub_name or cls.__name__, type(sub).__name__,
                                         sub_name.count(".") + 1 if sub_name else 0,
                                         info.first_in if info else None, info.first_out if info else None, n,
                                         info.in_sym if info else None, info.out_sym if info else None, sig))
        symbols.update(info.symbols if info else {})
    total, nbytes = _params(inst)
    info = layer_info(inst)
    return protocol.class_shape(target, class_name_span(index, node), cls.__name__, rows, total, nbytes,
                                assumptions.get(cls.__name__), info.owner if info else None, symbols, assumed_args)


def signature(module: nn.Module) -> str:
    """Equal for modules built alike: the same class, the same layers with the same arguments
    (torch's repr of the module tree), the same simple attributes."""
    simple = sorted((k, v) for k, v in vars(module).items()
                    if not k.startswith("_") and isinstance(v, (int, float, str, bool, tuple)) and k != "training")
    return hashlib.sha1(f"{type(module).__qualname__}|{module!r}|{simple!r}".encode()).hexdigest()[:16]
