"""`shapelens serve`: the language server. One server object; every LSP feature is registered
here by decorator and delegates to small pure modules (convert, locate, render, settings).

The event loop never waits for a probe: probes run in the background (probes.Scheduler), and
requests are answered from the last published result of each document.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from lsprotocol import types
from pygls.capabilities import get_capability
from pygls.lsp.server import LanguageServer

from shapelens import __version__
from shapelens.lsp import carry, convert, locate, render
from shapelens.lsp.engines import Engines
from shapelens.lsp.probes import Job, Scheduler
from shapelens.lsp.progress import reported
from shapelens.lsp.protocol import Protocol
from shapelens.lsp.settings import SECTION, Settings, merge, section_of
from shapelens.lsp.units import Units, needs_text
from shapelens.probe.client import WorkerUnavailable
from shapelens.report.model import ClassSummary, ProbeReport, ShapeEntry

log = logging.getLogger(__name__)
STATUS = "shapelens/status"  # custom notification: {state, message, worker} for status bars
MODEL_SUMMARY = "shapelens.modelSummary"


@dataclass
class Analysis:
    """A document's last published probe and the text it was computed on."""

    version: int | None
    text: str
    report: ProbeReport
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
        super().__init__("shapelens", __version__, protocol_cls=Protocol)
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
        self._errors_shown: set[str] = set()

    # -- engines -------------------------------------------------------------------------------
    @property
    def python(self) -> str | None:
        return self.settings.interpreter or self.default_python

    def start_engines(self) -> None:
        """A fresh worker for the configured interpreter, started now, before any document."""
        old, self.engines = self.engines, Engines(self.python, self.roots)
        if old is not None:
            _daemon(old.close)
        loop, engines = asyncio.get_running_loop(), self.engines

        def start() -> None:
            try:
                engines.worker.start()
            except (WorkerUnavailable, OSError) as exc:
                _call_soon(loop, self.error, f"shapelens: the probe worker could not start: {exc}")
            else:
                _call_soon(loop, self._worker_ready, engines)

        _daemon(start)
        loop.run_in_executor(engines.planner, engines.warm_up).add_done_callback(_log_failure)

    def _worker_ready(self, engines: Engines) -> None:
        if engines is self.engines:
            self.status("ready", f"probe worker ready (torch {engines.worker.info.get('torch', '?')})")

    # -- probing -------------------------------------------------------------------------------
    def open_document(self, uri: str):
        return self.workspace.text_documents.get(unquote(uri))

    def schedule(self, uri: str) -> None:
        doc, path = self.open_document(uri), convert.uri_to_path(uri)
        if doc is None or path is None or self.engines is None or not self.settings.enable:
            return
        if doc.language_id not in (None, "", "python") and not path.endswith((".py", ".pyi")):
            return
        job = Job(uri, path, doc.version, doc.source, self.settings.probe_options(), self.engines)
        self.scheduler.schedule(job, self.settings.debounce / 1000)

    def schedule_all(self) -> None:
        for uri in self.opened:
            self.schedule(uri)

    async def _with_progress(self, job: Job, work):
        self.status("probing", f"probing {Path(job.path).name}")
        return await reported(self, work, f"probing {Path(job.path).name}")

    def _probed(self, job: Job, report: ProbeReport) -> None:
        doc = self.open_document(job.uri)
        if doc is None or doc.version != job.version or job.engines is not self.engines or not self.settings.enable:
            return  # computed for a version, interpreter or setting that is gone: never shown
        previous = self.analyses.get(job.uri)
        if previous is not None:
            report = carry.carry_over(previous.text, previous.report, job.text, report)
        self.analyses[job.uri] = Analysis(job.version, job.text, report)
        self.publish(job.uri, job.version, job.text, report)
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
    def publish(self, uri: str, version: int | None, text: str, report: ProbeReport) -> None:
        own = report.path
        encoding = self.workspace.position_encoding
        units: dict[str, Units] = {}

        def uri_of(path: str) -> str:
            return uri if path == own else convert.path_to_uri(path)

        def units_of(path: str) -> Units:
            if path not in units:
                units[path] = Units(encoding, text if path == own else _read(path) if needs_text(encoding) else "")
            return units[path]

        fresh: dict[str, list[types.Diagnostic]] = {uri: []}
        for finding in report.findings:
            diag = convert.diagnostic(finding, uri_of, units_of, version if finding.path == own else None)
            fresh.setdefault(uri_of(finding.path), []).append(diag)
        stale = self.published.get(uri, {})
        self.published[uri] = fresh
        for target in {*stale, *fresh}:
            self.send_diagnostics(target)

    def diagnostics_for(self, target: str) -> list[types.Diagnostic]:
        return convert.dedupe([d for by_target in self.published.values() for d in by_target.get(target, [])])

    def send_diagnostics(self, target: str) -> None:
        analysis = self.analyses.get(target)
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=target, diagnostics=self.diagnostics_for(target), version=analysis.version if analysis else None))

    def forget(self, uri: str) -> None:
        self.scheduler.cancel(uri)
        self.analyses.pop(uri, None)
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
        if not new.enable:
            self.scheduler.cancel_all()
            for uri in list(self.published):
                self.forget(uri)
            self.status("disabled", "shapelens is disabled")
            return
        if self.engines is None or new.interpreter != old.interpreter:
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
        worker = self.engines.worker if self.engines else None
        self.protocol.notify(STATUS, {
            "state": state, "message": text,
            "worker": {"pid": worker.pid, "starts": worker.starts, "python": worker.python} if worker else None})

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


