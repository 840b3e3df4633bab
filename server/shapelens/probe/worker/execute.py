"""Running the plan's statements of a file: only those the static plan allows, each on its own,
so one that fails (a mismatch, a missing name) is reported at its line and the rest still run.
Every tensor a statement binds is recorded with its shape."""

from __future__ import annotations

import ast
import logging
import sys
import types

import torch

from shapelens.analysis.instrument import REC, instrument_block
from shapelens.analysis.source import assigned_names, flat_body, span, stmt_key
from shapelens.probe import protocol
from shapelens.probe.worker import state as probe
from shapelens.probe.worker import symexpr
from shapelens.probe.worker.deferred import DEFER, defer, deferred_decorator
from shapelens.probe.worker.failures import report_exception
from shapelens.probe.worker.fallbacks import import_fallbacks, run_fallback
from shapelens.probe.worker.missing import Missing, MissingName, bound_names, import_one
from shapelens.probe.worker.standins import parallel_stand_in
from shapelens.probe.worker.state import ProbeTimeout, Site, State
from shapelens.probe.worker.timmlike import MODELLED, stand_in
from shapelens.report.codes import PROBE_INCOMPLETE

SILENT_LOGGER = "__shapelens_silent_logger__"
_SILENT = logging.Logger("shapelens.silenced")
_SILENT.disabled = True


def sanitize(tree: ast.Module, keep: set[str], strip: set[str],
             replace: dict[str, str] | None = None, defer: set[str] | None = None) -> list[ast.stmt]:
    """The statements of a file that the plan allows, class bodies filtered the same way; a
    statement the plan replaces (`opt = parser.parse_args()`) runs as its replacement, at its line.
    A stripped decorator the plan defers is applied when its method is first called (deferred.py)."""

    def strip_decorators(node: ast.AST) -> None:
        for n in ast.walk(node):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                n.decorator_list = [deferred_decorator(d) if stmt_key(d) in (defer or ()) else d
                                    for d in n.decorator_list if stmt_key(d) not in strip or stmt_key(d) in (defer or ())]

    def filter_class(cls: ast.ClassDef) -> None:
        # Class bodies run when the class is defined, nested ones too: each keeps only what the
        # plan allowed.
        cls.body = [s for s in cls.body if stmt_key(s) in keep] or [ast.Pass()]
        for s in cls.body:
            if not hasattr(s, "lineno"):
                ast.copy_location(s, cls)
            elif isinstance(s, ast.ClassDef):
                filter_class(s)

    out = []
    fallbacks = import_fallbacks(tree)
    for stmt in flat_body(tree.body):
        if stmt_key(stmt) in fallbacks:
            setattr(stmt, "_sl_fallback", fallbacks[stmt_key(stmt)])  # noqa: B010 — a mark on the node, read by run_import
        if stmt_key(stmt) not in keep:
            if (logger := _logger_binding(stmt)) is not None:
                out.append(_at(ast.parse(f"{logger} = {SILENT_LOGGER}").body[0], stmt))
            continue
        if replace and stmt_key(stmt) in replace and not isinstance(stmt, ast.If):
            stmt = _at(ast.parse(replace[stmt_key(stmt)]).body[0], stmt)
        if isinstance(stmt, ast.ClassDef):
            filter_class(stmt)
        for node in ast.walk(stmt) if isinstance(stmt, ast.If) else ():  # a planned shim's branches
            if isinstance(node, ast.ClassDef) and node is not stmt:
                filter_class(node)
            elif isinstance(node, ast.If) and replace:
                if stmt_key(node) in replace:
                    # An `if` on the environment, nested ones too: the truth of its test with
                    # nothing set (envreads.py); the branch the plan did not check never runs.
                    node.test = ast.copy_location(ast.Constant(replace[stmt_key(node)] == "True"), node.test)
                for field in ("body", "orelse"):  # a branch's replaced statements (`N = os.environ.get(...)`)
                    setattr(node, field, [_at(ast.parse(replace[stmt_key(s)]).body[0], s)
                                          if stmt_key(s) in replace and not isinstance(s, ast.If) else s
                                          for s in getattr(node, field)])
        strip_decorators(stmt)
        out.append(stmt)
    return out


def _logger_binding(stmt: ast.stmt) -> str | None:
    """`logger = logging.getLogger(__name__)` (or a library's `get_logger`), which the plan skips
    (it leaves torch): the name it binds, so that the probe binds a silent logger of its own
    instead and `logger.warning(...)` in `__init__` does not stop the model being built."""
    if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
            and isinstance(stmt.value, ast.Call)):
        return None
    func = stmt.value.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return stmt.targets[0].id if name in ("getLogger", "get_logger") else None


def _at(new: ast.stmt, old: ast.stmt) -> ast.stmt:
    for node in ast.walk(new):
        if "lineno" in node._attributes:
            node.lineno, node.col_offset = old.lineno, old.col_offset
            node.end_lineno, node.end_col_offset = old.end_lineno, old.end_col_offset
    return new


