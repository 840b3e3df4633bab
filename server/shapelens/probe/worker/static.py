"""Checks for an untrusted workspace: no code of the workspace runs, not even its imports.

Only torch's own classes are touched: each torch layer built from literal arguments is checked
against the rule table (and built on the meta device, so torch's own argument checks apply), and
literal indices into a literal nn.Embedding at module level are compared with its table size.
"""

from __future__ import annotations

import ast
import importlib
import inspect

import torch
from torch import nn

from shapelens.analysis.index import SourceIndex
from shapelens.analysis.source import Span, span
from shapelens.probe.worker.rules import rule_for
from shapelens.probe.worker.tracking import ctor_params

NOT_TRUSTED = "the workspace is not trusted, so shapelens runs none of its code"


def torch_object(full_name: str):
    """`torch.nn.modules.linear.Linear` -> the class, importing torch's own modules only."""
    parts = full_name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


class StaticChecker:
    def __init__(self, plan: dict) -> None:
        self.path = plan["target"]
        source = next(f["source"] for f in plan["files"] if f["path"] == self.path)
        self.index = SourceIndex(self.path, source)
        self.findings: list[dict] = []
        self.calls: dict[Span, object] = {}
        for entry in plan.get("literal_torch_calls", []):
            key = tuple(int(v) for v in entry["span"].split(":"))
            obj = torch_object(entry["name"])
            if obj is not None:
                self.calls[key] = obj  # type: ignore[index]

    def finding(self, code: str, where: Span, message: str, related=(), fixes=()) -> None:
        self.findings.append({"code": code, "path": self.path, "span": list(where), "message": message,
                              "related": list(related), "fixes": list(fixes)})

    # -- layer constructors ---------------------------------------------------------------------
    def check_layers(self) -> dict[Span, nn.Module]:
        built: dict[Span, nn.Module] = {}
        for key, cls in self.calls.items():
            if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
                continue
            site = self.index.call_at(key)
            if site is None:
                continue
            args = [ast.literal_eval(a) for a in site.call.args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in site.call.keywords}
            arg_sites = self.index.bind_args(site.call, ctor_params(cls))
            failed = self._rule_checks(cls, args, kwargs, arg_sites, key)
            if failed:
                continue
            try:
                with torch.device("meta"):
                    built[key] = cls(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 — torch rejecting literal arguments
                self.finding("invalid-layer-config", key, f"torch rejects this layer's arguments: {exc}")
        return built

    def _rule_checks(self, cls, args, kwargs, arg_sites, key) -> bool:
        rule = rule_for(cls)
        if rule is None or not rule.checks:
            return False
        try:
            bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
        except TypeError:
            return False
        bound.apply_defaults()
        values = dict(bound.arguments)
        failed = False
        for check in rule.checks:
            try:
                ok = check.ok(values)
            except Exception:  # noqa: BLE001
                ok = True
            if ok:
                continue
            failed = True
            arg = arg_sites.get(check.param)
            fixes = []
            if arg is not None and check.fixable:
                repaired = check.repair(values)
                fixes.append({"title": f"Change {check.param} to {repaired}",
                              "edits": [{"path": self.path, "span": list(arg.span), "new_text": str(repaired)}]})
            self.finding("invalid-layer-config", arg.span if arg else key, check.message(values), fixes=fixes)
        return failed

    # -- literal embedding indices ------------------------------------------------------------
    def check_indices(self, built: dict[Span, nn.Module]) -> None:
        tables: dict[str, tuple[nn.Module, Span]] = {}
        indices: dict[str, tuple[list, ast.Call]] = {}
        for stmt in self.index.tree.body:
            for node in ast.walk(stmt):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in tables and node.args:
                    self._check_call(tables[node.func.id], node.args[0], indices)
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                name, value = stmt.targets[0].id, stmt.value
                tables.pop(name, None)
                indices.pop(name, None)
                if isinstance(value, ast.Call):
                    layer = built.get(span(value))
                    if isinstance(layer, (nn.Embedding, nn.EmbeddingBag)):
                        tables[name] = (layer, span(value))
                    elif self._literal_tensor(value) is not None:
                        indices[name] = (self._literal_tensor(value), value)

    def _literal_tensor(self, call: ast.Call):
        obj = self.calls.get(span(call))
        if getattr(obj, "__name__", "") in {"tensor", "as_tensor", "LongTensor"} and call.args:
            return ast.literal_eval(call.args[0])
        return None

    def _check_call(self, table, arg: ast.expr, indices) -> None:
        layer, table_span = table
        if isinstance(arg, ast.Name) and arg.id in indices:
            values, call = indices[arg.id]
        elif isinstance(arg, ast.Call) and self._literal_tensor(arg) is not None:
            values, call = self._literal_tensor(arg), arg
        else:
            return
        n = layer.num_embeddings
        for v in _flatten(values):
            if isinstance(v, int) and not isinstance(v, bool) and not 0 <= v < n:
                where = self.index.literal_element(call, v) or span(call)
                self.finding("index-out-of-range", where,
                             f"index {v} is out of range: num_embeddings={n}, valid indices are 0..{n - 1}",
                             related=[{"path": self.path, "span": list(table_span),
                                       "message": f"the table has num_embeddings={n} rows"}])
                return


def _flatten(values):
    if isinstance(values, (list, tuple)):
        for v in values:
            yield from _flatten(v)
    else:
        yield values


def run_static(plan: dict) -> dict:
    checker = StaticChecker(plan)
    built = checker.check_layers()
    checker.check_indices(built)
    return {"findings": checker.findings, "tensors": [], "layers": [], "classes": [],
            "stats": {"device": "none", "param_storage_bytes": 0, "modules": len(built), "trusted": False,
                      "note": NOT_TRUSTED}}
