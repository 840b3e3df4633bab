"""Layers of a probed class that got no shape, and why: the probe ran the class, yet some torch
layer its code builds was never built or never called with the values the probe used (a branch
on a constructor argument, `if labels is not None:` in forward, weights used without a call).
Without a note such a layer would be a silent gap: no shape and nothing saying why."""

from __future__ import annotations

import ast
import types

from torch import nn

from shapelens.analysis.index import SourceIndex, method_def
from shapelens.analysis.source import dotted_name, span
from shapelens.probe import protocol
from shapelens.probe.worker.state import LayerInfo, State
from shapelens.report.codes import PROBE_INCOMPLETE, is_error

# Holders of layers, not layers: they have no shape of their own.
HOLDERS = (nn.ModuleList, nn.ModuleDict, nn.ParameterList, nn.ParameterDict)
MAX_LISTED = 4


def torch_layer(func: ast.expr, scope: dict) -> type | None:
    """The torch.nn layer class `func` names in the module's namespace, else None. Only attributes
    of torch's own modules are looked up: a workspace module's `__getattr__` is never run here."""
    name = dotted_name(func)
    if name is None:
        return None
    head, *rest = name.split(".")
    obj = scope.get(head)
    for part in rest:
        if not (isinstance(obj, types.ModuleType) and obj.__name__.split(".")[0] == "torch"):
            return None
        obj = getattr(obj, part, None)
    if (isinstance(obj, type) and issubclass(obj, nn.Module) and obj.__module__.startswith("torch.nn")
            and not issubclass(obj, HOLDERS) and obj is not nn.Module):
        return obj
    return None


def _parents(root: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(root) for child in ast.iter_child_nodes(node)}


def _branch(call: ast.AST, parents: dict[ast.AST, ast.AST], index: SourceIndex) -> str | None:
    """`if expansion == 1:` (line 108): the innermost condition the call sits under."""
    node = call
    while node in parents:
        up = parents[node]
        if isinstance(up, ast.If | ast.While):
            word = "if" if isinstance(up, ast.If) else "while"
            if node in up.orelse:
                return f"the `else` of `{word} {index.segment(span(up.test))}:` (line {up.lineno})"
            if node is not up.test:
                return f"`{word} {index.segment(span(up.test))}:` (line {up.lineno})"
        if isinstance(up, ast.IfExp) and node is not up.test:
            shown = f"`... if {index.segment(span(up.test))} else ...` (line {up.lineno})"
            return f"the `else` of {shown}" if node is up.orelse else shown
        if isinstance(up, ast.FunctionDef | ast.AsyncFunctionDef):
            return None
        node = up
    return None


def _label(call: ast.Call, parents: dict[ast.AST, ast.AST], index: SourceIndex) -> str:
    """`self.spare` for `self.spare = nn.Dropout(0.1)`, else the callee, `nn.Linear`."""
    up = parents.get(call)
    if isinstance(up, ast.Assign) and len(up.targets) == 1:
        return index.segment(span(up.targets[0]))
    if isinstance(up, ast.AnnAssign):
        return index.segment(span(up.target))
    return index.segment(span(call.func))


def _why(info: LayerInfo | None, method: str, where: str | None) -> str:
    if info is not None:
        return "built, but never called with the probed inputs" + (f" (under {where})" if where else "")
    if where is not None:
        taken_by = "constructor arguments" if method == "__init__" else "inputs"
        return f"not built: under {where}, a branch the probed {taken_by} did not take"
    if method not in ("__init__", "forward"):
        return f"not built: `{method}` did not run in the probe"
    return "not built in the probe"


def _built(state: State, target: str) -> dict[tuple, LayerInfo]:
    built: dict[tuple, LayerInfo] = {}
    for info in state.layers:
        if info.site is not None and info.site.path == target:
            key = tuple(info.site.span)
            if key not in built or (built[key].first_in is None and info.first_in is not None):
                built[key] = info
    return built