def make_rec(state: State, path: str):
    def rec(line, col, end_line, end_col, name, value):
        try:
            if not isinstance(value, torch.Tensor):
                return
            try:
                value._sl_name = name
            except (AttributeError, RuntimeError):
                pass
            key = (path, (line, col, end_line, end_col))
            if getattr(value, "_sl_named_at", None) is None:
                value._sl_named_at = Site(path, key[1])  # a mismatch's chain may start here
            if key not in state.tensors:
                state.tensors[key] = protocol.tensor_shape(
                    path, key[1], name, list(value.shape), symexpr.shape_text(value),
                    str(value.dtype).removeprefix("torch."), state.owner, symexpr.used_symbols(value))
        except Exception:  # noqa: BLE001 — recording must never change what user code does
            pass

    return rec


def run_statements(state: State, path: str, module: types.ModuleType, stmts: list[ast.stmt],
                   unknown: set[str], report: bool) -> None:
    ns = module.__dict__
    ns[REC] = make_rec(state, path)
    ns[DEFER] = defer
    ns[SILENT_LOGGER] = _SILENT
    for stmt in stmts:
        if (path, stmt_key(stmt)) in state.skipped:
            continue  # after an import that failed in its `try:`
        state.at = (path, stmt.lineno)
        probe.progress(path, stmt.lineno)
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            run_import(state, path, stmt, ns)
            continue
        try:
            code = compile(ast.Module(instrument_block([stmt]), []), path, "exec")
            exec(code, ns)  # noqa: S102 — the plan allowed exactly this statement
        except ProbeTimeout:
            raise
        except BaseException as exc:  # noqa: BLE001 — user code may raise anything, SystemExit too
            names = assigned_names(stmt)
            if report or isinstance(exc, MissingName):
                report_exception(state, exc, path, span(stmt), unknown, stmt)
            unknown |= names
            for n in names:
                ns.pop(n, None)


def run_import(state: State, path: str, stmt: ast.Import | ast.ImportFrom, ns: dict) -> None:
    """Run an import; whatever fails to import (missing, or raising at import time) is bound to a
    stand-in, and one note says which import failed."""
    try:
        exec(compile(ast.Module([stmt], []), path, "exec"), ns)  # noqa: S102 — an import the plan kept
        for bound, _ in bound_names(stmt, list(stmt.names)):
            if (replaced := parallel_stand_in(ns.get(bound))) is not None:
                ns[bound] = replaced  # a tensor-parallel layer needs a process group: its nn equivalent
        return
    except ProbeTimeout:
        raise
    except BaseException as exc:  # noqa: BLE001 — an import may raise anything, SystemExit too
        error = exc
    fallback = getattr(stmt, "_sl_fallback", None)
    if fallback is not None and isinstance(error, ImportError):
        run_fallback(fallback, path, ns)  # the file's own `except ImportError:`, as Python runs it
        state.skipped |= {(path, key) for key in fallback.skipped}
        return
    failed = list(stmt.names)
    if isinstance(stmt, ast.ImportFrom) and len(stmt.names) > 1:
        failed = []
        for alias in stmt.names:
            try:
                import_one(stmt, alias, ns, path)
            except ProbeTimeout:
                raise
            except BaseException:  # noqa: BLE001
                failed.append(alias)
    index = state.index(path)
    text = index.segment(span(stmt)) if index else "import"
    where = (path, stmt.lineno)
    names = bound_names(stmt, failed)
    for bound, full in names:
        ns[bound] = Missing(full, text.splitlines()[0], where)
    standing = [(b, f) for b, f in names if stand_in(f) is not None]
    for bound, full in standing:
        ns[bound] = stand_in(full)
    modelled = [b for b, f in standing if stand_in(f) in MODELLED]
    if modelled:  # shapes that come from a stand-in's layers, not the package's: say so
        state.finding(PROBE_INCOMPLETE, path, span(stmt),
                      f"{', '.join(f'`{b}`' for b in modelled)} could not be imported ({type(error).__name__}); "
                      f"{'it is' if len(modelled) == 1 else 'they are'} probed as shapelens' stand-in with the same "
                      "arguments and shapes (install the package in the interpreter shapelens uses for its own code)")
    names = [n for n in names if n not in standing]
    if not names:
        return  # only helpers with stand-ins: nothing is unknown
    if _imports_the_probed_file(error):
        return  # a package __init__ re-exporting the file being probed, which is still running: no fault
    listed = ", ".join(f"`{b}`" for b, _ in names) or "its names"
    verb = "is" if len(names) == 1 else "are"
    msg = " ".join(str(error).split()) or type(error).__name__
    note = state.finding(PROBE_INCOMPLETE, path, span(stmt),
                         f"import failed ({type(error).__name__}: {msg}); {listed} {verb} unknown to the probe, and code "
                         "that uses it is not probed (install the package in the interpreter shapelens uses, or "
                         "ignore this if it is expected)")
    if note is not None:
        state.missing_notes[where] = note



def _imports_the_probed_file(error: BaseException) -> bool:
    """The probed file's module is the only one without a spec (planned modules get one): an
    import of it from its package's __init__ meets it half-run, as Python's own would."""
    name = getattr(error, "name", None)
    return isinstance(error, ImportError) and name in sys.modules and \
        getattr(sys.modules[name], "__spec__", None) is None
