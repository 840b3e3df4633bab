"""The engine: static plan -> probe worker -> ProbeReport. Pure and torch-free; both front ends
(CLI, language server) drive it."""

from __future__ import annotations

import ast
import json
import os
import threading
import time
import tokenize
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from pathlib import Path

from shapelens import timing
from shapelens.analysis.budget import DEFAULT_SECONDS, PlanBudget
from shapelens.analysis.fingerprint import class_fingerprints
from shapelens.analysis.names import undefined_at_module_level
from shapelens.analysis.plan import ProbePlan, build_plan
from shapelens.analysis.resolve import Resolver
from shapelens.analysis.source import parse, span
from shapelens.analysis.static_plan import build_static_plan
from shapelens.analysis.stmtcache import StatementCache
from shapelens.cache import ClassCache
from shapelens.probe.client import WorkerClient
from shapelens.probe.torchnames import TorchNames
from shapelens.report.build import build_report
from shapelens.report.codes import SYNTAX_ERROR
from shapelens.report.model import Finding, ProbeReport
from shapelens.report.positions import LineIndex

DEVICES = ("meta", "cpu", "cuda", "auto")


@dataclass
class ProbeOptions:
    device: str = "meta"
    timeout: float = 5.0  # seconds per probe
    memory_mb: int = 4096  # address space a probe may add on top of the worker's own
    trusted: bool = True  # False: run no user code at all (static checks only)
    plan_budget: float = DEFAULT_SECONDS  # seconds planning one file may take (analysis.budget)
    # False: skip the re-probes that choose among a mismatch's fixes; the report then says
    # `stats["unverified"]` when there was a choice (the editor publishes, then asks again).
    verify: bool = True

    def to_json(self) -> dict:
        return asdict(self)


def read_source(path: str) -> str:
    """A file's text as Python reads it (PEP 263 coding cookie); bytes that do not decode become
    U+FFFD rather than an exception."""
    try:
        with tokenize.open(path) as f:
            return f.read()
    except (SyntaxError, UnicodeDecodeError, LookupError):
        return Path(path).read_bytes().decode("utf-8", "replace")


def find_root(path: str) -> str:
    """The workspace root: the nearest folder up with pyproject.toml, setup.py or .git."""
    p = Path(path).resolve()
    start = p if p.is_dir() else p.parent
    for cand in (start, *start.parents):
        if any((cand / marker).exists() for marker in ("pyproject.toml", "setup.py", "setup.cfg", ".git")):
            return str(cand)
    return str(start)


def syntax_report(path: str, text: str, exc: SyntaxError) -> ProbeReport:
    line = max(exc.lineno or 1, 1)
    idx = LineIndex(text)
    col = idx.utf16_col(line, len((idx.lines[line - 1] if line <= len(idx.lines) else "")[: max((exc.offset or 1) - 1, 0)].encode()))
    rng = {"start": {"line": line - 1, "character": col}, "end": {"line": line - 1, "character": col + 1}}
    return ProbeReport(path, [Finding.of(SYNTAX_ERROR, path, rng, f"syntax error: {exc.msg} (the file was not probed)")])


def stopped_note(plan: ProbePlan, text: str) -> Finding:
    """Where planning ran out of time: the statements from there on did not run."""
    stop = plan.stopped or {}
    where, line = stop.get("path", plan.target), int(stop.get("line", 1))
    said = f"planning took more than its {stop.get('seconds', 0):g} s budget"
    what = "the statements from here on were not run"
    if not plan.trusted:
        return Finding.note(plan.target, LineIndex(text).to_range((1, 0, 1, 0)),
                            f"{said}; some calls into torch were not checked (raise `planBudget`, or split the file)")
    if where != plan.target:
        what = f"in {os.path.relpath(where, plan.root)}, the statements from line {line} on were not run"
        line = 1
    rng = LineIndex(text).to_range((line, 0, line, 0))
    return Finding.note(plan.target, rng, f"{said}; {what} and their shapes are unknown (raise `planBudget`, "
                                          "or split the file)")


