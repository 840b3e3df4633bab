"""One probe, run inside a forked child of the worker: execute the plan's statements of the
target file, then probe every nn.Module class of the file that nothing called yet; where a
mismatch could be fixed in more than one place, keep the fix that makes the file consistent."""

from __future__ import annotations

import ast
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import json
import os
import posix
import select
import signal
import sys
import time
import types

import torch
from torch import nn

from shapelens.analysis.hints import Hint, collect_hints, project_hints
from shapelens.analysis.index import SourceIndex, method_def
from shapelens.analysis.instrument import REC, instrument_block
from shapelens.analysis.source import Span, assigned_names, flat_body, span
from shapelens.probe.worker import symdims, tracking, verify
from shapelens.probe.worker.construct import build, cannot_construct, ctor_attempts
from shapelens.probe.worker.failures import innermost, report_exception
from shapelens.probe.worker.missing import Missing, MissingName, bound_names, import_one
from shapelens.probe.worker.probing import probe_class
from shapelens.probe.worker.tracking import ProbeTimeout, State


# -- the plan's statements ----------------------------------------------------------------------
def sanitize(tree: ast.Module, keep: set[str], strip: set[str]) -> list[ast.stmt]:
    """The statements of a file that the plan allows, class bodies filtered the same way."""

    def strip_decorators(node: ast.AST) -> None:
        for n in ast.walk(node):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                n.decorator_list = [d for d in n.decorator_list if f"{d.lineno}:{d.col_offset}" not in strip]

    out = []
    for stmt in flat_body(tree.body):
        if f"{stmt.lineno}:{stmt.col_offset}" not in keep:
            continue
        if isinstance(stmt, ast.ClassDef):
            stmt.body = [s for s in stmt.body if f"{s.lineno}:{s.col_offset}" in keep] or [ast.Pass()]
            for s in stmt.body:
                if not hasattr(s, "lineno"):
                    ast.copy_location(s, stmt)
        strip_decorators(stmt)
        out.append(stmt)
    return out


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
                value._sl_named_at = tracking.Site(path, (line, col, end_line, end_col))  # a chain may start here
            if key not in state.tensors:
                state.tensors[key] = {"path": path, "span": [line, col, end_line, end_col], "name": name,
                                      "shape": list(value.shape), "symbolic": symdims.shape_text(value),
                                      "symbols": symdims.used_symbols(value),
                                      "dtype": str(value.dtype).removeprefix("torch."), "owner": state.owner}
        except Exception:  # noqa: BLE001 — recording must never change what user code does
            pass

    return rec


def run_statements(state: State, path: str, module: types.ModuleType, stmts: list[ast.stmt],
                   unknown: set[str], report: bool) -> None:
    ns = module.__dict__
    ns[REC] = make_rec(state, path)
    for stmt in stmts:
        state.at = (path, stmt.lineno)
        if tracking.on_progress is not None:
            tracking.on_progress(path, stmt.lineno)
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
        return
    except ProbeTimeout:
        raise
    except BaseException as exc:  # noqa: BLE001 — an import may raise anything, SystemExit too
        error = exc
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
    listed = ", ".join(f"`{b}`" for b, _ in names) or "its names"
    verb = "is" if len(names) == 1 else "are"
    msg = " ".join(str(error).split()) or type(error).__name__
    state.finding("probe-incomplete", path, span(stmt),
                  f"import failed ({type(error).__name__}: {msg}); {listed} {verb} unknown to the probe, and code "
                  "that uses it is not probed (install the package in the interpreter shapelens uses, or ignore "
                  "this if it is expected)")
    state.missing_notes[where] = state.findings[-1]