def _daemon(fn) -> None:
    """Blocking work nothing should wait for at exit (worker start and close)."""
    threading.Thread(target=fn, name=f"shapelens-{fn.__name__}", daemon=True).start()


def _call_soon(loop: asyncio.AbstractEventLoop, fn, *args) -> None:
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # the loop closed: the session is over
        pass


def _log_failure(fut: asyncio.Future) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.warning("Jedi warm-up failed: %s", fut.exception())


SERVER = ShapelensServer()


# -- lifecycle ------------------------------------------------------------------------------------
@SERVER.feature(types.INITIALIZE)
def initialize(ls: ShapelensServer, params: types.InitializeParams) -> None:
    folders = [f.uri for f in params.workspace_folders or []] + ([params.root_uri] if params.root_uri else [])
    ls.roots = [p for p in map(convert.uri_to_path, folders) if p]
    raw = section_of(params.initialization_options)
    if raw is not None:
        ls.settings, ls._deferred_messages = merge(Settings(), raw)
    if ls.settings.enable:
        ls.start_engines()


@SERVER.feature(types.INITIALIZED)
def initialized(ls: ShapelensServer, params: types.InitializedParams) -> None:
    for text in ls._deferred_messages:  # bad initializationOptions, held until the client listens
        ls.message(text, types.MessageType.Warning)
    ls._deferred_messages = []
    if not ls.settings.trusted:
        ls.status("untrusted", "shapes are unavailable: the workspace is untrusted")


@SERVER.feature(types.SHUTDOWN)
def shutdown(ls: ShapelensServer, params: None) -> None:
    ls.scheduler.cancel_all()
    engines, ls.engines = ls.engines, None
    if engines is not None:
        # Not waited for: the worker exits on its own once told (or once our pipes close), and its
        # torch teardown takes a second.
        _daemon(engines.close)


@SERVER.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
def did_change_configuration(ls: ShapelensServer, params: types.DidChangeConfigurationParams) -> None:
    # Applied synchronously when pushed, so requests after this notification see the new settings.
    raw = section_of(params.settings)
    if raw is not None:
        ls.apply_settings(raw)
    elif get_capability(ls.client_capabilities, "workspace.configuration", False):
        asyncio.get_running_loop().create_task(pull_settings(ls))  # the notification only said "changed"


async def pull_settings(ls: ShapelensServer) -> None:
    try:
        pulled = await ls.workspace_configuration_async(
            types.ConfigurationParams(items=[types.ConfigurationItem(section=SECTION)]))
    except Exception as exc:  # noqa: BLE001 — a client that cannot answer keeps the current settings
        log.warning("workspace/configuration failed: %s", exc)
        return
    if pulled and isinstance(pulled[0], dict):
        ls.apply_settings(pulled[0])


# -- documents ------------------------------------------------------------------------------------
@SERVER.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: ShapelensServer, params: types.DidOpenTextDocumentParams) -> None:
    ls.opened.add(params.text_document.uri)
    ls.schedule(params.text_document.uri)


@SERVER.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: ShapelensServer, params: types.DidChangeTextDocumentParams) -> None:
    ls.schedule(params.text_document.uri)


@SERVER.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))
def did_save(ls: ShapelensServer, params: types.DidSaveTextDocumentParams) -> None:
    ls.schedule(params.text_document.uri)  # files it imports may have changed on disk


@SERVER.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: ShapelensServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.opened.discard(params.text_document.uri)
    ls.forget(params.text_document.uri)


# -- features -------------------------------------------------------------------------------------
@SERVER.feature(types.TEXT_DOCUMENT_HOVER)
def hover(ls: ShapelensServer, params: types.HoverParams) -> types.Hover | None:
    uri = params.text_document.uri
    doc = ls.open_document(uri)
    if doc is None or not ls.settings.enable:
        return None
    if not ls.settings.trusted:
        return types.Hover(contents=ls.markdown(render.UNTRUSTED)) if doc.word_at_position(params.position) else None
    analysis = ls.analyses.get(uri)
    if analysis is None:
        return None
    now = ls.units(doc.source)
    pos = now.position_in(params.position)
    lines = analysis.lines(doc.source)
    line = lines.to_old(pos["line"])
    if line is None:
        return None  # the line changed since the last probe; its shapes would be stale
    here = (line, pos["character"])
    chained = locate.finding_at(analysis.report.findings_for(analysis.report.path), here)
    found = locate.entry_at(analysis.source, here, analysis.entries, analysis.classes)
    if found is None and chained is None:
        return None
    parts = [render.chain_table(chained)] if chained is not None else []
    hovered = chained.range if chained is not None else None
    if found is not None:
        target, hovered = found
        if isinstance(target, ClassSummary):
            parts.append(render.class_summary(target, analysis.report.stats.get("device")))
        elif target.kind == "layer":
            parts.append(render.layer_hover(target))
        else:
            parts.append(render.tensor_hover(target))
    text = "\n\n---\n\n".join(parts)
    rng = lines.range_to_new(hovered)
    return types.Hover(contents=ls.markdown(text), range=now.range_out(rng) if rng else None)


