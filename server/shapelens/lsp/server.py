"""`shapelens serve`: the language server. Every LSP feature is registered here by decorator on
the one server object (language_server.py) and delegates to small pure modules (convert,
locate, render, settings).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys

from lsprotocol import types
from pygls.capabilities import get_capability

from shapelens.lsp import convert, locate, modelview, render
from shapelens.lsp.language_server import COLD_START, MODEL_SUMMARY, ShapelensServer, daemon
from shapelens.lsp.settings import SECTION, Settings, interpreter_of, merge, section_of

log = logging.getLogger(__name__)


SERVER = ShapelensServer()


# -- lifecycle ------------------------------------------------------------------------------------
@SERVER.feature(types.INITIALIZE)
def initialize(ls: ShapelensServer, params: types.InitializeParams) -> None:
    folders = [f.uri for f in params.workspace_folders or []] + ([params.root_uri] if params.root_uri else [])
    ls.roots = [p for p in map(convert.uri_to_path, folders) if p]
    raw = section_of(params.initialization_options)
    if raw is not None:
        ls.settings, ls._deferred_messages = merge(Settings(), raw)
        ignored = interpreter_of(ls.settings, ls.roots)[1]
        ls._deferred_messages += [ignored] if ignored else []
    if ls.settings.enable:
        ls.start_engines()


@SERVER.feature(types.INITIALIZED)
def initialized(ls: ShapelensServer, params: types.InitializedParams) -> None:
    for text in ls._deferred_messages:  # bad initializationOptions, held until the client listens
        ls.message(text, types.MessageType.Warning)
    ls._deferred_messages = []
    ls.initialized = True
    if ls.engines is not None and not ls.engines.ready:
        ls.status("starting", COLD_START)
    if not ls.settings.trusted:
        ls.status("untrusted", "shapes are unavailable: the workspace is untrusted")


@SERVER.feature(types.SHUTDOWN)
def shutdown(ls: ShapelensServer, params: None) -> None:
    ls.scheduler.cancel_all()
    engines, ls.engines = ls.engines, None
    if engines is not None:
        # Not waited for: the worker exits on its own once told (or once our pipes close), and its
        # torch teardown takes a second.
        daemon(engines.close)


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
    ls.schedule(params.text_document.uri, at_once=True)


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


@SERVER.feature(types.NOTEBOOK_DOCUMENT_DID_OPEN)
def notebook_did_open(ls: ShapelensServer, params: types.DidOpenNotebookDocumentParams) -> None:
    ls.opened.add(params.notebook_document.uri)
    ls.schedule(params.notebook_document.uri, at_once=True)


@SERVER.feature(types.NOTEBOOK_DOCUMENT_DID_CHANGE)
def notebook_did_change(ls: ShapelensServer, params: types.DidChangeNotebookDocumentParams) -> None:
    ls.schedule(params.notebook_document.uri)


@SERVER.feature(types.NOTEBOOK_DOCUMENT_DID_SAVE)
def notebook_did_save(ls: ShapelensServer, params: types.DidSaveNotebookDocumentParams) -> None:
    ls.schedule(params.notebook_document.uri)


@SERVER.feature(types.NOTEBOOK_DOCUMENT_DID_CLOSE)
def notebook_did_close(ls: ShapelensServer, params: types.DidCloseNotebookDocumentParams) -> None:
    ls.opened.discard(params.notebook_document.uri)
    ls.forget(params.notebook_document.uri)


# -- features -------------------------------------------------------------------------------------
@SERVER.feature(types.TEXT_DOCUMENT_HOVER)
def hover(ls: ShapelensServer, params: types.HoverParams) -> types.Hover | None:
    uri = params.text_document.uri
    doc = ls.open_document(uri)
    if doc is None or not ls.settings.enable:
        return None
    if not ls.settings.trusted:
        return types.Hover(contents=ls.markdown(render.UNTRUSTED)) if doc.word_at_position(params.position) else None
    view = ls.view(uri)
    if view is None or view.analysis is None:
        return None
    analysis = view.analysis
    pos = view.position_in(params.position)
    lines = analysis.lines(view.now)
    line = lines.to_old(pos["line"])
    if line is None:
        return None  # the line changed since the last probe; its shapes would be stale
    here = (line, pos["character"])
    # On a squiggle whose mismatch has a chain: the chain's table, then what is hovered there.
    chained = locate.finding_at(analysis.report.findings_for(analysis.report.path), here)
    found = locate.entry_at(analysis.source, here, analysis.entries, analysis.classes)
    if found is not None:
        target, hovered = found
    elif chained is not None:
        target, hovered = None, chained.range
    else:
        return None
    text = render.hover_text(target, chained, analysis.report.stats.get("device"))
    rng = lines.range_to_new(hovered)
    return types.Hover(contents=ls.markdown(text), range=view.range_out(rng) if rng else None)


@SERVER.feature(types.TEXT_DOCUMENT_INLAY_HINT, types.InlayHintOptions(resolve_provider=False))
def inlay_hints(ls: ShapelensServer, params: types.InlayHintParams) -> list[types.InlayHint]:
    view = ls.view(params.text_document.uri)
    if view is None or view.analysis is None or not (ls.settings.enable and ls.settings.inlay_hints
                                                     and ls.settings.trusted):
        return []
    analysis, lines = view.analysis, view.analysis.lines(view.now)
    first, last = params.range.start.line, params.range.end.line
    hints = []
    for entry in locate.forward_tensors(analysis.source, analysis.entries):
        line = view.line_out(lines.to_new(entry.range["end"]["line"]))
        if line is None or not first <= line <= last:
            continue
        hints.append(types.InlayHint(
            position=view.units.position_out({"line": line, "character": entry.range["end"]["character"]}),
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
        doc = ls.open_document(uri)
        if doc is not None:
            actions += convert.ignore_actions(uri, list(params.context.diagnostics), doc.source,
                                              ls.units(doc.source), ls.document_changes())
    if convert.kind_wanted(convert.FIX_ALL_KIND, only):
        fix_all = convert.fix_all(uri, ls.diagnostics_for(uri), ls.document_changes())
        if fix_all is not None:
            actions.append(fix_all)
    return actions or None


@SERVER.command(MODEL_SUMMARY)
def model_summary(ls: ShapelensServer, uri: str, position: types.Position) -> str | None:
    """Arguments: the document URI and a position inside an nn.Module class. Returns markdown."""
    view = ls.view(uri)
    if view is None or view.analysis is None:
        return None
    analysis = view.analysis
    pos = view.position_in(position)
    line = analysis.lines(view.now).to_old(pos["line"])
    summary = locate.class_at(analysis.source, (line, pos["character"]), analysis.classes) if line is not None else None
    return render.class_summary(summary, analysis.report.stats.get("device")) if summary else None


PROBE_STATS = "shapelens/probeStats"  # custom request: {textDocument} -> the last published probe's stats


@SERVER.feature(PROBE_STATS)
def probe_stats(ls: ShapelensServer, params) -> dict | None:
    """Where the last published probe of a document spent its time (`timing_ms`: planning, the
    worker's round trip and, inside it, probing, fix re-probes and collecting), what it reused
    (`reused_classes`, `replanned` statement lines), its `version`, whether it was the refining
    second probe; null before the first. For benchmarks and tests."""
    uri = _field(params, "textDocument", "uri")
    return ls.last_probe.get(uri) if isinstance(uri, str) else None


MODEL_VIEW = "shapelens/modelView"  # custom request: {textDocument, position, className?} -> layer tree
CLASS_RANGES = "shapelens/classRanges"  # custom request: {textDocument} -> [{name, range}]


@SERVER.feature(MODEL_VIEW)
def model_view(ls: ShapelensServer, params) -> dict | None:
    """The layer table of the nn.Module class around `position` (see modelview.py), its lines
    mapped to the document as it is now; null when the cursor is in no probed class."""
    uri, position = _field(params, "textDocument", "uri"), _field(params, "position")
    view = ls.view(uri) if isinstance(uri, str) else None
    if view is None or view.analysis is None or position is None:
        return None
    analysis = view.analysis
    pos = view.position_in(types.Position(line=int(position.line), character=int(position.character)))
    lines = analysis.lines(view.now)
    line = lines.to_old(pos["line"])
    found = locate.class_at(analysis.source, (line, pos["character"]), analysis.classes) if line is not None else None
    name = _field(params, "className")
    if found is None and isinstance(name, str):  # the view follows its class while the cursor is elsewhere
        found = next((c for c in analysis.classes if c.name == name), None)
    if found is None:
        return None
    table = modelview.model_view(found, analysis.source, analysis.entries, analysis.report.findings,
                                 analysis.report.stats.get("device"))
    _map_lines(table, lambda old: view.line_out(lines.to_new(old)))
    table["version"] = analysis.version
    return table


@SERVER.feature(CLASS_RANGES)
def class_ranges(ls: ShapelensServer, params) -> list[dict]:
    """Class definitions of the document as it is now (for the editor's "inside a class" menus);
    in a cell, those of the cell, found in the notebook's program (which parses despite magics)."""
    uri = _field(params, "textDocument", "uri")
    view = ls.view(uri, analysed=False) if isinstance(uri, str) else None
    if view is None:
        return []
    out = []
    for name, rng in modelview.class_ranges(locate.Source(view.now)).items():
        here = view.range_out(rng)
        if here is not None:
            out.append({"name": name, "range": here})
    return out


def _field(obj, *names):
    """A field of a custom request's params (pygls hands them over as namedtuples), or None."""
    for name in names:
        obj = getattr(obj, name, None)
    return obj


def _map_lines(view: dict, to_new) -> None:
    view["line"] = to_new(view["line"])
    stack = list(view["rows"])
    while stack:
        row = stack.pop()
        if row.get("line") is not None:
            row["line"] = to_new(row["line"])
        stack += row.get("children", []) + row.get("members", [])


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
    host, port = "", ""
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