# -- workspace imports ---------------------------------------------------------------------------
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
        if plan is not None:
            is_pkg = origin.endswith("__init__.py")
            new = importlib.util.spec_from_loader(fullname, PlannedLoader(plan), origin=origin, is_package=is_pkg)
            if is_pkg and new is not None:
                new.submodule_search_locations = [os.path.dirname(origin)]
            return new
        if origin.startswith(self.root + os.sep) and "site-packages" not in origin:
            raise ImportError(f"{fullname} is a workspace module the static plan did not analyse")
        return None


class PlannedLoader(importlib.abc.Loader):
    def __init__(self, plan: dict) -> None:
        self.plan = plan

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        state = tracking.STATE  # the probe running now (a re-probe has its own)
        path = self.plan["path"]
        module.__file__ = path
        LOADED.append(module.__name__)
        index = state.index(path)
        if index is None:
            raise ImportError(f"{path} has a syntax error")
        stmts = sanitize(ast.parse(index.text, index.path), set(self.plan["keep"]), set(self.plan["strip_decorators"]))
        run_statements(state, path, module, stmts, set(), report=False)


# -- the whole probe ---------------------------------------------------------------------------
class Probe:
    """One file's probe. `run` can be repeated on edited sources (a re-probe forks first)."""

    def __init__(self, plan: dict, options: dict) -> None:
        self.plan, self.options = plan, options
        self.device = resolve_device(options.get("device", "meta"))
        self.files = {f["path"]: f for f in plan["files"]}
        self.target = plan["target"]
        self.project = project_hints(plan["root"])

    def setup(self, state: State) -> None:
        tracking.install(state)
        search = [os.path.dirname(self.target), self.plan["root"]]
        sys.path[:0] = search
        sys.meta_path.insert(0, WorkspaceFinder(self.files, self.plan["root"], search))

    def run(self, sources: dict[str, str], reuse: bool = True) -> tuple[State, types.ModuleType, SourceIndex,
                                                                          dict[str, str]]:
        """`reuse`: skip the classes whose results the engine holds (plan["skip_classes"]); a
        re-probe that verifies a fix probes everything."""
        state = State(sources, self.device)
        tracking.activate(state)
        target, tplan = self.target, self.files[self.target]
        index = state.index(target)
        module = types.ModuleType(tplan["module"] or "__shapelens__")
        module.__file__ = target
        sys.modules[module.__name__] = module
        hints = collect_hints(sources[target])
        for hint in hints.values():
            if hint.error:
                state.finding("probe-incomplete", target, (hint.line, 0, hint.line, 0), hint.error)
        if self.project.error:
            state.finding("probe-incomplete", target, (1, 0, 1, 0), self.project.error)
        assumptions: dict[str, str] = {}
        stmts = sanitize(ast.parse(index.text, index.path), set(tplan["keep"]), set(tplan["strip_decorators"]))
        with torch.device(self.device), tracking.ProbeMode():
            try:
                run_statements(state, target, module, stmts, set(), report=True)
                self.probe_classes(state, module, index, hints, assumptions,
                                   set(self.plan.get("skip_classes") or []) if reuse else set())
            except ProbeTimeout as exc:
                state.timed_out = True
                where = innermost(state, exc)
                path, line = (where[0], where[1][0]) if where else (state.at or (target, 1))
                state.finding("probe-incomplete", path, (line, 0, line, 10_000),
                              f"the probe timed out after {self.options.get('timeout', 5)} s here; shapes after this "
                              "point are unknown (an endless loop, or a model too large for the device?)")
        return state, module, index, assumptions

    def probe_classes(self, state: State, module: types.ModuleType, index: SourceIndex, hints: dict[int, Hint],
                      assumptions: dict[str, str], skip: set[str]) -> None:
        """Probe every class of the file nothing called (and that is not in `skip`). A class that
        cannot be built on its own (a block taking its widths from its parent) may still be
        reached through another call site of a class that builds it (`ResNet(Bottleneck, [3, 4,
        6, 3])`). What each class's probe records is tagged with the class (`state.owner`)."""
        target = self.target
        classes = [v for v in list(module.__dict__.values()) if isinstance(v, type) and issubclass(v, nn.Module)
                   and v.__module__ == module.__name__]
        pending: list[tuple[type, ast.ClassDef, str]] = []
        spare: list[tuple[type, ast.ClassDef, tuple, dict]] = []
        for cls in reversed(classes):
            if cls in state.called or inspect.isabstract(cls) or cls.__name__ in skip:
                continue
            node = index.class_def(cls.__name__)
            if node is None or method_def(node, "forward") is None:
                continue
            self.progress(state, node)
            state.owner = cls.__name__
            state.probed.append(cls.__name__)
            instance = state.instances.get(cls)
            if instance is None:
                attempts, missing = ctor_attempts(state, cls, module.__dict__, index, node, hints, self.project,
                                                  self.plan.get("ctor_sites", {}).get(cls.__name__, []), target,
                                                  self.plan["root"])
                if not attempts:
                    pending.append((cls, node, cannot_construct(cls, missing)))
                    continue
                instance = build(state, cls, *attempts[0], target, node)
                if instance is None:
                    continue
                spare += [(cls, node, *a) for a in attempts[1:4]]
            assumed = probe_class(state, instance, node, hints, self.project, target)
            if assumed:
                assumptions[cls.__name__] = assumed
        for cls, node, why in pending:
            for other, onode, args, kwargs in spare:
                if cls in state.called:
                    break
                self.progress(state, onode)
                state.owner = other.__name__
                instance = build(state, other, args, kwargs, target, onode)
                if instance is not None:
                    probe_class(state, instance, onode, hints, self.project, target)
            state.owner = cls.__name__
            if cls not in state.called:
                state.finding("probe-incomplete", target, class_name_span(index, node), why)
        state.owner = None
        # A class another probe (or module-level code) reached is done too: its results are
        # that caller's, and probing it alone next time would only repeat them less well.
        state.probed += [c.__name__ for c in classes if c in state.called and c.__name__ not in skip
                         and c.__name__ not in state.probed]

    def progress(self, state: State, node: ast.ClassDef) -> None:
        state.at = (self.target, node.lineno)
        if tracking.on_progress is not None:
            tracking.on_progress(self.target, node.lineno)

    # -- re-probing with a fix applied ------------------------------------------------------------
    def rerun(self, deadline: float):
        def run(_, edits: list[dict]) -> list[dict] | None:
            budget = deadline - time.monotonic()
            if budget <= 0.05:
                return None
            sources = verify.apply({p: f["source"] for p, f in self.files.items()}, edits)
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:  # the re-probe: a copy of this process, thrown away afterwards
                os.close(read)
                data = b"null"
                try:
                    tracking.on_progress = None
                    signal.setitimer(signal.ITIMER_REAL, budget)
                    for name in LOADED + [self.files[self.target]["module"] or "__shapelens__"]:
                        sys.modules.pop(name, None)
                    state = self.run(sources, reuse=False)[0]
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    if not state.timed_out:
                        data = json.dumps([{k: f[k] for k in ("code", "path", "span")} for f in state.findings]).encode()
                except BaseException:  # noqa: BLE001 — an unfinished re-probe decides nothing
                    pass
                try:
                    while data:
                        data = data[os.write(write, data):]
                finally:
                    posix._exit(0)
            os.close(write)
            chunks = []
            try:
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0 or not select.select([read], [], [], left)[0]:
                        break
                    chunk = os.read(read, 1 << 16)
                    if not chunk:
                        break
                    chunks.append(chunk)
            finally:
                os.close(read)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                os.waitpid(pid, 0)
            try:
                return json.loads(b"".join(chunks) or b"null")
            except ValueError:
                return None

        return run


