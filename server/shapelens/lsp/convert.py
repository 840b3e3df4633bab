"""Pure converters from report types to LSP types.

A diagnostic carries its fixes in `data` (ranges already in the client's units, with the document
version they were computed for), so code actions are built from the diagnostic alone: no server
cache to go stale.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from lsprotocol import types
from pygls.uris import from_fs_path, to_fs_path

from shapelens.lsp.units import Units, range_json
from shapelens.report.codes import CODES
from shapelens.report.model import Finding

SOURCE = "shapelens"
FIX_ALL_KIND = f"{types.CodeActionKind.SourceFixAll.value}.shapelens"
SEVERITY = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "information": types.DiagnosticSeverity.Information,
    "hint": types.DiagnosticSeverity.Hint,
}


def uri_to_path(uri: str) -> str | None:
    path = to_fs_path(uri)
    return os.path.realpath(path) if path else None


def path_to_uri(path: str) -> str:
    return from_fs_path(path) or path


def diagnostic(finding: Finding, uri_of: Callable[[str], str], units_of: Callable[[str], Units],
               version: int | None) -> types.Diagnostic:
    """`uri_of` and `units_of` map a file path to its URI and to the units of the text the
    report was computed on."""
    units = units_of(finding.path)
    code = CODES.get(finding.code)
    related = []
    for r in finding.related:
        where = r.path or finding.path
        related.append(types.DiagnosticRelatedInformation(
            location=types.Location(uri=uri_of(where), range=units_of(where).range_out(r.range)), message=r.message))
    fixes = []
    for fix in finding.fixes:
        target = fix.path or finding.path
        edits = [{"range": range_json(units_of(target).range_out(e.range)), "newText": e.new_text} for e in fix.edits]
        fixes.append({"title": fix.title, "uri": uri_of(target), "edits": edits})
    return types.Diagnostic(
        range=units.range_out(finding.range),
        message=finding.message,
        severity=SEVERITY.get(finding.severity, types.DiagnosticSeverity.Error),
        code=finding.code,
        code_description=types.CodeDescription(href=code.url) if code else None,
        source=SOURCE,
        related_information=related or None,
        data={"fixes": fixes, "version": version} if fixes else None,
    )


def _key(d: types.Diagnostic) -> tuple:
    return (d.code, d.range.start.line, d.range.start.character, d.range.end.line, d.range.end.character, d.message)


def dedupe(diagnostics: list[types.Diagnostic]) -> list[types.Diagnostic]:
    """One copy of each diagnostic: an imported file can get the same finding from several probes."""
    seen, out = set(), []
    for d in diagnostics:
        if _key(d) not in seen:
            seen.add(_key(d))
            out.append(d)
    return out


# -- code actions --------------------------------------------------------------------------------
def kind_wanted(kind: str, only: list[str] | None) -> bool:
    """`context.only` holds kind prefixes: `source` admits `source.fixAll.shapelens`."""
    return not only or any(kind == o or kind.startswith(f"{o}.") for o in only)


def _fixes(d: types.Diagnostic) -> list[dict]:
    data = d.data if isinstance(d.data, dict) else {}
    return [f for f in data.get("fixes") or [] if isinstance(f, dict) and f.get("edits")]


def workspace_edit(edits_by_uri: dict[str, list[dict]], versions: dict[str, int | None],
                   document_changes: bool) -> types.WorkspaceEdit:
    text_edits = {uri: [types.TextEdit(range=_range(e["range"]), new_text=e["newText"]) for e in edits]
                  for uri, edits in edits_by_uri.items()}
    if not document_changes:
        return types.WorkspaceEdit(changes=text_edits)
    return types.WorkspaceEdit(document_changes=[
        types.TextDocumentEdit(
            text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=versions.get(uri)),
            edits=edits)
        for uri, edits in text_edits.items()])


def _range(r: dict) -> types.Range:
    return types.Range(start=types.Position(**r["start"]), end=types.Position(**r["end"]))


def quickfixes(uri: str, diagnostics: list[types.Diagnostic], document_changes: bool) -> list[types.CodeAction]:
    actions = []
    for d in diagnostics:
        if d.source != SOURCE:
            continue
        version = d.data.get("version") if isinstance(d.data, dict) else None
        for i, fix in enumerate(_fixes(d)):
            target = fix.get("uri") or uri
            actions.append(types.CodeAction(
                title=fix["title"], kind=types.CodeActionKind.QuickFix, diagnostics=[d], is_preferred=i == 0,
                edit=workspace_edit({target: fix["edits"]}, {uri: version}, document_changes)))
    return actions


def fix_all(uri: str, diagnostics: list[types.Diagnostic], document_changes: bool) -> types.CodeAction | None:
    """The preferred fix of every diagnostic, overlapping edits after the first dropped."""
    by_uri: dict[str, list[dict]] = {}
    versions: dict[str, int | None] = {}
    fixed = []
    for d in diagnostics:
        fixes = _fixes(d)
        if d.source != SOURCE or not fixes:
            continue
        fixed.append(d)
        target = fixes[0].get("uri") or uri
        by_uri.setdefault(target, []).extend(fixes[0]["edits"])
        if target == uri and isinstance(d.data, dict):
            versions[uri] = d.data.get("version")
    if not fixed:
        return None
    for target, edits in by_uri.items():
        by_uri[target] = _without_overlaps(edits)
    return types.CodeAction(title="Fix all shape mismatches", kind=FIX_ALL_KIND, diagnostics=fixed,
                            edit=workspace_edit(by_uri, versions, document_changes))


def _without_overlaps(edits: list[dict]) -> list[dict]:
    def pos(p: dict) -> tuple[int, int]:
        return p["line"], p["character"]

    kept: list[dict] = []
    for e in sorted(edits, key=lambda e: (pos(e["range"]["start"]), pos(e["range"]["end"]))):
        if kept and pos(e["range"]["start"]) < pos(kept[-1]["range"]["end"]):
            continue
        if e not in kept:
            kept.append(e)
    return kept
