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
from shapelens.analysis.source import Span, parse_span_key, span
from shapelens.probe import protocol
from shapelens.probe.protocol import Finding, Result
from shapelens.probe.worker.layer_rule import bind_values, failed_checks
from shapelens.probe.worker.origin import ctor_params
from shapelens.probe.worker.rules import rule_for
from shapelens.report.codes import INDEX_OUT_OF_RANGE, INVALID_LAYER_CONFIG

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
        self.findings: list[Finding] = []
        self.calls: dict[Span, object] = {}
        for entry in plan.get("literal_torch_calls", []):
            obj = torch_object(entry["name"])
            if obj is not None:
                self.calls[parse_span_key(entry["span"])] = obj

    def finding(self, code: str, where: Span, message: str, related=(), fixes=()) -> None:
        self.findings.append(protocol.finding(code, self.path, where, message, related, fixes))

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
            arg_sites = self.index.bind_args(site.call, ctor_params(cls, rule_for(cls)))
            failed = self._rule_checks(cls, args, kwargs, arg_sites, key)
            if failed:
                continue
            try:
                with torch.device("meta"):
                    built[key] = cls(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 — torch rejecting literal arguments
                self.finding(INVALID_LAYER_CONFIG, key, f"torch rejects this layer's arguments: {exc}")
        return built

    def _rule_checks(self, cls, args, kwargs, arg_sites, key) -> bool:
        rule = rule_for(cls)
        if rule is None or not rule.checks:
            return False
        values = bind_values(inspect.signature(cls.__init__), None, args, kwargs)
        if values is None:
            return False
        failed = False
        for check, message, repaired in failed_checks(rule, values):
            failed = True
            arg = arg_sites.get(check.param)
            fixes = []
            if arg is not None and check.fixable:
                fixes.append(protocol.change(check.param, self.path, arg.span, str(repaired)))
            self.finding(INVALID_LAYER_CONFIG, arg.span if arg else key, message, fixes=fixes)
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
                self.finding(INDEX_OUT_OF_RANGE, where,
                             f"index {v} is out of range: num_embeddings={n}, valid indices are 0..{n - 1}",
                             related=[protocol.related(self.path, table_span, f"the table has num_embeddings={n} rows")])
                return


def _flatten(values):
    if isinstance(values, (list, tuple)):
        for v in values:
            yield from _flatten(v)
    else:
        yield values


def run_static(plan: dict) -> Result:
    checker = StaticChecker(plan)
    built = checker.check_layers()
    checker.check_indices(built)
    return protocol.result(checker.findings, [], [], [], {"device": "none", "param_storage_bytes": 0,
                                                          "modules": len(built), "trusted": False, "note": NOT_TRUSTED})
