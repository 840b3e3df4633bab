"""Which files of the workspace a file imports (the planner plans them too)."""

from __future__ import annotations

import ast
import os

from shapelens.analysis.resolve import Resolver
from shapelens.analysis.source import walk_statements


def workspace_imports(tree: ast.Module, path: str, resolver: Resolver) -> list[str]:
    """Files of the workspace that this file imports (anywhere in it, even inside functions)."""
    found: list[str] = []
    here = os.path.dirname(os.path.realpath(path))
    bases = [here, resolver.root]

    def locate(modname: str, search: list[str]) -> str | None:
        rel = modname.replace(".", os.sep)
        for base in search:
            for cand in (os.path.join(base, rel + ".py"), os.path.join(base, rel, "__init__.py")):
                if os.path.isfile(cand) and resolver.in_workspace(cand):
                    return os.path.realpath(cand)
        return None

    for node in walk_statements(tree):
        names: list[str] = []
        search = bases
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = here
                for _ in range(node.level - 1):
                    pkg = os.path.dirname(pkg)
                search = [pkg]
                mod = node.module or ""
                names = [f"{mod}.{a.name}" if mod else a.name for a in node.names] + ([mod] if mod else [])
            else:
                mod = node.module or ""
                names = [mod] + [f"{mod}.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # packages along the way run their __init__ too
                hit = locate(".".join(parts[:i]), search)
                if hit and hit not in found and hit != os.path.realpath(path):
                    found.append(hit)
    return found
