"""Layers of a probed class that the probe never reached: a branch of `__init__` the arguments it
used do not take (`if time_embedding_type == "learned": nn.Embedding(...)`), or a layer built
but never called by forward on the inputs it made up. Without a note such a layer would be
silently without a shape; one note on the class line lists them and says which hint reaches them."""

from __future__ import annotations

import ast
import types

from torch import nn

from shapelens.analysis.index import SourceIndex
from shapelens.probe.worker.results import class_name_span
from shapelens.probe.worker.state import State
from shapelens.report.codes import PROBE_INCOMPLETE

CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict, nn.ParameterList, nn.ParameterDict)
MAX_LISTED = 6


def note_unreached(state: State, module: types.ModuleType, index: SourceIndex, target: str) -> None:
    built: dict[int, bool] = {}  # line of a layer call in the target -> whether one built there ran
    for info in state.layers:
        if info.site is not None and info.site.path == target:
            line = info.site.span[0]
            built[line] = built.get(line, False) or info.first_in is not None or info.first_out is not None
    for node in index.tree.body:
        cls = module.__dict__.get(node.name) if isinstance(node, ast.ClassDef) else None
        if not isinstance(cls, type) or (cls not in state.called and cls not in state.instances) \
                or _noted(state, target, node):
            continue
        unbuilt, unrun = [], []
        for call in _layer_calls(node, module.__dict__):
            where = f"line {call.lineno} (`{ast.unparse(call.func)}`)"
            if call.lineno not in built:
                unbuilt.append(where)
            elif not built[call.lineno]:
                unrun.append(where)
        parts = []
        if unbuilt:
            parts.append(f"the constructor arguments the probe used do not build the layer{_s(unbuilt)} at "
                         f"{_listed(unbuilt)} (a branch they do not take)")
        if unrun:
            parts.append(f"forward never ran the layer{_s(unrun)} at {_listed(unrun)} on the inputs the probe "
                         "made up")
        if parts:
            state.finding(PROBE_INCOMPLETE, target, class_name_span(index, node),
                          f"{'; '.join(parts)}: they have no shapes; to see them, hint arguments that reach them "
                          f"(`# shapelens: {node.name}(...)` on the class line, `x=float[...]` on forward's)")


def _noted(state: State, target: str, node: ast.ClassDef) -> bool:
    """A note inside the class already says why its probe stopped short."""
    last = node.end_lineno or node.lineno
    return any(f["path"] == target and node.lineno <= f["span"][0] <= last and f["code"] == PROBE_INCOMPLETE
               for f in state.findings)


def _layer_calls(node: ast.ClassDef, namespace: dict) -> list[ast.Call]:
    """Calls of torch.nn layer classes in the class's own methods (not nested classes)."""
    out = []
    for item in node.body:
        if not isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for call in ast.walk(item):
            if isinstance(call, ast.Call) and _is_torch_layer(_value(call.func, namespace)):
                out.append(call)
    return sorted(out, key=lambda c: (c.lineno, c.col_offset))


def _value(expr: ast.expr, namespace: dict):
    """`nn.Embedding` -> the class, through module objects and the namespace only (no code runs)."""
    if isinstance(expr, ast.Name):
        return namespace.get(expr.id)
    if isinstance(expr, ast.Attribute):
        base = _value(expr.value, namespace)
        return vars(base).get(expr.attr) if isinstance(base, types.ModuleType) else None
    return None


def _is_torch_layer(value) -> bool:
    return (isinstance(value, type) and issubclass(value, nn.Module) and not issubclass(value, CONTAINERS)
            and value is not nn.Module and (value.__module__ or "").startswith("torch.nn"))


def _listed(items: list[str]) -> str:
    more = len(items) - MAX_LISTED
    return ", ".join(items[:MAX_LISTED]) + (f" and {more} more" if more > 0 else "")


def _s(items: list) -> str:
    return "s" if len(items) > 1 else ""
