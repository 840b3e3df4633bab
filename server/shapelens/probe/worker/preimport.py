"""Installed packages a probe imports, imported once in the worker before it forks.

A forked child inherits the worker's modules, so `import transformers` (seconds) is paid once
per worker instead of once per probe: in a CLI batch of model files and on every edit in the
editor alike. Only what the child would import anyway is imported here, and only from outside
the workspace:

- the import statements the plan keeps (the child runs exactly those), of trusted plans only
  (an untrusted probe imports nothing);
- never a module the child's own finder would find in the workspace first (the target's folder
  and the workspace root come first on the child's `sys.path`), never a file of the plan: those
  load only through their plans, in the child;
- while importing, a guard refuses any workspace file or plan file that a package reaches for
  (it would run workspace code in the worker); the import then fails as a whole and every module
  it added is dropped again, so the child imports it as before.

A name is tried once per worker: one that failed (not installed, raised, timed out) is left to
each child, which reports it as it always did.
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import os
import signal
import sys
from functools import partial

from shapelens.analysis.source import flat_body, stmt_key

TIME_LIMIT_S = 30  # one package's import in the worker (a cold `import transformers` on a busy machine)
TRIED: dict[str, bool] = {}  # module name -> imported here (False: failed, left to the children)


class WorkspaceImport(ImportError):
    """A package reached for a workspace or plan file while the worker imported it."""


class _Guard(importlib.abc.MetaPathFinder):
    def __init__(self, refused) -> None:
        self.refused = refused

    def find_spec(self, fullname, path=None, target=None):
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.origin and self.refused(os.path.realpath(spec.origin)):
            raise WorkspaceImport(f"{fullname} is a workspace module: it loads only through its plan")
        return None  # the normal finders import it


def kept_imports(file_plan: dict) -> list[tuple[str, tuple[str, ...]]]:
    """(module, names) of a file's kept import statements, module names absolute: `import m`
    is (m, ()), `from m import a, b` is (m, (a, b)) — a name may be a submodule, or an
    attribute a lazy package imports on first access (transformers' `GenerationMixin`)."""
    try:
        tree = ast.parse(file_plan.get("source", ""))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    keep = set(file_plan.get("keep", []))
    module = file_plan.get("module") or ""
    package = module if file_plan.get("path", "").endswith("__init__.py") else module.rpartition(".")[0]
    out: list[tuple[str, tuple[str, ...]]] = []
    for stmt in flat_body(tree.body):
        if stmt_key(stmt) not in keep:
            continue
        if isinstance(stmt, ast.Import):
            out += [(alias.name, ()) for alias in stmt.names]
        elif isinstance(stmt, ast.ImportFrom):
            names = tuple(a.name for a in stmt.names if a.name != "*")
            if stmt.level == 0 and stmt.module:
                out.append((stmt.module, names))
            elif stmt.level:
                base = package.split(".") if package else []
                if stmt.level - 1 >= len(base):
                    continue
                base = base[: len(base) - (stmt.level - 1)]
                out.append((".".join(base + ([stmt.module] if stmt.module else [])), names))
    return out


def _in_workspace(name: str, search: list[str]) -> bool:
    """The child's finder would find the name's top package in the workspace first."""
    try:
        return importlib.machinery.PathFinder.find_spec(name.split(".")[0], search) is not None
    except (ImportError, ValueError):
        return True  # undecidable: leave it to the child


def candidates(plan: dict, options: dict) -> list[tuple[str, tuple[str, ...]]]:
    if not options.get("trusted", True) or not plan.get("trusted", True):
        return []
    target, root = plan.get("target", ""), plan.get("root", "")
    search = [p for p in (os.path.dirname(target), root) if p]
    planned = {f.get("module") for f in plan.get("files", [])}
    out: list[tuple[str, tuple[str, ...]]] = []
    for file_plan in plan.get("files", []):
        for name, attrs in kept_imports(file_plan):
            attrs = tuple(a for a in attrs if f"{name}:{a}" not in TRIED and f"{name}.{a}" not in planned)
            if not name or name in planned or (name in TRIED and not attrs):
                continue  # a plan file (a package that reaches for one is refused by the guard)
            if not _in_workspace(name, search):
                out.append((name, attrs))
    return out


def _refuser(plan: dict):
    root = os.path.realpath(plan.get("root", "")) if plan.get("root") else ""
    planned = {os.path.realpath(f["path"]) for f in plan.get("files", []) if f.get("path")}
    search = [os.path.realpath(p) for p in (os.path.dirname(plan.get("target", "")),) if p]

    def refused(origin: str) -> bool:
        if origin in planned:
            return True
        inside = [d for d in (root, *search) if d and origin.startswith(d + os.sep)]
        return bool(inside) and "site-packages" not in origin and "dist-packages" not in origin

    return refused


class _Timeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Timeout()


def _rolled_back(fn, what: str) -> bool:
    """Run `fn`; on any failure, drop every module it added."""
    before = set(sys.modules)
    try:
        fn()
        return True
    except BaseException as exc:  # noqa: BLE001 — a package that fails here fails in the child as before
        if isinstance(exc, KeyboardInterrupt):
            raise
        print(f"shapelens worker: {what} is left to each probe ({type(exc).__name__}: {exc})", file=sys.stderr)
        for added in set(sys.modules) - before:
            sys.modules.pop(added, None)
        return False


def _touch(module: str, attr: str) -> None:
    """What `from module import attr` does: the attribute, else the submodule."""
    mod = sys.modules[module]
    try:
        getattr(mod, attr)
    except AttributeError:
        __import__(f"{module}.{attr}")


def import_one(name: str, attrs: tuple[str, ...], refused) -> None:
    """Import `name` (and touch `attrs`) here, under the guard and a time limit."""
    guard = _Guard(refused)
    sys.meta_path.insert(0, guard)
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(TIME_LIMIT_S)
    try:
        if name not in TRIED:
            TRIED[name] = name in sys.modules or _rolled_back(partial(__import__, name), name)
        if TRIED[name]:
            for attr in attrs:
                TRIED[f"{name}:{attr}"] = _rolled_back(partial(_touch, name, attr), f"{name}.{attr}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        sys.meta_path.remove(guard)


def before_fork(plan: dict, options: dict) -> None:
    """Import the installed modules this probe's child would import."""
    names = candidates(plan, options)
    if names:
        refused = _refuser(plan)
        for name, attrs in names:
            import_one(name, attrs, refused)
