"""Names read but defined nowhere: what a half-typed name looks like to the probe (`sel` on the
way to `self`). Pure `ast`."""

from __future__ import annotations

import ast
import builtins
from collections.abc import Callable

from shapelens.analysis.source import assigned_names, flat_body

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def _bound_in(node: ast.AST) -> set[str]:
    """Every name `node` binds anywhere inside it: targets, parameters, imports, handlers."""
    bound = assigned_names(node)
    for n in ast.walk(node):
        if isinstance(n, ast.arg):
            bound.add(n.arg)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            bound.add(n.name)
        elif isinstance(n, (ast.Global, ast.Nonlocal)):
            bound.update(n.names)
        elif isinstance(n, (ast.MatchAs, ast.MatchStar)) and n.name:
            bound.add(n.name)
        elif isinstance(n, ast.MatchMapping) and n.rest:
            bound.add(n.rest)
    return bound


def first_undefined(node: ast.AST, known: Callable[[str], bool]) -> ast.Name | None:
    """The first name `node` reads that it does not bind itself, that is no builtin and that
    `known` does not know."""
    bound = _bound_in(node)
    reads = [n for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)]
    for n in sorted(reads, key=lambda n: (n.lineno, n.col_offset)):
        if n.id not in bound and not hasattr(builtins, n.id) and not known(n.id):
            return n
    return None


def undefined_at_module_level(tree: ast.Module) -> list[ast.Name]:
    """Per module-level statement, the first name it reads that the module defines nowhere. A
    star import may define anything: then none is reported."""
    stmts = flat_body(tree.body)
    if any(isinstance(s, ast.ImportFrom) and any(a.name == "*" for a in s.names) for s in ast.walk(tree)):
        return []
    defined = set().union(*(_bound_in(s) for s in stmts)) if stmts else set()
    defined |= {"__name__", "__file__", "__doc__", "__spec__", "__builtins__"}
    found = []
    for stmt in stmts:
        if isinstance(stmt, _SCOPES):
            continue  # bodies run later, if ever; the probe reports those names when it runs them
        name = first_undefined(stmt, defined.__contains__)
        if name is not None:
            found.append(name)
    return found
