"""Building a model class the file never builds itself: arguments from a hint, pyproject.toml,
the file's call sites, defaults and config classes, or other files' call sites."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import os
import typing
from typing import Any

import torch
from torch import nn

from shapelens.analysis.callsites import FACTORY_PREFIX
from shapelens.analysis.hints import Hint, ProjectHints
from shapelens.analysis.index import SourceIndex
from shapelens.analysis.source import parse_span_key, span
from shapelens.probe.worker import provenance
from shapelens.probe.worker.assume import init_params, placeholders
from shapelens.probe.worker.configs import file_config
from shapelens.probe.worker.failures import raised_by_statement, raising_line, report_exception
from shapelens.probe.worker.missing import MissingName
from shapelens.probe.worker.rules import rule_for
from shapelens.probe.worker.sites import UNKNOWN, workspace_ctor_args
from shapelens.probe.worker.state import ProbeTimeout, State
from shapelens.probe.worker.tying import check_params
from shapelens.report.codes import PROBE_INCOMPLETE


def _eval_call_args(call: ast.Call, ns: dict) -> tuple[tuple, dict]:
    args = ast.Tuple([a for a in call.args], ast.Load())
    kwargs = ast.Dict([ast.Constant(k.arg) if k.arg else None for k in call.keywords], [k.value for k in call.keywords])
    expr = ast.Expression(ast.Tuple([args, kwargs], ast.Load()))
    ast.fix_missing_locations(expr)
    return eval(compile(expr, "<shapelens-call-site>", "eval"), ns)  # noqa: S307 — planned pure


def factory_call(key: str) -> ast.Call | None:
    """A site the plan wrote out as call text (a factory function's call, locals put in)."""
    try:
        node = ast.parse(key.removeprefix(FACTORY_PREFIX), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return node if isinstance(node, ast.Call) else None


def hint_for(hints: dict[int, Hint], *lines: int) -> list[Hint]:
    return [hints[ln] for ln in lines if ln in hints]


def _config_default(annotation: Any, name: str, ns: dict, module_name: str) -> Any:
    """A value for a constructor parameter without a default: an instance of its config class
    (annotated, or, for an unannotated `config`/`cfg`, the file's only config class)."""
    if isinstance(annotation, str):
        annotation = ns.get(annotation)
    if annotation is inspect.Parameter.empty and name.lower() in ("config", "cfg", "conf", "hparams", "hp", "args",
                                                                  "params", "opt", "opts", "settings"):
        annotation = file_config(ns, module_name)
    if annotation is inspect.Parameter.empty or annotation in (int, float, str, bool):
        return inspect.Parameter.empty
    if isinstance(annotation, type) and not issubclass(annotation, (nn.Module, torch.Tensor)):
        try:
            made = annotation()  # a dataclass / config class whose fields all have defaults
        except Exception:  # noqa: BLE001
            return inspect.Parameter.empty
        if dataclasses.is_dataclass(made) and placeholders(annotation, ns):
            return inspect.Parameter.empty  # `vocab_size: int = -1  # set later`: assumed instead (assume.py)
        return made
    return inspect.Parameter.empty


def ctor_attempts(state: State, cls: type, ns: dict, index: SourceIndex, node: ast.ClassDef,
                  hints: dict[int, Hint], project: ProjectHints, sites: list[str],
                  path: str, root: str) -> tuple[list[tuple[tuple, dict]], list[str]]:
    """Argument sets to build `cls` with, best first: a hint comment, pyproject.toml, each call
    site of the file, then defaults and config-class defaults, and when those leave a parameter
    without a value, literal call sites in other files of the workspace. Also the parameters
    nothing gave."""
    attempts: list[tuple[tuple, dict]] = []
    configured = hint_for(hints, node.lineno) + [h for h in [project.for_class(ns.get("__name__", ""), cls.__name__)]
                                                  if h is not None]
    for hint in configured:
        if hint.ctor is not None:
            try:
                attempts.append(_eval_call_args(hint.ctor, ns))
            except Exception as exc:  # noqa: BLE001
                state.finding(PROBE_INCOMPLETE, path, span(node), f"cannot use the hint `{hint.text}`: {exc}")
    for key in sites:
        call = factory_call(key) if key.startswith(FACTORY_PREFIX) else getattr(
            index.call_at(parse_span_key(key)), "call", None)
        if call is None:
            continue
        try:
            attempts.append(_eval_call_args(call, ns))
        except Exception:  # noqa: BLE001 — a call site whose names are unknown here
            continue
    kwargs, missing = config_kwargs(cls, ns)
    if kwargs is not None and not missing:
        if not attempts and not kwargs:
            state.by_defaults.add(cls)  # no hint, call site or config: built from its defaults alone
        attempts.append(((), kwargs))
    if not attempts and missing:
        for args, kw in workspace_ctor_args(root, path, ns.get("__name__", ""), cls.__name__):
            known = bound_args(cls, args, kw)
            if known is not None and UNKNOWN not in known.values():
                attempts.append((args, kw))
            elif known is not None and cls not in state.partial_args:  # the probe assumes the rest
                state.partial_args[cls] = {k: v for k, v in known.items() if v is not UNKNOWN}
    return attempts, missing


def bound_args(cls: type, args: tuple, kwargs: dict) -> dict[str, Any] | None:
    """A call's arguments by parameter name (None when they do not bind, or some go to `*args`)."""
    try:
        sig = inspect.signature(cls)
        bound = sig.bind_partial(*args, **kwargs)
    except (TypeError, ValueError):
        return None
    out: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = sig.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            if value:
                return None
        elif kind is inspect.Parameter.VAR_KEYWORD:
            out.update(value)
        else:
            out[name] = value
    return out


def config_kwargs(cls: type, ns: dict) -> tuple[dict | None, list[str]]:
    """Values for the parameters without a default (config-class instances), and the parameters
    left without one; (None, []) when the signature cannot be read."""
    try:
        params = [p for p in init_params(cls).values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    except (TypeError, ValueError):
        return None, []
    try:
        hints_t = typing.get_type_hints(cls.__init__, globalns=ns)
    except Exception:  # noqa: BLE001
        hints_t = {}
    kwargs, missing = {}, []
    for p in params:
        if p.default is not inspect.Parameter.empty:
            continue
        value = _config_default(hints_t.get(p.name, p.annotation), p.name, ns, ns.get("__name__", ""))
        if value is inspect.Parameter.empty:
            missing.append(p.name)
        else:
            kwargs[p.name] = value
    return kwargs, missing


def build(state: State, cls: type, args: tuple, kwargs: dict, path: str, node: ast.ClassDef) -> nn.Module | None:
    try:
        with torch.no_grad():
            instance = cls(*args, **kwargs)
    except ProbeTimeout:
        raise
    except BaseException as exc:  # noqa: BLE001
        if not args and not kwargs and cls in state.by_defaults and raised_by_statement(exc):
            # `assert self.num_classes == 0` of a class meant to be given arguments: its defaults
            # are nobody's choice, so its own check rejecting them is no error of the file.
            line, filename, lineno = raising_line(exc, state.sources)
            own = line.startswith(("raise ", "raise(", "assert "))
            said = f"`{line}`" if own else f"{os.path.basename(filename)}:{lineno} `{line}` raises"
            state.finding(PROBE_INCOMPLETE, path, span(node),
                          f"`{cls.__name__}` {'rejects' if own else 'cannot be built from'} its own defaults "
                          f"({said}: {type(exc).__name__}{': ' + str(exc).strip()[:200] if str(exc).strip() else ''}); "
                          + (f"it is not probed: add `# shapelens: {cls.__name__}(...)` on the class line with the "
                             "values it is built with" if own else "it is not probed"))
            return None
        before = len(state.findings)
        report_exception(state, exc, path, span(node), set(), what=f"`{cls.__name__}`")
        _told_in_class(state, exc, path, node, state.findings[before:])
        return None
    # Tied weights are checked once, before any input-size search reruns forward.
    for sub in instance.modules():
        rule = rule_for(type(sub))
        if rule is not None:
            check_params(sub, rule)
        provenance.tag_weights(sub)
    return instance


def cannot_construct(cls: type, missing: list[str], given: list[str] | None = None) -> str:
    hint = (f"`[tool.shapelens.models.{cls.__name__}]` in pyproject.toml")
    if not missing:  # every parameter had a value (a config's defaults), yet building failed with them
        names = ", ".join(f"`{g}`" for g in given or []) or "its defaults"
        return (f"cannot construct `{cls.__name__}` with the values the probe has for {names}; add "
                f"`# shapelens: {cls.__name__}(...)` on the class line with real ones, or {hint}")
    example = ", ".join(f"{m}=..." for m in missing)
    return (f"cannot construct `{cls.__name__}`: no value for {', '.join(f'`{m}`' for m in missing)}; "
            f"add `# shapelens: {cls.__name__}({example})` on the class line, or {hint}")


def _told_in_class(state: State, exc: BaseException, path: str, node: ast.ClassDef, said: list) -> None:
    """Building `Block` stopped inside another class (`self.attn = CausalSelfAttention(config)`,
    whose own line got the note): the statement of `Block` that led there says so too, so
    `Block`'s layers without a shape have a reason in `Block`."""
    last = node.end_lineno or node.lineno
    if any(f["path"] == path and node.lineno <= f["span"][0] <= last for f in said) \
            or any(f["code"] != PROBE_INCOMPLETE for f in said):
        return
    tb, line, inner = exc.__traceback__, None, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == path and node.lineno < tb.tb_lineno <= last:
            line = tb.tb_lineno
        if tb.tb_frame.f_code.co_filename in state.sources:
            inner = (tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    around = [n for n in ast.walk(node) if line and isinstance(n, ast.stmt) and not isinstance(n, ast.FunctionDef)
              and n.lineno <= line <= (n.end_lineno or n.lineno)]  # the innermost statement around it
    stmt = min(around, key=lambda n: (n.end_lineno or n.lineno) - n.lineno) if around else None
    # What stopped it: the note it made, or (a missing name, told on the import's note) the exception
    at, why = ((said[0]["path"], said[0]["span"][0]), said[0]["message"].splitlines()[0]) if said else \
        (inner, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    if isinstance(exc, MissingName):
        why = str(exc)  # "`timm...SqueezeExcite` comes from `from timm... import SqueezeExcite`, which failed"
    if stmt is None or at is None or at == (path, line):
        return
    where = f"line {at[1]}" if at[0] == path else f"{os.path.basename(at[0])}:{at[1]}"
    state.finding(PROBE_INCOMPLETE, path, span(stmt), f"`{node.name}` is not probed: building it stopped at {where}: {why}")