def run_probe(plan: dict, options: dict) -> dict:
    started = time.monotonic()
    probe = Probe(plan, options)
    notes: list[str] = []
    if probe.device != options.get("device", "meta") and options.get("device") == "cuda":
        notes.append("CUDA is not available to the probe's torch; probed on the meta device instead")
    sources = {p: f["source"] for p, f in probe.files.items()}
    probe.setup(State(sources, probe.device))
    state, module, index, assumptions = probe.run(sources)
    # Choosing among fixes re-probes the file; it gets what is left of 80 % of the time limit,
    # so a slow model still answers in time.
    timeout = float(options.get("timeout", 5.0))
    deadline = started + max(timeout * 0.8, 0.5)
    try:
        state.findings = verify.choose(state.findings, probe.rerun(deadline), deadline)
    except ProbeTimeout:
        state.findings = [{k: v for k, v in f.items() if k != "alts"} for f in state.findings]
    return collect(state, module, index, probe.target, assumptions, notes)


def class_name_span(index: SourceIndex, node: ast.ClassDef) -> Span:
    line = index.text.splitlines()[node.lineno - 1].encode("utf-8")
    col = line.find(node.name.encode(), node.col_offset + 5)
    return (node.lineno, max(col, 0), node.lineno, max(col, 0) + len(node.name.encode()))


