"""Which files of the workspace a file imports (the planner plans them too)."""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass

from shapelens.analysis.probeplan import source_roots
from shapelens.analysis.resolve import Resolver
from shapelens.analysis.source import walk_statements


def package_chain(path: str, root: str) -> list[str]:
    """The `__init__.py` files of the packages around a file, outermost first, up to the
    workspace root: importing `pkg.models.net` runs `pkg/__init__.py` and `pkg/models/__init__.py`
    first, so a relative import needs them planned too."""
    root = os.path.realpath(root)
    chain: list[str] = []
    folder = os.path.dirname(os.path.realpath(path))
    # The root's own `__init__.py` is not one: module names start below the root.
    while folder.startswith(root + os.sep) and os.path.isfile(init := os.path.join(folder, "__init__.py")):
        chain.insert(0, init)
        folder = os.path.dirname(folder)
    return chain


def import_search(path: str, root: str, module: str) -> list[str]:
    """The folders the probe puts first on sys.path for a file. A script's own folder comes first,
    as `python script.py` has it; a module of a package (its folder has an `__init__.py`, or it
    is an installed package's) gets the folder its dotted name starts from instead, so the file
    `pkg/pkg.py` cannot shadow the package `pkg`."""
    real = os.path.realpath(path)
    here = os.path.dirname(real)
    in_package = os.path.isfile(os.path.join(here, "__init__.py"))
    if not in_package or module.count(".") == 0:
        return list(dict.fromkeys([here, *source_roots(root)]))
    base = real
    for _ in range(module.count(".") + 1 + (os.path.basename(real) == "__init__.py")):
        base = os.path.dirname(base)
    return list(dict.fromkeys([base, *source_roots(root)]))


def has_relative_import(tree: ast.Module) -> bool:
    return any(isinstance(n, ast.ImportFrom) and n.level for n in walk_statements(tree))


@dataclass(frozen=True)
class Dep:
    """One workspace file a file imports. `wanted`: the names asked of it (None: any, as `import
    m` or `*` asks; empty: none, a package passed through on the way to its submodule). `binds`:
    the names the import binds in the importing file (None: unknown, or a package Python
    imports anyway)."""

    path: str
    wanted: frozenset[str] | None
    binds: frozenset[str] | None


def workspace_imports(tree: ast.Module, path: str, resolver: Resolver, module: str = "") -> list[str]:
    """Files of the workspace that this file imports (anywhere in it, even inside functions),
    with the package `__init__.py` chain of a file that imports relatively."""
    return list(dict.fromkeys(d.path for d in workspace_deps(tree, path, resolver, module)))


def workspace_deps(tree: ast.Module, path: str, resolver: Resolver, module: str = "") -> list[Dep]:
    """`workspace_imports` with what each import asks of the file it reaches."""
    real = os.path.realpath(path)
    found: list[Dep] = [Dep(p, frozenset(), None) for p in package_chain(path, resolver.root) if p != real] \
        if has_relative_import(tree) else []
    here = os.path.dirname(real)
    bases = import_search(path, resolver.root, module) if module else [here, *source_roots(resolver.root)]

    def locate(modname: str, search: list[str]) -> str | None:
        rel = modname.replace(".", os.sep)
        for base in search:
            for cand in (os.path.join(base, rel + ".py"), os.path.join(base, rel, "__init__.py")):
                if os.path.isfile(cand) and resolver.in_workspace(cand):
                    return os.path.realpath(cand)
        return None

    for node in walk_statements(tree):
        asks: list[tuple[str, frozenset[str] | None, frozenset[str] | None]] = []  # (module, wanted, binds)
        search = bases
        if isinstance(node, ast.Import):
            for a in node.names:
                asks.append((a.name, None, frozenset([a.asname or a.name.split(".")[0]])))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = here
                for _ in range(node.level - 1):
                    pkg = os.path.dirname(pkg)
                search = [pkg]
            mod = node.module or ""
            star = any(a.name == "*" for a in node.names)
            names = frozenset(a.name for a in node.names)
            if mod:
                asks.append((mod, None if star else names,
                             None if star else frozenset(a.asname or a.name for a in node.names)))
            for a in node.names:
                if a.name != "*":
                    asks.append((f"{mod}.{a.name}" if mod else a.name, None, frozenset([a.asname or a.name])))
        for name, wanted, bound in asks:
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # packages along the way run their __init__ too
                hit = locate(".".join(parts[:i]), search)
                if hit and hit != real:
                    last = i == len(parts)
                    found.append(Dep(hit, wanted if last else frozenset(), bound))
    return found
