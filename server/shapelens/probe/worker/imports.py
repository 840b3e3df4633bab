"""Workspace imports inside a probe: a workspace module is loaded through its plan (only its
tensor-pure statements run); a workspace file the plan did not analyse is refused rather than
run unchecked."""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import types
from collections.abc import Callable

from shapelens.probe.worker import state as probe
from shapelens.probe.worker.execute import run_statements, sanitize
from shapelens.probe.worker.state import ProbeTimeout

LOADED: list[str] = []  # module names the planned loader created, to forget before a re-probe


class WorkspaceFinder(importlib.abc.MetaPathFinder):
    """Workspace modules are loaded through the plan (only their tensor-pure statements run);
    workspace files the plan did not analyse are refused rather than run unchecked."""

    def __init__(self, plans: dict[str, dict], root: str, search: list[str]) -> None:
        self.plans, self.root, self.search = plans, root, search

    def find_spec(self, fullname, path=None, target=None):
        spec = importlib.machinery.PathFinder.find_spec(fullname, path if path else self.search)
        if spec is None or not spec.origin:
            return None
        origin = os.path.realpath(spec.origin)
        plan = self.plans.get(origin)
        if plan is None and _in_tree(os.path.abspath(spec.origin), self.root) and not _in_tree(origin, self.root):
            # A symlink inside the workspace to a folder outside it (or to a site-packages
            # folder): found through the workspace, so it is the workspace's, and unplanned.
            raise ImportError(f"{fullname} is a link out of the workspace; the probe does not load it")
        if plan is not None:
            is_pkg = origin.endswith("__init__.py")
            new = importlib.util.spec_from_loader(fullname, PlannedLoader(plan), origin=origin, is_package=is_pkg)
            if is_pkg and new is not None:
                new.submodule_search_locations = [os.path.dirname(origin)]
            return new
        if origin.startswith(self.root + os.sep) and "site-packages" not in origin:
            raise ImportError(f"{fullname} is a workspace module the static plan did not analyse")
        return None


def _in_tree(path: str, root: str) -> bool:
    """Inside the workspace, outside its virtualenvs and installed packages."""
    if not path.startswith(root + os.sep):
        return False
    parts = path[len(root) + 1:].split(os.sep)
    return not any(p in ("site-packages", "dist-packages", ".venv", "venv") for p in parts)


class PlannedLoader(importlib.abc.Loader):
    def __init__(self, plan: dict) -> None:
        self.plan = plan

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        state = probe.current()  # the probe running now (a re-probe has its own)
        path = self.plan["path"]
        module.__file__ = path
        LOADED.append(module.__name__)
        index = state.index(path)
        if index is None:
            raise ImportError(f"{path} has a syntax error")
        stmts = sanitize(ast.parse(index.text, index.path), set(self.plan["keep"]), set(self.plan["strip_decorators"]),
                         self.plan.get("replace"), set(self.plan.get("defer_decorators") or []))
        run_statements(state, path, module, stmts, set(), report=False)



def run_in_package(module: types.ModuleType, stmts: list[ast.stmt], run: Callable[[], None]) -> None:
    """Run the probed file the way importing it by name would: its package first, the file when
    the package's `__init__` (or a sibling it imports) asks for it. A package whose `__init__`
    re-exports the file (`from .unet import UNet`) then finds it whole instead of half-run, and
    the file's relative imports find the package whole. Only for a file that imports its own
    package (Python imports it then anyway); a package that fails to import leaves the file to
    run on its own, where its imports say what failed."""
    name = module.__name__
    parent = name.rpartition(".")[0]
    ran: list[bool] = []

    def once() -> None:
        if not ran:
            ran.append(True)
            run()

    if parent and parent not in sys.modules and _imports_own_package(stmts, name):
        finder = _TargetFinder(module, once)
        sys.meta_path.insert(0, finder)
        try:
            importlib.import_module(parent)
        except ProbeTimeout:
            raise
        except BaseException:  # noqa: BLE001, S110 — the file then runs on its own and says what failed
            pass
        finally:
            sys.meta_path.remove(finder)
    if not ran:
        sys.modules[name] = module
    once()


def _imports_own_package(stmts: list[ast.stmt], name: str) -> bool:
    top = name.split(".")[0]
    for stmt in stmts:
        if isinstance(stmt, ast.ImportFrom) and (stmt.level or (stmt.module or "").split(".")[0] == top):
            return True
        if isinstance(stmt, ast.Import) and any(a.name.split(".")[0] == top for a in stmt.names):
            return True
    return False


class _TargetFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Hands the probed file's own module (run by the probe, with its findings) to whoever imports
    it by name while its package is being imported."""

    def __init__(self, module: types.ModuleType, run: Callable[[], None]) -> None:
        self.module, self.run = module, run

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.module.__name__:
            return None
        is_pkg = hasattr(self.module, "__path__")
        spec = importlib.util.spec_from_loader(fullname, self, origin=self.module.__file__, is_package=is_pkg)
        if spec is not None and is_pkg:
            spec.submodule_search_locations = list(self.module.__path__)
        return spec

    def create_module(self, spec):
        return self.module

    def exec_module(self, module) -> None:
        self.run()