def resolve_device(device: str) -> str:
    if device in ("cuda", "auto"):
        if torch.cuda.is_available():
            return "cuda"
        return "cpu" if device == "auto" else "meta"
    return device if device in ("meta", "cpu") else "meta"


def _params(module: nn.Module) -> tuple[int, int]:
    n = b = 0
    for p in module.parameters():
        n += p.numel()
        b += p.numel() * p.element_size()
    return n, b


def collect(state: State, module: types.ModuleType, index: SourceIndex, target: str,
            assumptions: dict[str, str], notes: list[str]) -> dict:
    layers, seen = [], set()
    # Of the layers one line built (a block in a loop), show one that ran.
    ordered = sorted(state.layers, key=lambda li: li.first_in is None and li.first_out is None)
    for info in ordered:
        try:
            entry = layer_entry(state, info, seen)
        except Exception:  # noqa: BLE001 — a module whose constructor failed half-way
            continue
        if entry is not None:
            layers.append(entry)
    classes = []
    for name, obj in module.__dict__.items():
        if not (isinstance(obj, type) and issubclass(obj, nn.Module) and obj.__module__ == module.__name__):
            continue
        try:
            summary = class_summary(state, obj, index, target, assumptions)
        except Exception:  # noqa: BLE001
            continue
        if summary is not None:
            classes.append(summary)
    storage = 0
    for info in state.layers:
        try:
            for p in info.module.parameters(recurse=False):
                if p.device.type != "meta":
                    storage += p.untyped_storage().nbytes()
        except Exception:  # noqa: BLE001
            continue
    for note in notes:
        state.finding("probe-incomplete", target, (1, 0, 1, 0), note)
    internal = ("alts", "fixed_size")
    findings = [{k: v for k, v in f.items() if k not in internal} for f in state.findings]
    # `probed`: the classes this probe covered, for the engine's per-class cache.
    return {"findings": findings, "tensors": list(state.tensors.values()), "layers": layers,
            "classes": classes, "probed": list(state.probed),
            "stats": {"device": state.device, "param_storage_bytes": storage, "modules": len(state.layers),
                      "probed": len(state.probed)}}