def note_unreached(state: State, classes: list[type], module: types.ModuleType, index: SourceIndex,
                   target: str, class_span) -> None:
    """One note per class the probe ran, on the class name, listing its unshaped layers."""
    built = _built(state, target)
    _note_module_level(state, built, module, index, target)
    for cls in classes:
        node = index.class_def(cls.__name__)
        if cls not in state.called or node is None or _told(state, cls.__name__, node, target):
            continue  # not run, or stopped by an error or a fault another finding reports
        misses = []
        for method in (m for m in node.body if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)):
            parents = _parents(method)
            for call in (c for c in ast.walk(method) if isinstance(c, ast.Call)):
                if torch_layer(call.func, module.__dict__) is None:
                    continue
                info = built.get(span(call))
                if info is not None and info.first_in is not None:
                    continue
                misses.append((call, _label(call, parents, index), _why(info, method.name, _branch(call, parents, index))))
        if misses:
            misses.sort(key=lambda m: (m[0].lineno, m[0].col_offset))
            _add(state, target, class_span(index, node), cls.__name__, misses, index)
    # A module class with no forward of its own (`class Upsample(nn.Sequential)` filled by its
    # `__init__`) is no unit of the probe: unless something built it, it is told like a factory.
    modules = {cls.__name__ for cls in classes if cls in state.called
               or (node := index.class_def(cls.__name__)) is None or method_def(node, "forward") is not None}
    _note_functions(state, built, module, index, target, modules)


def _note_functions(state: State, built: dict[tuple, LayerInfo], module: types.ModuleType, index: SourceIndex,
                    target: str, modules: set[str]) -> None:
    """A module-level factory (`def make_attn(c, kind): ... return nn.Identity(c)`), or a class that
    is no nn.Module (LoRA's `class LoRALayer():` mixin, whose `__init__` the layers call), whose
    layers got no shape: a branch its callers' values did not take, or nothing the probe ran
    called it. The note stands on its name, as a module class's does on the class's."""
    for fn in (n for n in index.tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
               or isinstance(n, ast.ClassDef) and n.name not in modules and _defined(module, n.name)):
        parents = _parents(fn)
        calls = [c for c in ast.walk(fn) if isinstance(c, ast.Call) and torch_layer(c.func, module.__dict__)]
        ran = any(span(c) in built for c in calls)
        misses = []
        for call in calls:
            info = built.get(span(call))
            if info is not None and info.first_in is not None:
                continue
            where, returned = _branch(call, parents, index), _after_return(call, parents, index)
            if not ran and where is not None:  # a branch not taken, or code that did not run: which, unknown
                why = f"not built in the probe (under {where})"
            elif not ran:
                why = "not built: nothing the probe ran called it"
            elif info is None and where is None and returned is not None:
                why = f"not built: {returned} returned first with the probed arguments"
            else:
                why = _why(info, "__init__", where).replace("constructor arguments", "arguments")
            misses.append((call, _label(call, parents, index), why))
        if not misses or _told_in(state, fn, target) or not ran and state.reused:
            continue  # (classes the engine's cache answered did not run: who calls it is unknown)
        line = index.text.splitlines()[fn.lineno - 1].encode("utf-8")
        col = max(line.find(fn.name.encode(), fn.col_offset), 0)
        where_name = (fn.lineno, col, fn.lineno, col + len(fn.name.encode()))
        branchy = ran or any("(under " in why for _, _, why in misses)
        hint = ("To probe the branch, build a class that calls it with those values, or hint that class's "
                "constructor arguments on its class line." if branchy else
                f"To see {'its shape' if len(misses) == 1 else 'their shapes'}, call `{fn.name}(...)` in a class the "
                "probe builds, or under `if __name__ == \"__main__\":` (tensor-pure statements there are probed).")
        called = fn.name if isinstance(fn, ast.ClassDef) else f"{fn.name}()"
        text = (f"{len(misses)} layer{'s' if len(misses) > 1 else ''} `{called}` builds got no shape: "
                f"{_listing(misses)}. {hint}")
        related = [protocol.related(target, span(c), f"{label}: {why}") for c, label, why in misses]
        state.finding(PROBE_INCOMPLETE, target, where_name, text, related)


def _defined(module: types.ModuleType, name: str) -> bool:
    """A class the module defined (a mixin, or a module class no probe unit covers); not one that
    failed to define."""
    return isinstance(module.__dict__.get(name), type)


def _after_return(call: ast.AST, parents: dict[ast.AST, ast.AST], index: SourceIndex) -> str | None:
    """`if kind == "vanilla": return ...` before the call's statement: the code after that `if`."""
    node = call
    while node in parents and not isinstance(node, ast.stmt):
        node = parents[node]
    body = getattr(parents.get(node), "body", None)
    if not isinstance(body, list) or node not in body:
        return None
    for before in reversed(body[:body.index(node)]):
        if isinstance(before, ast.If) and before.body and isinstance(before.body[-1], ast.Return):
            return f"`if {index.segment(span(before.test))}:` (line {before.lineno})"
    return None


