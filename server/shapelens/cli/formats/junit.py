"""`--output-format junit`: JUnit XML as CI test reports read it. One testcase per checked file,
one `<failure>` per error in it; warnings and notes go to the testcase's `<system-out>`."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from shapelens.cli.formats import Outcome, location
from shapelens.report.model import Finding

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # characters XML 1.0 cannot hold


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _where(outcome: Outcome, f: Finding) -> str:
    return location(outcome, f.path, f.range, f.cell)


def render(outcome: Outcome) -> str:
    paths = list(dict.fromkeys([*outcome.checked, *sorted(outcome.findings, key=outcome.display)]))
    failed = sum(1 for p in paths if any(f.severity == "error" for f in outcome.findings.get(p, [])))
    attrs = {"name": "shapelens", "tests": str(len(paths)), "failures": str(failed), "errors": "0"}
    root = ET.Element("testsuites", attrs)
    suite = ET.SubElement(root, "testsuite", {**attrs, "skipped": "0"})
    for path in paths:
        shown = _clean(outcome.display(path))
        case = ET.SubElement(suite, "testcase", {"classname": "shapelens", "name": shown, "file": shown})
        notes = []
        for f in outcome.findings.get(path, []):
            line = f"{_where(outcome, f)}: {f.severity}[{f.code}] {f.message}"
            if f.severity != "error":
                notes.append(line)
                continue
            failure = ET.SubElement(case, "failure", {"type": f.code, "message": _clean(f"[{f.code}] {f.message}")})
            failure.text = _clean(line)
        if notes:
            ET.SubElement(case, "system-out").text = _clean("\n".join(notes))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