@SERVER.feature(types.TEXT_DOCUMENT_INLAY_HINT, types.InlayHintOptions(resolve_provider=False))
def inlay_hints(ls: ShapelensServer, params: types.InlayHintParams) -> list[types.InlayHint]:
    uri = params.text_document.uri
    doc, analysis = ls.open_document(uri), ls.analyses.get(uri)
    if doc is None or analysis is None or not (ls.settings.enable and ls.settings.inlay_hints and ls.settings.trusted):
        return []
    now, lines = ls.units(doc.source), analysis.lines(doc.source)
    first, last = params.range.start.line, params.range.end.line
    hints = []
    for entry in locate.forward_tensors(analysis.source, analysis.entries):
        line = lines.to_new(entry.range["end"]["line"])
        if line is None or not first <= line <= last:
            continue
        hints.append(types.InlayHint(
            position=now.position_out({"line": line, "character": entry.range["end"]["character"]}),
            label=f": {render.shape_text(entry.shape, entry.symbolic)}", kind=types.InlayHintKind.Type,
            tooltip=f"{entry.name}: {entry.dtype} tensor of shape {render.shape_text(entry.shape)} (shapelens)"))
    return hints


@SERVER.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(
    code_action_kinds=[types.CodeActionKind.QuickFix, convert.FIX_ALL_KIND], resolve_provider=False))
def code_actions(ls: ShapelensServer, params: types.CodeActionParams) -> list[types.CodeAction] | None:
    uri = params.text_document.uri
    only = [getattr(k, "value", k) for k in params.context.only] if params.context.only else None
    actions: list[types.CodeAction] = []
    if convert.kind_wanted(types.CodeActionKind.QuickFix.value, only):
        actions += convert.quickfixes(uri, list(params.context.diagnostics), ls.document_changes())
    if convert.kind_wanted(convert.FIX_ALL_KIND, only):
        fix_all = convert.fix_all(uri, ls.diagnostics_for(uri), ls.document_changes())
        if fix_all is not None:
            actions.append(fix_all)
    return actions or None


@SERVER.command(MODEL_SUMMARY)
def model_summary(ls: ShapelensServer, uri: str, position: types.Position) -> str | None:
    """Arguments: the document URI and a position inside an nn.Module class. Returns markdown."""
    doc, analysis = ls.open_document(uri), ls.analyses.get(uri)
    if doc is None or analysis is None:
        return None
    pos = ls.units(doc.source).position_in(position)
    line = analysis.lines(doc.source).to_old(pos["line"])
    summary = locate.class_at(analysis.source, (line, pos["character"]), analysis.classes) if line is not None else None
    return render.class_summary(summary, analysis.report.stats.get("device")) if summary else None


# -- entry point ----------------------------------------------------------------------------------
def run_server(args) -> int:
    """Serve until the client says exit, then end the process (never returns normally)."""
    python = args.python
    if python:
        found = shutil.which(python)
        if found is None:
            print(f"shapelens: error: --python {python}: no such interpreter", file=sys.stderr)
            return 2
        python = found
    SERVER.default_python = python
    # stderr is the editor's log of the server: warnings and worse.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="shapelens %(levelname)s %(name)s: %(message)s")
    host, port = None, None
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        if not host or not port.isdigit():
            print(f"shapelens: error: --tcp expects HOST:PORT, got {args.tcp!r}", file=sys.stderr)
            return 2
    code = 0
    try:
        if host:
            SERVER.start_tcp(host, int(port))
        else:
            # The protocol owns the real stdout; a stray print from any library goes to stderr.
            protocol_out = os.fdopen(os.dup(1), "wb")
            os.dup2(2, 1)
            sys.stdout = sys.stderr
            SERVER.start_io(sys.stdin.buffer, protocol_out)
    except SystemExit as exc:  # pygls ends a TCP session this way
        code = exc.code if isinstance(exc.code, int) else 0
    except OSError as exc:
        print(f"shapelens: error: {exc}", file=sys.stderr)
        code = 2
    # Skipping interpreter teardown saves the second it takes to free Jedi's inference caches and
    # to join the planner thread; the worker already stopped, or stops when our pipes close.
    sys.stderr.flush()
    os._exit(code)