def _told_in(state: State, node: ast.AST, target: str) -> bool:
    """A note or an error in the function's body already says why its layers have no shape."""
    return any(f["path"] == target and node.lineno <= f["span"][0] <= node.end_lineno for f in state.findings)


def _told(state: State, name: str, node: ast.ClassDef, target: str) -> bool:
    """Another finding already explains missing shapes in this class: an error it raised, or a
    note in its body (a raise against made-up inputs, a blocked call). The note on the class name
    (its assumed arguments) explains nothing about single layers."""
    for f in state.findings:
        inside = f["path"] == target and node.lineno < f["span"][0] <= node.end_lineno
        if (is_error(f["code"]) and (f.get("owner") == name or inside)) or (not is_error(f["code"]) and inside):
            return True
    return False


def _add(state: State, target: str, where, name: str, misses: list, index: SourceIndex) -> None:
    text = (f"{len(misses)} layer{'s' if len(misses) > 1 else ''} of `{name}` got no shape: {_listing(misses)}. "
            f"To probe a branch, hint the inputs that take it on the def line (`# shapelens: name=float[...]`) "
            f"or the constructor arguments on the class line (`# shapelens: {name}(...)`).")
    related = [protocol.related(target, span(c), f"{label}: {why}") for c, label, why in misses]
    if state.finding(PROBE_INCOMPLETE, target, where, text, related) is None:
        # The class line already carries a note (assumed arguments): say this there too.
        same = next(f for f in state.findings if f["code"] == PROBE_INCOMPLETE and f["path"] == target
                    and tuple(f["span"]) == tuple(where))
        same["message"] += "\n" + text
        same["related"] = [*same["related"], *related]


def _listing(misses: list) -> str:
    listed = "; ".join(f"`{label}` (line {c.lineno}): {why}" for c, label, why in misses[:MAX_LISTED])
    return listed + (f"; and {len(misses) - MAX_LISTED} more" if len(misses) > MAX_LISTED else "")


def _note_module_level(state: State, built: dict[tuple, LayerInfo], module: types.ModuleType, index: SourceIndex,
                       target: str) -> None:
    """A layer module-level code built (`loss = nn.BCELoss()`) whose only calls sit in code the
    probe does not run (a training loop over a data loader): a note on its statement says where
    it is called, so the missing shape is not a silent gap."""
    tree = index.tree
    parents = _parents(tree)
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        for call in (c for c in ast.walk(stmt) if isinstance(c, ast.Call)):
            info = built.get(span(call))
            if info is None and torch_layer(call.func, module.__dict__) is not None \
                    and (where := _branch(call, parents, index)) is not None:
                # `model = nn.DataParallel(model)` under `if torch.cuda.device_count() > 1:`
                state.finding(PROBE_INCOMPLETE, target, span(call),
                              f"`{_label(call, parents, index)}` got no shape: not built, {where} did not run "
                              f"in the probe")
                continue
            if info is None or info.first_in is not None or torch_layer(call.func, module.__dict__) is None:
                continue
            label = _label(call, parents, index)
            # A layer inside `model = nn.Sequential(...)` is called through `model`.
            holder = stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else None
            where = _called_in(tree, parents, holder.id if isinstance(holder, ast.Name) else label, index)
            why = (f"called only inside {where}, code the probe does not run" if where
                   else "never called by the module-level code the probe ran")
            state.finding(PROBE_INCOMPLETE, target, span(call),
                          f"`{label}` got no shape: built, but {why}. To see its shape, "
                          f"call it once on tensors at module level or under `if __name__ == \"__main__\":` "
                          f"(tensor-pure statements there are probed).")


def _called_in(tree: ast.Module, parents: dict[ast.AST, ast.AST], name: str, index: SourceIndex) -> str | None:
    """`the loop `for epoch in range(opt.n_epochs):` (line 143)` around the first call of `name`."""
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name):
            continue
        up: ast.AST | None = node
        outer = None
        while up is not None and outer is None:  # the innermost loop or function around the call
            if isinstance(up, ast.For | ast.AsyncFor):
                outer = f"the loop `for {index.segment(span(up.target))} in {index.segment(span(up.iter))}:` (line {up.lineno})"
            elif isinstance(up, ast.While):
                outer = f"the loop `while {index.segment(span(up.test))}:` (line {up.lineno})"
            elif isinstance(up, ast.FunctionDef | ast.AsyncFunctionDef):
                outer = f"`{up.name}()` (line {up.lineno})"
            up = parents.get(up)
        if outer is not None:
            return outer
    return None
