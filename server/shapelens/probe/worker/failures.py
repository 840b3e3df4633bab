"""Exceptions raised by user code (or by the probe's op checks) -> findings, on the innermost line
of the user's code that raised."""

from __future__ import annotations

import ast
import linecache
import types
from collections.abc import Container

from torch import nn

from shapelens.analysis.source import Span, assigned_names
from shapelens.probe import protocol
from shapelens.probe.worker.missing import Missing, MissingName
from shapelens.probe.worker.mode import is_meta_gap
from shapelens.probe.worker.origin import describe, frame_span, tensor_label
from shapelens.probe.worker.producers import producer_alts
from shapelens.probe.worker.state import ShapeMismatch, State
from shapelens.report.codes import INVALID_LAYER_CONFIG, PROBE_INCOMPLETE, SHAPE_ERROR

REJECTED = "forward rejects the inputs the probe made up"


def innermost(state: State, exc: BaseException) -> tuple[str, Span, list] | None:
    tb = exc.__traceback__
    found = None
    frames = []
    while tb is not None:
        frames.append(tb)
        if tb.tb_frame.f_code.co_filename in state.sources:
            found = (tb.tb_frame.f_code.co_filename, frame_span(tb.tb_frame, tb.tb_lasti), len(frames))
        tb = tb.tb_next
    if found is None:
        return None
    return found[0], found[1], frames[found[2]:]