class Engine:
    def __init__(self, root: str, python: str | None = None, options: ProbeOptions | None = None,
                 worker: WorkerClient | None = None, torch_names: TorchNames | None = None) -> None:
        self.root = os.path.realpath(root)
        self.python = python
        self.options = options or ProbeOptions()
        self.worker = worker or WorkerClient(python)
        # torch's names come from the worker (or its disk cache), never from importing torch here.
        self.torch_names = torch_names or TorchNames(self.worker)
        self.resolver = Resolver(self.root, python, self.torch_names)
        self._plan_lock = threading.Lock()  # Jedi and the resolver's buffers serve one plan at a time
        self.cache = ClassCache()
        self.statements: dict[str, StatementCache] = {}  # planning outcomes by file, across edits
        self._cache_lock = threading.Lock()

    def plan(self, path: str, text: str, trusted: bool = True, budget: PlanBudget | None = None) -> ProbePlan | ProbeReport:
        return self._plan(path, text, trusted, budget)[0]

    def _plan(self, path: str, text: str, trusted: bool,
              budget: PlanBudget | None = None) -> tuple[ProbePlan | ProbeReport, ast.Module | None]:
        """The plan (or a report saying why there is none), and the tree it was made from."""
        try:
            tree = parse(text, path)
        except SyntaxError as exc:
            return syntax_report(os.path.realpath(path), text, exc), None
        except ValueError as exc:  # null bytes: Python refuses the file as it does a syntax error
            return syntax_report(os.path.realpath(path), text, SyntaxError(str(exc))), None
        except (RecursionError, MemoryError) as exc:
            why = "too deeply nested for Python's parser" if isinstance(exc, RecursionError) else "out of memory"
            return ProbeReport.note_only(os.path.realpath(path), f"not probed: {why}"), None
        with self._plan_lock:
            if not trusted:
                return build_static_plan(self.resolver, path, text, tree, budget), tree
            return build_plan(self.resolver, path, text, tree, caches=self.statements, budget=budget), tree

    def submit(self, path: str, text: str, options: ProbeOptions | None = None,
               preempt: Callable[[], bool] | None = None, budget: PlanBudget | None = None) -> tuple[int | None, Future]:
        """Start a probe; the future resolves to a ProbeReport. Planning gets the options' time
        budget (or `budget`); `preempt` may interrupt it (`analysis.budget.Preempted` is raised)."""
        started = time.perf_counter()
        options = options or self.options
        budget = budget or PlanBudget(options.plan_budget, preempt)
        timing.mark(f"plan: start {os.path.basename(path)}")
        plan, tree = self._plan(path, text, options.trusted, budget)
        timing.mark(f"plan: end {os.path.basename(path)} ({self.resolver.jedi_calls} Jedi calls so far)")
        planned = time.perf_counter()
        statements = self.statements.get(os.path.realpath(path))
        # What this plan did not redo (tests and the language server's probeStats read it).
        reuse = {"replanned": list(statements.replanned), "reused_statements": statements.reused} \
            if statements is not None and options.trusted and isinstance(plan, ProbePlan) else {}
        out: Future = Future()
        if isinstance(plan, ProbeReport):
            out.set_result(plan)
            return None, out
        sources = {f.path: f.source for f in plan.files}
        request = plan.to_json()
        fingerprints, ends, skip = self._cacheable(plan, text, tree, options)
        request["skip_classes"] = sorted(skip)
        req_id, fut = self.worker.submit(request, options.to_json())

        def done(f: Future) -> None:
            answered = time.perf_counter()
            try:
                response = f.result()
                if response.get("ok") and "probed" in response["result"]:
                    # An unverified result is not what a verified probe would say: never stored.
                    store = not response["result"].get("stats", {}).get("unverified")
                    with self._cache_lock:
                        self.cache.merge(plan.target, fingerprints, ends, skip, response["result"], store)
                report = build_report(plan.target, sources, response)
                if plan.stopped is not None:
                    report.findings.append(stopped_note(plan, text))
                    report.findings.sort(key=Finding.sort_key)
                if plan.trusted and tree is not None:
                    self._half_typed(plan.target, text, tree, report)
            except Exception as exc:  # noqa: BLE001 — a caller waiting on `out` must always get an answer
                report = ProbeReport.note_only(plan.target, f"internal error reading the probe result: {exc}")
            timing.mark(f"report: built {os.path.basename(path)}")
            now = time.perf_counter()
            report.elapsed_ms = (now - started) * 1000
            # Where the time went: planning, the worker's round trip (its own split inside), the report.
            report.stats.setdefault("timing_ms", {}).update(
                plan=(planned - started) * 1000, worker=(answered - planned) * 1000, report=(now - answered) * 1000)
            report.stats.update(reuse, reused_classes=sorted(skip))
            out.set_result(report)

        fut.add_done_callback(done)
        return req_id, out

    @staticmethod
    def _half_typed(path: str, text: str, tree: ast.Module, report: ProbeReport) -> None:
        """One note per module-level statement that reads a name defined nowhere (a half-typed
        name): the plan skips such a statement, and without the note nothing would say why."""
        idx = LineIndex(text)
        said = {f.range["start"]["line"] for f in report.findings if f.path == path}
        for name in undefined_at_module_level(tree):
            rng = idx.to_range(span(name))
            if rng["start"]["line"] not in said:
                report.findings.append(Finding.note(path, rng, f"the probe could not run this: NameError: name "
                                                               f"'{name.id}' is not defined"))
        report.findings.sort(key=Finding.sort_key)

    def _cacheable(self, plan: ProbePlan, text: str, tree: ast.Module | None, options: ProbeOptions):
        """Fingerprints of the target's classes, and those whose cached results still hold."""
        if not plan.trusted or tree is None:
            return {}, {}, {}
        # Everything outside the file that a probe depends on: the options and imported files.
        # (`verify` is not: a probe that skips verification reuses what verified probes stored.)
        settings = {k: v for k, v in options.to_json().items() if k != "verify"}
        extra = json.dumps(settings, sort_keys=True) + "".join(f.source for f in plan.files[1:])
        fingerprints = class_fingerprints(text, tree, extra)
        ends = {c.name: c.end_lineno or c.lineno for c in tree.body if isinstance(c, ast.ClassDef)}
        with self._cache_lock:
            return fingerprints, ends, self.cache.skip(plan.target, fingerprints)

    def cancel(self, req_id: int | None) -> None:
        """Stop a probe started by `submit` (its future then resolves to a probe-incomplete
        report saying it was cancelled)."""
        if req_id is not None:
            self.worker.cancel(req_id)

    def check(self, path: str, text: str | None = None, options: ProbeOptions | None = None) -> ProbeReport:
        if text is None:
            text = read_source(path)
        return self.submit(path, text, options)[1].result()

    def close(self) -> None:
        self.worker.close()
