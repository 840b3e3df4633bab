"""The language server object: what it holds per session (settings, the worker, each document's
last published probe and diagnostics) and how it schedules probes and publishes their results.
The LSP features that use it are registered in server.py.

The event loop never waits for a probe: probes run in the background (probes.Scheduler), and
requests are answered from the last published result of each document.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from lsprotocol import types
from pygls.capabilities import get_capability
from pygls.lsp.server import LanguageServer

from shapelens import __version__
from shapelens.engine import ProbeOptions
from shapelens.lsp import carry, convert, locate, notebooks
from shapelens.lsp.engines import Engines
from shapelens.lsp.filtering import ReportFilter
from shapelens.lsp.probes import Job, Scheduler
from shapelens.lsp.progress import reported
from shapelens.lsp.protocol import Protocol
from shapelens.lsp.settings import Settings, interpreter_of, merge
from shapelens.lsp.units import Units, needs_text
from shapelens.notebook.program import localize
from shapelens.probe.client import WorkerUnavailable
from shapelens.report.model import ClassSummary, ProbeReport, ShapeEntry

log = logging.getLogger("shapelens.lsp.server")
STATUS = "shapelens/status"  # custom notification: {state, message, worker} for status bars
MODEL_SUMMARY = "shapelens.modelSummary"
COLD_START = "importing torch (first start)"  # the `starting` status until the worker is ready


@dataclass
class Analysis:
    """A document's last published probe and the text it was computed on."""

    version: int | None
    text: str
    report: ProbeReport
    notebook: notebooks.Snapshot | None = None  # a notebook's analysis: `text` is its program
    source: locate.Source = field(init=False)

    def __post_init__(self) -> None:
        self.source = locate.Source(self.text)
        self._map: tuple[str, locate.LineMap] | None = None

    @property
    def entries(self) -> list[ShapeEntry]:
        return [s for s in self.report.shapes if s.path == self.report.path]

    @property
    def classes(self) -> list[ClassSummary]:
        return [c for c in self.report.classes if c.path == self.report.path]

    def lines(self, now: str) -> locate.LineMap:
        if self._map is None or self._map[0] != now:
            self._map = (now, locate.LineMap(self.text, now))
        return self._map[1]


class ShapelensServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("shapelens", __version__, protocol_cls=Protocol, notebook_document_sync=notebooks.SYNC)
        self.default_python: str | None = None  # `serve --python`
        self.settings = Settings()
        self.roots: list[str] = []
        self.engines: Engines | None = None
        self.scheduler = Scheduler(self._probed, self._probe_failed, self._with_progress)
        self.opened: set[str] = set()  # URIs as the client spells them (the workspace unquotes them)
        self.analyses: dict[str, Analysis] = {}
        # source document -> target document -> diagnostics; a probe reports into imported files too
        self.published: dict[str, dict[str, list[types.Diagnostic]]] = {}
        self._deferred_messages: list[str] = []
        self.initialized = False  # the client said `initialized`: notifications may flow
        self._errors_shown: set[str] = set()
        # Each document's last published probe: its report's stats (where the time went, what
        # was reused), for `shapelens/probeStats` (server.py).
        self.last_probe: dict[str, dict] = {}
        self.report_filter = ReportFilter(lambda text: self.message(text, types.MessageType.Warning))

    # -- engines -------------------------------------------------------------------------------
    @property
    def python(self) -> str | None:
        return interpreter_of(self.settings, self.roots)[0] or self.default_python

    def start_engines(self) -> None:
        """A fresh worker for the configured interpreter, started now, before any document."""
        old, self.engines = self.engines, Engines(self.python, self.roots)
        if old is not None:
            daemon(old.close)
        if self.initialized:
            self.status("starting", COLD_START)
        loop, engines = asyncio.get_running_loop(), self.engines

        def start() -> None:
            try:
                engines.worker.start()
            except (WorkerUnavailable, OSError) as exc:
                _call_soon(loop, self.error, f"shapelens: the probe worker could not start: {exc}")
            else:
                _call_soon(loop, self._worker_ready, engines)

        daemon(start)
        loop.run_in_executor(engines.planner, engines.warm_up).add_done_callback(log_failure)

    def _worker_ready(self, engines: Engines) -> None:
        engines.ready = True
        if engines is self.engines:
            self.status("ready", f"probe worker ready (torch {engines.worker.info.get('torch', '?')})")

    # -- probing -------------------------------------------------------------------------------
    def open_document(self, uri: str):
        return self.workspace.text_documents.get(unquote(uri))

    def open_notebook(self, uri: str) -> types.NotebookDocument | None:
        return self.workspace.get_notebook_document(notebook_uri=uri)

    def schedule(self, uri: str, at_once: bool = False) -> None:
        """Probe the document (or notebook) after the (adaptive) debounce; `at_once` for a file
        just opened, where no typing is under way to wait for."""
        # a cell's own textDocument notification (clients that send them) probes its notebook
        notebook = self.open_notebook(uri) or self.workspace.get_notebook_document(cell_uri=uri)
        if notebook is not None:
            self._schedule_notebook(notebook.uri, notebook, at_once)
            return
        doc, path = self.open_document(uri), convert.uri_to_path(uri)
        if doc is None or path is None or self.engines is None or not self.settings.enable:
            return
        if doc.language_id not in (None, "", "python") and not path.endswith((".py", ".pyi")):
            return
        job = Job(uri, path, doc.version, doc.source, self.first_options(at_once), self.engines)
        delay = 0.0 if at_once else self.scheduler.delay(uri, self.settings.debounce / 1000)
        self.scheduler.schedule(job, delay)

    def _schedule_notebook(self, uri: str, notebook: types.NotebookDocument, at_once: bool) -> None:
        path = convert.uri_to_path(uri)
        if path is None or self.engines is None or not self.settings.enable:
            return
        snap = notebooks.snapshot(notebook, self.workspace.text_documents)
        job = Job(uri, path, snap.version, snap.program.text, self.first_options(at_once), self.engines, snap)
        delay = 0.0 if at_once else self.scheduler.delay(uri, self.settings.debounce / 1000)
        self.scheduler.schedule(job, delay)

    def first_options(self, opened: bool = False) -> ProbeOptions:
        """An edit's first probe skips the re-probes that choose where a mismatch's fix goes:
        its diagnostics are published first, then the same version is probed again with them
        (`_probed`) and published once more, unless a newer edit came meanwhile. A document
        just `opened` is probed whole at once: nobody is typing, and its first diagnostics
        should not move."""
        return dataclasses.replace(self.settings.probe_options(), verify=opened)

    def view(self, uri: str, analysed: bool = True) -> notebooks.View | None:
        """What the features answer from for a document: a file's own analysis, or a cell's
        place in its notebook's (`analysed=False`: the text alone, even before any probe)."""
        doc = self.open_document(uri)
        if doc is None:
            return None
        notebook = self.workspace.get_notebook_document(cell_uri=uri)
        if notebook is None:
            analysis = self.analyses.get(uri)
            return notebooks.View(analysis, doc.source, self.units(doc.source)) if analysis or not analysed else None
        analysis = self.analyses.get(notebook.uri)
        snap = notebooks.snapshot(notebook, self.workspace.text_documents)
        index = snap.cell_index(uri)
        first = snap.program.starts[index] if index is not None else None
        if first is None or index is None or (analysed and (analysis is None or analysis.notebook is None)):
            return None
        return notebooks.View(analysis, snap.program.text, self.units(doc.source), first, snap.program.counts[index])

    def schedule_all(self) -> None:
        for uri in self.opened:
            self.schedule(uri)

    async def _with_progress(self, job: Job, work):
        self.status("probing", f"probing {Path(job.path).name}")
        return await reported(self, work, f"probing {Path(job.path).name}")

    def _probed(self, job: Job, report: ProbeReport) -> None:
        doc = self.open_notebook(job.uri) if job.notebook else self.open_document(job.uri)
        if doc is None or doc.version != job.version or job.engines is not self.engines or not self.settings.enable:
            return  # computed for a version, interpreter or setting that is gone: never shown
        previous = self.analyses.get(job.uri)
        if previous is not None:  # a half-typed file keeps the shapes of its unchanged lines
            report = carry.carry_over(previous.text, previous.report, job.text, report)
        report = self.report_filter.apply(report, job.text)
        self.analyses[job.uri] = Analysis(job.version, job.text, report, job.notebook)
        self.publish(job.uri, job.version, job.text, report, job.notebook, only_changed=job.refine)
        self.last_probe[job.uri] = {**report.stats, "version": job.version, "refine": job.refine,
                                    "elapsed_ms": report.elapsed_ms}
        if report.stats.get("unverified") and not job.refine:
            self.scheduler.schedule(dataclasses.replace(job, options=self.settings.probe_options(), refine=True), 0.0)
        if get_capability(self.client_capabilities, "workspace.inlay_hint.refresh_support", False):
            self.workspace_inlay_hint_refresh(None)
        errors = report.error_count
        self.status("done", f"{Path(job.path).name}: {errors} shape error{'s' * (errors != 1)} "
                            f"({report.elapsed_ms:.0f} ms)")

    def _probe_failed(self, job: Job, exc: Exception) -> None:
        if isinstance(exc, WorkerUnavailable):
            self.error(f"shapelens: the probe worker is unavailable: {exc}")
        else:
            log.exception("probe of %s failed", job.uri, exc_info=exc)
            self.error(f"shapelens: probing {Path(job.path).name} failed ({type(exc).__name__}: {exc})")

    # -- publishing ----------------------------------------------------------------------------
    def publish(self, uri: str, version: int | None, text: str, report: ProbeReport,
                notebook: notebooks.Snapshot | None = None, only_changed: bool = False) -> None:
        """A notebook's findings go to its cells (the items of a finding are moved into cells with
        it: a finding's path becomes its cell's URI), each cell published, empty or not.
        `only_changed`: the same version again (a refining probe): only documents whose
        diagnostics changed are sent."""
        own = report.path
        encoding = self.workspace.position_encoding
        units: dict[str, Units] = {}
        cells = set(notebook.cell_uris) if notebook else set()

        def uri_of(path: str) -> str:
            return uri if path == own else path if path in cells else convert.path_to_uri(path)

        def units_of(path: str) -> Units:
            if path not in units:
                text_there = (text if path == own else notebook.cell_text(path) if notebook and path in cells
                              else _read(path) if needs_text(encoding) else "")
                units[path] = Units(encoding, text_there)
            return units[path]

        def version_of(path: str) -> int | None:
            return version if path == own else notebook.cell_version(path) if notebook else None

        findings = report.findings
        if notebook is not None:
            findings = [localize(f, notebook.program, notebook.cell_uris.__getitem__) if f.path == own else f
                        for f in findings]
        fresh: dict[str, list[types.Diagnostic]] = {u: [] for u in (cells or {uri})}
        for finding in findings:
            diag = convert.diagnostic(finding, uri_of, units_of, version_of(finding.path))
            fresh.setdefault(uri_of(finding.path), []).append(diag)
        stale = self.published.get(uri, {})
        self.published[uri] = fresh
        for target in {*stale, *fresh}:
            if not only_changed or stale.get(target) != fresh.get(target):
                self.send_diagnostics(target)

    def diagnostics_for(self, target: str) -> list[types.Diagnostic]:
        return convert.dedupe([d for by_target in self.published.values() for d in by_target.get(target, [])])

    def send_diagnostics(self, target: str) -> None:
        analysis = self.analyses.get(target)
        version = analysis.version if analysis else self._cell_version(target)
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=target, diagnostics=self.diagnostics_for(target), version=version))

    def _cell_version(self, uri: str) -> int | None:
        """A cell's version as it is open now (a notebook is published right after its probe,
        whose notebook version, and so every cell's, is checked still current)."""
        if self.workspace.get_notebook_document(cell_uri=uri) is None:
            return None
        doc = self.open_document(uri)
        return doc.version if doc is not None else None

    def forget(self, uri: str) -> None:
        self.scheduler.cancel(uri)
        self.scheduler.forget_cost(uri)
        self.analyses.pop(uri, None)
        self.last_probe.pop(uri, None)
        stale = self.published.pop(uri, {})
        for target in {*stale, uri}:
            self.send_diagnostics(target)

    # -- settings ------------------------------------------------------------------------------
    def apply_settings(self, raw: dict) -> None:
        new, problems = merge(self.settings, raw)
        for problem in problems:
            self.message(problem, types.MessageType.Warning)
        old, self.settings = self.settings, new
        if new == old:
            return
        ignored = interpreter_of(new, self.roots)[1]
        if ignored and ignored != interpreter_of(old, self.roots)[1]:
            self.message(ignored, types.MessageType.Warning)
        if not new.enable:
            self.scheduler.cancel_all()
            for uri in list(self.published):
                self.forget(uri)
            self.status("disabled", "shapelens is disabled")
            return
        if self.engines is None or interpreter_of(new, self.roots)[0] != interpreter_of(old, self.roots)[0]:
            self.scheduler.cancel_all()
            self.start_engines()
        probe = ("enable", "device", "probe_timeout", "trusted", "interpreter")
        if any(getattr(new, k) != getattr(old, k) for k in probe):
            self.schedule_all()
        if new.inlay_hints != old.inlay_hints and get_capability(
                self.client_capabilities, "workspace.inlay_hint.refresh_support", False):
            self.workspace_inlay_hint_refresh(None)
        if not new.trusted:
            self.status("untrusted", "shapes are unavailable: the workspace is untrusted")

    # -- talking to the client -----------------------------------------------------------------
    def message(self, text: str, kind: types.MessageType = types.MessageType.Info) -> None:
        self.window_log_message(types.LogMessageParams(type=kind, message=text))
        self.window_show_message(types.ShowMessageParams(type=kind, message=text))

    def error(self, text: str) -> None:
        """Shown once; the log gets every repeat."""
        if text in self._errors_shown:
            self.window_log_message(types.LogMessageParams(type=types.MessageType.Error, message=text))
            return
        self._errors_shown.add(text)
        self.message(text, types.MessageType.Error)
        self.status("error", text)

    def status(self, state: str, text: str) -> None:
        engines = self.engines
        worker = engines.worker if engines else None
        self.protocol.notify(STATUS, {
            "state": state, "message": text,
            "worker": {"pid": worker.pid, "starts": worker.starts, "python": worker.python,
                       "ready": engines.ready} if engines and worker else None})

    def markdown(self, text: str) -> types.MarkupContent:
        formats = get_capability(self.client_capabilities, "text_document.hover.content_format", None)
        kind = types.MarkupKind.Markdown if not formats or types.MarkupKind.Markdown in formats \
            else types.MarkupKind.PlainText
        return types.MarkupContent(kind=kind, value=text)

    def units(self, text: str) -> Units:
        return Units(self.workspace.position_encoding, text)

    def document_changes(self) -> bool:
        return bool(get_capability(self.client_capabilities, "workspace.workspace_edit.document_changes", False))


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def daemon(fn) -> None:
    """Blocking work nothing should wait for at exit (worker start and close)."""
    threading.Thread(target=fn, name=f"shapelens-{fn.__name__}", daemon=True).start()


def _call_soon(loop: asyncio.AbstractEventLoop, fn, *args) -> None:
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # the loop closed: the session is over
        pass


def log_failure(fut: asyncio.Future) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.warning("Jedi warm-up failed: %s", fut.exception())
