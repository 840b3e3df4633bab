"""One probe, run inside a forked child of the worker: execute the plan's statements of the
target file, then probe every nn.Module class of the file that nothing called yet."""

from __future__ import annotations

import ast
import copy
import dataclasses
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import os
import sys
import types
import typing
from typing import Any

import torch
from torch import nn

from shapelens.analysis.hints import Hint, InputSpec, collect_hints
from shapelens.analysis.index import SourceIndex, method_def, source_order_calls
from shapelens.analysis.instrument import REC, instrument_block
from shapelens.analysis.source import Span, assigned_names, flat_body, span
from shapelens.probe.worker import tracking
from shapelens.probe.worker.rules import Spec, container_first, rule_for
from shapelens.probe.worker.tracking import ProbeTimeout, State

# Sizes the probe makes up when the file does not give them; picked so they are not mistaken for
# real widths, and shown symbolically (B, T, ...) in hovers.
ASSUMED = {"B": 17, "T": 13}
SPATIAL_CANDIDATES = (28, 32, 64, 96, 128, 224, 256, 299, 512)
DTYPES = {"float": torch.float32, "float32": torch.float32, "double": torch.float64, "float64": torch.float64,
          "half": torch.float16, "float16": torch.float16, "bfloat16": torch.bfloat16, "long": torch.long,
          "int64": torch.long, "int": torch.int32, "int32": torch.int32, "bool": torch.bool, "uint8": torch.uint8}


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
            if key not in state.tensors:
                shape = list(value.shape)
                state.tensors[key] = {"path": path, "span": [line, col, end_line, end_col], "name": name,
                                      "shape": shape, "symbolic": state.symbolic(shape),
                                      "dtype": str(value.dtype).removeprefix("torch.")}
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
        code = compile(ast.Module(instrument_block([stmt]), []), path, "exec")
        try:
            exec(code, ns)  # noqa: S102 — the plan allowed exactly this statement
        except ProbeTimeout:
            raise
        except BaseException as exc:  # noqa: BLE001 — user code may raise anything, SystemExit too
            names = assigned_names(stmt)
            if report:
                report_exception(state, exc, path, span(stmt), unknown, stmt)
            unknown |= names
            for n in names:
                ns.pop(n, None)


# -- exceptions -> findings ---------------------------------------------------------------------
def innermost(state: State, exc: BaseException) -> tuple[str, Span, list] | None:
    tb = exc.__traceback__
    found = None
    frames = []
    while tb is not None:
        frames.append(tb)
        if tb.tb_frame.f_code.co_filename in state.sources:
            found = (tb.tb_frame.f_code.co_filename, tracking.frame_span(tb.tb_frame, tb.tb_lasti), len(frames))
        tb = tb.tb_next
    if found is None:
        return None
    return found[0], found[1], frames[found[2]:]


