"""The plan for an untrusted workspace: nothing of the file runs; only calls into torch whose
arguments are all literals are checked."""

from __future__ import annotations

import ast
import os

from shapelens.analysis.budget import BudgetSpent, PlanBudget
from shapelens.analysis.plan import FilePlan, FilePlanner, ProbePlan, module_name_for
from shapelens.analysis.resolve import CalleeKind, Resolver
from shapelens.analysis.source import parse, span_key


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def literal_torch_calls(planner: FilePlanner, out: list[dict] | None = None) -> list[dict]:
    """Calls into torch with only literal arguments: what an untrusted workspace can check
    (appended to `out` as they are found, so a spent budget keeps what was found)."""
    out = [] if out is None else out
    for node in ast.walk(planner.scan):
        if not isinstance(node, ast.Call):
            continue
        if not all(_is_literal(a) for a in node.args) or not all(k.arg and _is_literal(k.value) for k in node.keywords):
            continue
        res = planner.resolve(node.func)
        if res.kind is CalleeKind.TORCH and res.full_name:
            out.append({"span": span_key(node),
                        "name": res.full_name})
    return out


def build_static_plan(resolver: Resolver, path: str, text: str, tree: ast.Module | None = None,
                      budget: PlanBudget | None = None) -> ProbePlan:
    """The plan for an untrusted workspace: nothing of the file will run."""
    path = os.path.realpath(path)
    resolver.overlay = {path: text}
    tree = tree or parse(text, path)
    planner = FilePlanner(resolver, path, text, tree, budget=budget)
    plan = FilePlan(path, module_name_for(path, resolver.root), text)
    calls: list[dict] = []
    stopped = None
    try:
        literal_torch_calls(planner, calls)
    except BudgetSpent:
        stopped = {"path": path, "line": 1, "seconds": budget.seconds if budget else 0}
    return ProbePlan(target=path, root=resolver.root, files=[plan], trusted=False, literal_torch_calls=calls,
                     stopped=stopped)