def _message(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return " ".join(lines[:3])


def _missing_used(state: State, exc: MissingName, fpath: str, fspan: Span, what: str | None,
                  at_use: bool = False) -> None:
    """A failed import's stand-in was really used: say so once, on that import's note."""
    note = state.missing_notes.get(exc.stand_in._sl_key)
    subject = what or f"line {fspan[0]}"
    extra = f"{subject} uses `{exc.stand_in._sl_name}` and is not probed"
    said = f"{extra}: it comes from `{exc.stand_in._sl_import}`, which failed to import"
    if note is None:
        state.finding(PROBE_INCOMPLETE, fpath, fspan, said)
        return
    if extra not in note["message"]:
        note["message"] += f"; {extra}"
    if at_use and (note["path"], note["span"][0]) != (fpath, fspan[0]):
        state.finding(PROBE_INCOMPLETE, fpath, fspan, said)  # where it is used, too: the class's layers get no shape


def report_exception(state: State, exc: BaseException, path: str, stmt_span: Span, unknown: set[str],
                     stmt: ast.stmt | None = None, what: str | None = None) -> None:
    if isinstance(exc, NameError) and getattr(exc, "name", None) in unknown:
        return  # the name comes from a statement the probe skipped or that failed: said already
    where = innermost(state, exc)
    fpath, fspan, deeper = where if where else (path, stmt_span, [])
    msg = _message(exc)
    if isinstance(exc, TypeError) and (stand_in := _missing_in(exc)) is not None:
        exc = MissingName(stand_in)  # `nn.Linear(WIDTH, 2)` with WIDTH from a failed import
    if isinstance(exc, MissingName):
        at_use = what is not None  # a class being built: its layers get no shape, say so where
        if what is None and stmt is not None:
            names = [stmt.name] if isinstance(stmt, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) \
                else sorted(assigned_names(stmt))
            what = ", ".join(f"`{n}`" for n in names) if names else None
        _missing_used(state, exc, fpath, fspan, what, at_use)
        return
    if isinstance(exc, ShapeMismatch):
        entry = state.finding(SHAPE_ERROR, fpath, fspan, msg, alts=exc.alts)
        if entry is not None and exc.fixed_size:
            entry["fixed_size"] = True
        return
    if isinstance(exc, ValueError) and _unpacked_split(state, fpath, fspan):
        return
    if isinstance(exc, SystemExit):
        state.finding(PROBE_INCOMPLETE, fpath, fspan, "the code called sys.exit(); the probe stopped here")
        return
    if isinstance(exc, MemoryError) or "can't allocate memory" in msg or "out of memory" in msg.lower():
        state.finding(PROBE_INCOMPLETE, fpath, fspan,
                      "the probe ran out of its memory limit here; probe on the meta device (the default) "
                      "or raise the limit")
        return
    if is_meta_gap(exc) or "meta tensor" in msg or "on meta" in msg or "data-dependent" in msg:
        state.finding(PROBE_INCOMPLETE, fpath, fspan,
                      f"the meta device cannot run this ({msg}); shapes after it are unknown — "
                      "check with `--device cpu` to run it on real tensors")
        return
    if deeper and _in_torch_module_init(deeper[0]):
        state.finding(INVALID_LAYER_CONFIG, fpath, fspan, f"torch rejects this layer's arguments: {msg}")
        return
    if state.made_up_inputs and raised_by_statement(exc):
        # The model's own `raise ValueError("You must specify exactly one of input_ids or
        # inputs_embeds")` against inputs the probe made up: their fault, not the model's.
        state.finding(PROBE_INCOMPLETE, fpath, fspan,
                      f"{REJECTED} ({msg}); shapes after this are unknown: hint "
                      "the real inputs on the def line (`# shapelens: x=float[B,3,224,224]`)")
        return
    if isinstance(exc, (RuntimeError, ValueError, IndexError, AssertionError)):
        state.finding(SHAPE_ERROR, fpath, fspan, msg)
        return
    state.finding(PROBE_INCOMPLETE, fpath, fspan, f"the probe could not run this: {type(exc).__name__}: {msg}")


def raising_line(exc: BaseException, files: Container[str] = ()) -> tuple[str, str, int]:
    """The source line that raised `exc` (`assert self.num_classes == 0`), with its file and line:
    the innermost frame in `files` (the workspace's) when one is, so a library's own `raise`
    (numpy's `np.float` is gone) is told at the user's line that reached it."""
    tb, inner, last = exc.__traceback__, None, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename in files or not files:
            inner = tb
        last, tb = tb, tb.tb_next
    inner = inner or last
    if inner is None:
        return "", "", 0
    filename = inner.tb_frame.f_code.co_filename
    return linecache.getline(filename, inner.tb_lineno).strip(), filename, inner.tb_lineno


def raised_by_statement(exc: BaseException) -> bool:
    """Raised by a `raise`/`assert` of Python code outside torch (the model's, or a library
    helper's such as transformers' input checks), not by an op."""
    tb = exc.__traceback__
    if tb is None:
        return False
    frames = []
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    tb = frames[-1]
    name = tb.tb_frame.f_globals.get("__name__", "") or ""
    if name == "torch" and tb.tb_frame.f_code.co_name.startswith("_check") and len(frames) > 1:
        caller = frames[-2].tb_frame.f_globals.get("__name__", "") or ""
        return not caller.startswith(("torch", "shapelens."))  # `torch._check(cond, msg)` of a library's check
    if name == "torch" or name.startswith(("torch.", "shapelens.")) and name != "shapelens.probe.worker.timmlike":
        return False  # (a timm stand-in's `raise` is timm's own input check, as the model's would be)
    line = linecache.getline(tb.tb_frame.f_code.co_filename, tb.tb_lineno).lstrip()
    return line.startswith(("raise ", "raise(", "assert "))


def _unpacked_split(state: State, path: str, where: Span) -> bool:
    """`q, k, v = self.c_attn(x).split(n_embd, dim=2)` failing to unpack: the split dim does not
    hold as many parts as there are names, and the layer that made it is the one to change."""
    split = state.last_split
    index = state.index(path)
    if split is None or split["path"] != path or split["line"] != where[0] or index is None:
        return False
    stmt = next((n for n in ast.walk(index.tree) if isinstance(n, ast.Assign) and n.lineno == where[0]
                 and len(n.targets) == 1 and isinstance(n.targets[0], ast.Tuple)), None)
    if stmt is None:
        return False
    names = len(stmt.targets[0].elts)
    t, size, dim = split["tensor"], split["size"], split["dim"]
    wanted = size * names
    msg = (f"{tensor_label(t)}.split({size}, dim={dim}) gives {split['parts']} parts but {names} names take "
           f"them: dim {dim} would need {wanted}, not {int(t.shape[dim])}")
    alts = producer_alts(
        [(t, dim, wanted)], SHAPE_ERROR,
        lambda m, p, text, v: f"{msg}; {describe(m)} makes that width with {p}={text}", [],
        [protocol.related(path, where, msg)])
    state.finding(SHAPE_ERROR, path, where, msg, alts=alts)
    return True


def _in_torch_module_init(tb: types.TracebackType) -> bool:
    frame = tb.tb_frame
    mod = frame.f_globals.get("__name__", "")
    return frame.f_code.co_name == "__init__" and mod.startswith("torch.nn") and isinstance(
        frame.f_locals.get("self"), nn.Module
    )


def _missing_in(exc: BaseException) -> Missing | None:
    """The stand-in of a failed import that a frame of `exc` held in a local when torch refused
    it (`empty(): argument 'size' ... but got Missing`): torch reports no exception a stand-in
    raises, so the name the import failed for is found where it was passed."""
    if "Missing" not in str(exc):
        return None
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):  # where it was passed, not a module's whole namespace
        if frame.f_code.co_name == "<module>":
            continue
        for value in frame.f_locals.values():
            for v in value if isinstance(value, (tuple, list)) else (value,):
                if isinstance(v, Missing):
                    return v
    return None