def _message(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return " ".join(lines[:3])


def report_exception(state: State, exc: BaseException, path: str, stmt_span: Span, unknown: set[str],
                     stmt: ast.stmt | None = None) -> None:
    if isinstance(exc, NameError) and getattr(exc, "name", None) in unknown:
        return  # the name comes from a statement the probe skipped or that failed: said already
    where = innermost(state, exc)
    fpath, fspan, deeper = where if where else (path, stmt_span, [])
    msg = _message(exc)
    if isinstance(stmt, (ast.Import, ast.ImportFrom)) and isinstance(exc, ImportError):
        state.finding("probe-incomplete", path, stmt_span,
                      f"import failed ({type(exc).__name__}: {msg}); the names it defines are unknown to the probe")
        return
    if isinstance(exc, SystemExit):
        state.finding("probe-incomplete", fpath, fspan, "the code called sys.exit(); the probe stopped here")
        return
    if isinstance(exc, MemoryError) or "can't allocate memory" in msg or "out of memory" in msg.lower():
        state.finding("probe-incomplete", fpath, fspan,
                      "the probe ran out of its memory limit here; probe on the meta device (the default) "
                      "or raise the limit")
        return
    if tracking._is_meta_gap(exc) or "meta tensor" in msg or "on meta" in msg or "data-dependent" in msg:
        state.finding("probe-incomplete", fpath, fspan,
                      f"the meta device cannot run this ({msg}); shapes after it are unknown — "
                      "check with `--device cpu` to run it on real tensors")
        return
    if deeper and _in_torch_module_init(deeper[0]):
        state.finding("invalid-layer-config", fpath, fspan, f"torch rejects this layer's arguments: {msg}")
        return
    if isinstance(exc, (RuntimeError, ValueError, IndexError, AssertionError)):
        state.finding("shape-error", fpath, fspan, msg)
        return
    state.finding("probe-incomplete", fpath, fspan, f"the probe could not run this: {type(exc).__name__}: {msg}")


def _in_torch_module_init(tb: types.TracebackType) -> bool:
    frame = tb.tb_frame
    mod = frame.f_globals.get("__name__", "")
    return frame.f_code.co_name == "__init__" and mod.startswith("torch.nn") and isinstance(
        frame.f_locals.get("self"), nn.Module
    )


# -- workspace imports ---------------------------------------------------------------------------
class WorkspaceFinder(importlib.abc.MetaPathFinder):
    """Workspace modules are loaded through the plan (only their tensor-pure statements run);
    workspace files the plan did not analyse are refused rather than run unchecked."""

    def __init__(self, state: State, plans: dict[str, dict], root: str, search: list[str]) -> None:
        self.state, self.plans, self.root, self.search = state, plans, root, search

    def find_spec(self, fullname, path=None, target=None):
        spec = importlib.machinery.PathFinder.find_spec(fullname, path if path else self.search)
        if spec is None or not spec.origin:
            return None
        origin = os.path.realpath(spec.origin)
        plan = self.plans.get(origin)
        if plan is not None:
            is_pkg = origin.endswith("__init__.py")
            new = importlib.util.spec_from_loader(fullname, PlannedLoader(self.state, plan), origin=origin, is_package=is_pkg)
            if is_pkg and new is not None:
                new.submodule_search_locations = [os.path.dirname(origin)]
            return new
        if origin.startswith(self.root + os.sep) and "site-packages" not in origin:
            raise ImportError(f"{fullname} is a workspace module the static plan did not analyse")
        return None


class PlannedLoader(importlib.abc.Loader):
    def __init__(self, state: State, plan: dict) -> None:
        self.state, self.plan = state, plan

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        path = self.plan["path"]
        module.__file__ = path
        index = self.state.index(path)
        if index is None:
            raise ImportError(f"{path} has a syntax error")
        stmts = sanitize(copy.deepcopy(index.tree), set(self.plan["keep"]), set(self.plan["strip_decorators"]))
        run_statements(self.state, path, module, stmts, set(), report=False)


# -- constructing modules and inputs -------------------------------------------------------------
def _eval_call_args(call: ast.Call, ns: dict) -> tuple[tuple, dict]:
    args = ast.Tuple([a for a in call.args], ast.Load())
    kwargs = ast.Dict([ast.Constant(k.arg) if k.arg else None for k in call.keywords], [k.value for k in call.keywords])
    expr = ast.Expression(ast.Tuple([args, kwargs], ast.Load()))
    ast.fix_missing_locations(expr)
    return eval(compile(expr, "<shapelens-call-site>", "eval"), ns)  # noqa: S307 — planned pure


def _hint_for(hints: dict[int, Hint], *lines: int) -> list[Hint]:
    return [hints[ln] for ln in lines if ln in hints]


def _config_default(annotation: Any, ns: dict) -> Any:
    if isinstance(annotation, str):
        annotation = ns.get(annotation)
    if annotation is inspect.Parameter.empty or annotation in (int, float, str, bool):
        return inspect.Parameter.empty
    if isinstance(annotation, type) and not issubclass(annotation, (nn.Module, torch.Tensor)):
        try:
            return annotation()  # a dataclass / config class whose fields all have defaults
        except Exception:  # noqa: BLE001
            return inspect.Parameter.empty
    return inspect.Parameter.empty


def construct(state: State, cls: type, ns: dict, index: SourceIndex, node: ast.ClassDef,
              hints: dict[int, Hint], sites: list[str], path: str) -> tuple[nn.Module | None, str | None]:
    """Build `cls` with arguments from a hint, a call site, defaults or config defaults."""
    attempts: list[tuple[tuple, dict]] = []
    for hint in _hint_for(hints, node.lineno):
        if hint.ctor is not None:
            try:
                attempts.append(_eval_call_args(hint.ctor, ns))
            except Exception as exc:  # noqa: BLE001
                state.finding("probe-incomplete", path, span(node), f"cannot use the hint `{hint.text}`: {exc}")
    for key in sites:
        l, c, el, ec = map(int, key.split(":"))
        cs = index.call_at((l, c, el, ec))
        if cs is None:
            continue
        try:
            attempts.append(_eval_call_args(cs.call, ns))
        except Exception:  # noqa: BLE001 — a call site whose names are unknown here
            continue
    try:
        sig = inspect.signature(cls.__init__)
        params = [p for p in list(sig.parameters.values())[1:] if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        try:
            hints_t = typing.get_type_hints(cls.__init__, globalns=ns)
        except Exception:  # noqa: BLE001
            hints_t = {}
        kwargs, missing = {}, []
        for p in params:
            if p.default is not inspect.Parameter.empty:
                continue
            value = _config_default(hints_t.get(p.name, p.annotation), ns)
            if value is inspect.Parameter.empty:
                missing.append(p.name)
            else:
                kwargs[p.name] = value
        if not missing:
            attempts.append(((), kwargs))
    except (TypeError, ValueError):
        missing = []
    for args, kwargs in attempts:
        try:
            with torch.no_grad():
                return cls(*args, **kwargs), None
        except ProbeTimeout:
            raise
        except BaseException as exc:  # noqa: BLE001
            report_exception(state, exc, path, span(node), set())
            return None, None
    example = ", ".join(f"{m}=..." for m in missing)
    return None, (f"cannot construct `{cls.__name__}`: no value for {', '.join(f'`{m}`' for m in missing)}; "
                  f"add `# shapelens: {cls.__name__}({example})` on the class line")


def _class_node(cls: type, state: State) -> tuple[SourceIndex, ast.ClassDef] | None:
    try:
        path = os.path.realpath(inspect.getsourcefile(cls) or "")
    except TypeError:
        return None
    index = state.index(path)
    if index is None:
        return None
    node = index.class_def(cls.__name__)
    return (index, node) if node is not None else None


def spec_for(state: State, module: nn.Module, depth: int = 0) -> Spec | None:
    """What input the first layer of `module` takes."""
    if depth > 8:
        return None
    rule = rule_for(type(module))
    if rule is not None and rule.spec is not None:
        return rule.spec(module)
    inner = container_first(module)
    if inner is not None:
        return spec_for(state, inner, depth + 1)
    found = _class_node(type(module), state)
    if found is None:
        return None
    fwd = method_def(found[1], "forward")
    if fwd is None:
        return None
    params = [a.arg for a in fwd.args.args if a.arg != "self"]
    if not params:
        return None
    consumer = first_consumer(fwd, params[0], module)
    return spec_for(state, consumer, depth + 1) if consumer is not None else None


def first_consumer(fwd: ast.FunctionDef, param: str, owner: nn.Module) -> nn.Module | None:
    for call in source_order_calls(fwd):
        if not any(isinstance(a, ast.Name) and a.id == param for a in call.args):
            continue
        target = call.func
        index = None
        if isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant):
            index, target = target.slice.value, target.value
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
            sub = getattr(owner, target.attr, None)
            if index is not None and sub is not None:
                try:
                    sub = sub[index]
                except Exception:  # noqa: BLE001
                    sub = None
            if isinstance(sub, nn.Module):
                return sub
    return None


def make_input(spec: Spec | InputSpec, sizes: dict[str, int]) -> torch.Tensor:
    dims = []
    for d in spec.dims:
        if isinstance(d, int):
            dims.append(d)
        else:
            if d not in sizes:
                sizes[d] = 19 + 2 * len(sizes)  # another size no real width is likely to have
            dims.append(sizes[d])
    dtype = DTYPES.get(spec.dtype, torch.float32) if isinstance(spec, InputSpec) else spec.dtype
    if dtype.is_floating_point:
        return torch.randn(dims, dtype=dtype)
    high = getattr(spec, "high", None) or 2
    return torch.randint(0, high, dims, dtype=dtype)


def probe_class(state: State, instance: nn.Module, index: SourceIndex, node: ast.ClassDef,
                hints: dict[int, Hint], path: str) -> str | None:
    """Run forward on made-up inputs. Returns the assumption made, for hovers."""
    fwd = method_def(node, "forward")
    if fwd is None:
        return None
    fwd_hints: dict[str, InputSpec] = {}
    for hint in _hint_for(hints, node.lineno, fwd.lineno):
        fwd_hints.update(hint.inputs)
    try:
        sig = inspect.signature(instance.forward)
    except (TypeError, ValueError):
        return None
    specs: dict[str, Spec | InputSpec] = {}
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name in fwd_hints:
            specs[p.name] = fwd_hints[p.name]
            continue
        if p.default is not inspect.Parameter.empty:
            continue
        consumer = first_consumer(fwd, p.name, instance)
        spec = spec_for(state, consumer) if consumer is not None else None
        if spec is None:
            arg = next((a for a in fwd.args.args if a.arg == p.name), None)
            where = (arg.lineno, arg.col_offset, arg.lineno, arg.col_offset + len(p.name)) if arg else span(node)
            state.finding("probe-incomplete", path, where,
                          f"cannot tell what `{p.name}` of {type(instance).__name__}.forward looks like; add a hint "
                          f"on the def line, e.g. `# shapelens: {p.name}=float[B,3,224,224]`")
            return None
        specs[p.name] = spec
    spatial = any(d in ("H", "W", "D", "L") for s in specs.values() for d in s.dims)
    if not spatial:
        return attempt(state, instance, specs, None, path, node)
    # The spatial size is not in the file: take the first plausible size under which every
    # declared width is consistent; if none is, report what the first size gives.
    for size in SPATIAL_CANDIDATES:
        mark = state.mark()
        used = attempt(state, instance, specs, size, path, node)
        if state.errors_since(mark) == 0:
            return used
        state.rollback(mark)
    return attempt(state, instance, specs, SPATIAL_CANDIDATES[0], path, node)


def attempt(state: State, instance: nn.Module, specs: dict, size: int | None, path: str,
            node: ast.ClassDef) -> str:
    sizes = dict(ASSUMED)
    if size is not None:
        sizes.update(H=size, W=size, D=size, L=size)
    with torch.no_grad():
        inputs = {name: make_input(spec, sizes) for name, spec in specs.items()}
    used = {k: v for k, v in sizes.items() if any(k == d for s in specs.values() for d in s.dims)}
    state.assumed = {v: k for k, v in used.items() if k not in ("H", "W", "D", "L")}
    try:
        with torch.no_grad():
            instance(**inputs)
    except ProbeTimeout:
        raise
    except BaseException as exc:  # noqa: BLE001
        report_exception(state, exc, path, span(node), set())
    finally:
        state.assumed = {}
    return ", ".join(f"{k}={v}" for k, v in used.items())


# -- the whole probe ---------------------------------------------------------------------------
def run_probe(plan: dict, options: dict) -> dict:
    device = resolve_device(options.get("device", "meta"))
    notes: list[str] = []
    if device != options.get("device", "meta") and options.get("device") == "cuda":
        notes.append("CUDA is not available to the probe's torch; probed on the meta device instead")
    files = {f["path"]: f for f in plan["files"]}
    state = State({p: f["source"] for p, f in files.items()}, device)
    target = plan["target"]
    tplan = files[target]
    tracking.install(state)
    search = [os.path.dirname(target), plan["root"]]
    sys.path[:0] = search
    sys.meta_path.insert(0, WorkspaceFinder(state, files, plan["root"], search))
    index = state.index(target)
    module = types.ModuleType(tplan["module"] or "__shapelens__")
    module.__file__ = target
    sys.modules[module.__name__] = module
    hints = collect_hints(tplan["source"])
    for hint in hints.values():
        if hint.error:
            state.finding("probe-incomplete", target, (hint.line, 0, hint.line, 0), hint.error)
    assumptions: dict[str, str] = {}
    unknown: set[str] = set()
    stmts = sanitize(copy.deepcopy(index.tree), set(tplan["keep"]), set(tplan["strip_decorators"]))
    with torch.device(device), tracking.ProbeMode():
        try:
            run_statements(state, target, module, stmts, unknown, report=True)
            classes = [v for v in list(module.__dict__.values()) if isinstance(v, type) and issubclass(v, nn.Module)
                       and v.__module__ == module.__name__]
            for cls in reversed(classes):
                if cls in state.called or inspect.isabstract(cls):
                    continue
                node = index.class_def(cls.__name__)
                if node is None or method_def(node, "forward") is None:
                    continue
                state.at = (target, node.lineno)
                if tracking.on_progress is not None:
                    tracking.on_progress(target, node.lineno)
                instance = state.instances.get(cls)
                if instance is None:
                    instance, why = construct(state, cls, module.__dict__, index, node, hints,
                                              plan.get("ctor_sites", {}).get(cls.__name__, []), target)
                    if instance is None:
                        if why:
                            state.finding("probe-incomplete", target, class_name_span(index, node), why)
                        continue
                assumed = probe_class(state, instance, index, node, hints, target)
                if assumed:
                    assumptions[cls.__name__] = assumed
        except ProbeTimeout as exc:
            where = innermost(state, exc)
            path, line = (where[0], where[1][0]) if where else (state.at or (target, 1))
            state.finding("probe-incomplete", path, (line, 0, line, 10_000),
                          f"the probe timed out after {options.get('timeout', 5)} s here; shapes after this point "
                          "are unknown (an endless loop, or a model too large for the device?)")
    return collect(state, module, index, target, assumptions, notes)


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
    for info in state.layers:
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
    return {"findings": state.findings, "tensors": list(state.tensors.values()), "layers": layers,
            "classes": classes, "stats": {"device": state.device, "param_storage_bytes": storage,
                                          "modules": len(state.layers)}}


def layer_entry(state: State, info, seen: set) -> dict | None:
    cs = tracking.call_site(info.site)
    if cs is None or cs.target is None:
        return None
    key = (info.site.path, span(cs.target))
    if key in seen:
        return None
    seen.add(key)
    params, nbytes = _params(info.module)
    return {
        "path": info.site.path, "span": list(span(cs.target)),
        "name": state.index(info.site.path).segment(span(cs.target)),
        "input_shape": info.first_in, "output_shape": info.first_out,
        "input_symbolic": info.in_sym, "output_symbolic": info.out_sym,
        "layer": repr(info.module).splitlines()[0] if not list(info.module.children()) else type(info.module).__name__,
        "params": params, "param_bytes": nbytes,
    }


def class_summary(state: State, cls: type, index: SourceIndex, target: str, assumptions: dict) -> dict | None:
    inst = state.instances.get(cls)
    node = index.class_def(cls.__name__)
    if inst is None or node is None or cls not in state.called:
        return None
    rows = []
    for sub_name, sub in inst.named_modules():
        info = sub.__dict__.get("_sl")
        n, _ = _params(sub)
        rows.append({"name": sub_name or cls.__name__, "layer": type(sub).__name__,
                     "depth": sub_name.count(".") + 1 if sub_name else 0,
                     "input_shape": info.first_in if info else None,
                     "output_shape": info.first_out if info else None, "params": n})
    total, nbytes = _params(inst)
    return {"path": target, "span": list(class_name_span(index, node)), "name": cls.__name__,
            "rows": rows, "total_params": total, "param_bytes": nbytes, "assumed": assumptions.get(cls.__name__)}


__all__ = ["run_probe", "dataclasses"]