def layer_entry(state: State, info, seen: set) -> dict | None:
    cs = tracking.call_site(info.site)
    if cs is None or (cs.target is None and not info.direct):
        return None
    # A layer built without a name (inside nn.Sequential(...), a list, a loop) is shown on its
    # callee, `nn.Conv2d` in `nn.Conv2d(in_channels, v, 3)`.
    where = span(cs.target) if cs.target is not None else span(cs.call.func)
    key = (info.site.path, where)
    if key in seen:
        return None
    seen.add(key)
    params, nbytes = _params(info.module)
    first_in, in_sym, first_out, out_sym = info.first_in, info.in_sym, info.first_out, info.out_sym
    symbols = info.symbols
    if isinstance(info.module, (nn.ModuleList, nn.ModuleDict)) and len(info.module):
        # Never called itself: what its first layer takes and its last layer gives.
        kids = list(info.module.children())
        head, tail = kids[0].__dict__.get("_sl"), kids[-1].__dict__.get("_sl")
        if head is not None and tail is not None:
            first_in, in_sym, first_out, out_sym = head.first_in, head.in_sym, tail.first_out, tail.out_sym
            symbols = {**head.symbols, **tail.symbols}
    return {
        "path": info.site.path, "span": list(where),
        "name": state.index(info.site.path).segment(where),
        "input_shape": first_in, "output_shape": first_out,
        "input_symbolic": in_sym, "output_symbolic": out_sym, "symbols": symbols,
        "layer": repr(info.module).splitlines()[0] if not list(info.module.children()) else type(info.module).__name__,
        "params": params, "param_bytes": nbytes, "owner": info.owner,
    }


def class_summary(state: State, cls: type, index: SourceIndex, target: str, assumptions: dict) -> dict | None:
    inst = state.instances.get(cls)
    node = index.class_def(cls.__name__)
    if inst is None or node is None or cls not in state.called:
        return None
    rows, symbols = [], {}
    for sub_name, sub in inst.named_modules():
        info = sub.__dict__.get("_sl")
        n, _ = _params(sub)
        rows.append({"name": sub_name or cls.__name__, "layer": type(sub).__name__,
                     "depth": sub_name.count(".") + 1 if sub_name else 0,
                     "input_shape": info.first_in if info else None,
                     "output_shape": info.first_out if info else None, "params": n,
                     "input_symbolic": info.in_sym if info else None, "output_symbolic": info.out_sym if info else None,
                     # Only a container's items (`blocks.3`) can repeat their neighbours.
                     "signature": signature(sub) if sub_name.rpartition(".")[2].isdigit() else None})
        symbols.update(info.symbols if info else {})
    total, nbytes = _params(inst)
    info = inst.__dict__.get("_sl")
    return {"path": target, "span": list(class_name_span(index, node)), "name": cls.__name__,
            "rows": rows, "total_params": total, "param_bytes": nbytes, "assumed": assumptions.get(cls.__name__),
            "symbols": symbols, "owner": info.owner if info else None}


def signature(module: nn.Module) -> str:
    """Equal for modules built alike: the same class, the same layers with the same arguments
    (torch's repr of the module tree), the same simple attributes."""
    simple = sorted((k, v) for k, v in vars(module).items()
                    if not k.startswith("_") and isinstance(v, (int, float, str, bool, tuple)) and k != "training")
    return hashlib.sha1(f"{type(module).__qualname__}|{module!r}|{simple!r}".encode()).hexdigest()[:16]


def warm_up() -> None:
    """Common layers reach lazily imported parts of torch on the meta device (BatchNorm's
    decomposition imports torch._dynamo, over a second): load them once, in the worker before it
    forks, not in every probe."""
    import torch.nn.functional as F

    with torch.device("meta"), torch.no_grad():
        x = torch.randn(2, 4, 8, 8)
        for layer in (nn.BatchNorm2d(4), nn.GroupNorm(2, 4), nn.InstanceNorm2d(4, affine=True),
                      nn.ConvTranspose2d(4, 4, 2, 2), nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Dropout(0.1)):
            layer(x)
        nn.BatchNorm1d(4)(torch.randn(2, 4))
        nn.GRU(4, 4, bidirectional=True)(torch.randn(3, 2, 4))
        F.cross_entropy(torch.randn(2, 5), torch.randint(0, 5, (2,)))
        F.interpolate(x, scale_factor=2)
        torch.cat([x, x], 1).flatten(1).softmax(-1)


__all__ = ["run_probe", "warm_up"]
