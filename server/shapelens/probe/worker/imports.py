"""Workspace imports inside a probe: a workspace module is loaded through its plan (only its
tensor-pure statements run); a workspace file the plan did not analyse is refused rather than
run unchecked."""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import importlib.util
import os

from shapelens.probe.worker import state as probe
from shapelens.probe.worker.execute import run_statements, sanitize

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
                         self.plan.get("replace"))
        run_statements(state, path, module, stmts, set(), report=False)

