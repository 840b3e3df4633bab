"""`--output-format sarif`: SARIF 2.1.0 (OASIS), as GitHub code scanning uploads it. One run;
`tool.driver.rules` holds one rule per code (with its help URI) and each result points at its
rule by id and index; regions are 1-based, the end column exclusive (SARIF counts columns in
UTF-16 code units by default, as the report does). In a notebook, regions count inside the cell,
and the location's `properties.cell` says which cell (1-based)."""

from __future__ import annotations

import json
from pathlib import Path

from shapelens import __version__
from shapelens.cli.formats import Outcome
from shapelens.report.codes import CODES, DOCS_URL
from shapelens.report.model import Finding, Range, TextEdit

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
LEVEL = {"error": "error", "warning": "warning", "information": "note", "hint": "note"}


def region(rng: Range) -> dict:
    s, e = rng["start"], rng["end"]
    return {"startLine": s["line"] + 1, "startColumn": s["character"] + 1,
            "endLine": e["line"] + 1, "endColumn": e["character"] + 1}


def _uri(outcome: Outcome, path: str) -> str:
    shown = outcome.display(path)
    return Path(shown).as_posix() if not Path(shown).is_absolute() else Path(shown).as_uri()


def _location(outcome: Outcome, path: str, rng: Range, message: str | None = None, cell: int | None = None) -> dict:
    out: dict = {"physicalLocation": {"artifactLocation": {"uri": _uri(outcome, path)}, "region": region(rng)}}
    if message:
        out["message"] = {"text": message}
    if cell is not None:
        out["properties"] = {"cell": cell}
    return out


def _replacement(edit: TextEdit) -> dict:
    out: dict = {"deletedRegion": region(edit.range), "insertedContent": {"text": edit.new_text}}
    if edit.cell is not None:
        out["properties"] = {"cell": edit.cell}
    return out


def result(outcome: Outcome, f: Finding, index: dict[str, int]) -> dict:
    out = {"ruleId": f.code, "ruleIndex": index[f.code], "level": LEVEL[f.severity],
           "message": {"text": f.message}, "locations": [_location(outcome, f.path, f.range, cell=f.cell)]}
    if f.related:
        out["relatedLocations"] = [dict(_location(outcome, r.path or f.path, r.range, r.message, r.cell), id=i)
                                   for i, r in enumerate(f.related)]
    if f.fixes:
        out["fixes"] = [{"description": {"text": fix.title}, "artifactChanges": [{
            "artifactLocation": {"uri": _uri(outcome, fix.path or f.path)},
            "replacements": [_replacement(e) for e in fix.edits]}]}
            for fix in f.fixes if fix.edits]
    return out


def render(outcome: Outcome) -> str:
    findings = outcome.all_findings()
    codes = sorted({f.code for f in findings} | set(CODES))
    index = {code: i for i, code in enumerate(codes)}
    rules = []
    for code in codes:
        known = CODES.get(code)
        rule = {"id": code, "name": code,
                "shortDescription": {"text": known.summary if known else code},
                "helpUri": known.url if known else DOCS_URL,
                "defaultConfiguration": {"level": LEVEL[known.severity] if known else "error"}}
        rules.append(rule)
    log = {"$schema": SCHEMA, "version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "shapelens", "version": __version__, "informationUri": DOCS_URL.split("#")[0],
                            "rules": rules}},
        "columnKind": "utf16CodeUnits",
        "results": [result(outcome, f, index) for f in findings],
    }]}
    return json.dumps(log, indent=2) + "\n"
