"""`shapelens check` as a user and CI run it: a real subprocess on real files."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from conftest import ROOT, SAMPLES

# The contract lives in shared/ beside the checkout; the copy in tests/data is for clones without it.
SCHEMA = next(p for p in (Path(ROOT).parent / "shared" / "contract" / "check-json.schema.json",
                          Path(__file__).parent / "data" / "check-json.schema.json") if p.exists())
LINE = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning|information|hint)\[(?P<code>[a-z-]+)\] .+$")


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "shapelens", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def samples_text():
    return run("check", "samples/", "--output-format", "concise")


@pytest.fixture(scope="module")
def samples_json():
    return run("check", "samples/", "--format", "json")


def test_text_output_lists_exactly_the_expected_findings(samples_text):
    assert samples_text.returncode == 1
    lines = samples_text.stdout.strip().splitlines()
    findings = [LINE.match(line) for line in lines[:-1]]
    assert all(findings), lines
    got = sorted((Path(m["path"]).name, int(m["line"]), m["code"]) for m in findings)
    assert got == [
        ("index_dtype.py", 5, "index-dtype"),
        ("invalid_layer_config.py", 9, "invalid-layer-config"),
        ("mha_embed_dim_mismatch.py", 9, "embed-dim-mismatch"),
        ("probe_incomplete.py", 4, "probe-incomplete"),
        ("seed000_ex2_mismatched_embedding.py", 9, "feature-mismatch"),
        ("seed001_ex3_out_of_vocab.py", 7, "index-out-of-range"),
        ("shape_error.py", 12, "shape-error"),
    ]
    # Columns are 1-based: `embed_dim` in `        self.linear = nn.Linear(embed_dim, 256)` starts at 33.
    seed = next(m for m in findings if m["code"] == "feature-mismatch")
    assert int(seed["col"]) == 33
    assert lines[-1].startswith("Found 6 errors, 1 note in ")


def test_json_output_satisfies_the_contract(samples_json):
    assert samples_json.returncode == 1
    doc = json.loads(samples_json.stdout)  # exactly one document on stdout
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator(schema).validate(doc)
    files = {Path(f["path"]).name: f for f in doc["files"]}
    assert set(files) >= {p.name for p in SAMPLES.glob("*.py")}
    seed = files["seed000_ex2_mismatched_embedding.py"]
    (diag,) = seed["diagnostics"]
    assert diag["code"] == "feature-mismatch"
    assert diag["range"] == {"start": {"line": 8, "character": 32}, "end": {"line": 8, "character": 41}}
    assert diag["fixes"][0]["edits"][0]["newText"] == "embed_dim * 2"
    shapes = {s["name"]: s for s in seed["shapes"]}
    assert shapes["embedded"]["shape"] == [1, 10, 128] and shapes["embedded"]["kind"] == "tensor"
    assert shapes["projected"]["shape"] == [1, 10, 256]
    assert shapes["self.linear"]["kind"] == "layer"
    assert shapes["self.linear"]["input_shape"] == [1, 10, 256]


def test_fix_rewrites_the_file_and_a_second_check_is_clean(tmp_path):
    target = tmp_path / "model.py"
    shutil.copy(SAMPLES / "seed000_ex2_mismatched_embedding.py", target)
    first = run("check", "--fix", str(target))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Fixed 1 issue" in first.stdout
    assert "self.linear = nn.Linear(embed_dim * 2, 256)" in target.read_text()
    second = run("check", str(target))
    assert second.returncode == 0
    assert "All checks passed" in second.stdout


def test_a_clean_file_exits_zero(tmp_path):
    target = tmp_path / "ok.py"
    shutil.copy(SAMPLES / "seed000_ex3_correct_embedding.py", target)
    result = run("check", str(target))
    assert result.returncode == 0 and "All checks passed: 1 file" in result.stdout
    assert result.stderr == ""  # no progress line off a terminal, no warnings


@pytest.mark.parametrize("args, needle", [
    (["check", "no/such/path.py"], "no such file or directory"),
    (["check", "--format", "xml", "samples"], "invalid choice"),
    (["check", "--output-format", "sarif", "--statistics", "samples"], "--statistics works with text, concise or json"),
    (["check", "-", "samples"], "cannot be combined"),
    (["check", "--python", "/no/such/python", "samples"], "--python /no/such/python: no such interpreter"),
    (["check", "--bogus"], "unrecognized arguments"),
    (["check", "--timeout", "0", "samples"], "--timeout must be positive"),
])
def test_usage_errors_exit_2_with_one_line(args, needle):
    result = run(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and needle in result.stderr


def test_a_syntax_error_fails_the_check(tmp_path):
    (tmp_path / "broken.py").write_text("import torch\nx = torch.zeros(2,\n")
    result = run("check", "--format", "json", str(tmp_path / "broken.py"))
    assert result.returncode == 1
    (diag,) = json.loads(result.stdout)["files"][0]["diagnostics"]
    assert diag["code"] == "syntax-error" and diag["severity"] == "error" and "syntax error" in diag["message"]


def test_the_pre_commit_hook_entry_is_a_valid_command_line():
    text = (Path(ROOT) / ".pre-commit-hooks.yaml").read_text()
    assert re.search(r"^- id: shapelens$", text, re.M)
    entry = re.search(r"^  entry: (.+)$", text, re.M)[1].split()
    assert entry[:2] == ["shapelens", "check"]
    from shapelens.cli import build_parser

    args = build_parser().parse_args([*entry[1:], "a.py", "b.py"])  # pre-commit appends the staged files
    assert args.force_exclude and args.paths == ["a.py", "b.py"]


def test_every_option_has_help_text():
    import argparse

    from shapelens.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, command in sub.choices.items():
        for action in command._actions:
            assert action.help and action.help != argparse.SUPPRESS, (name, action.option_strings or action.dest)
            assert action.help[0].isupper() or action.help[0] in "`-", (name, action.help)  # ruff's style


def test_text_output_tells_the_flow_that_led_to_a_mismatch():
    # The chain from the input to the layer: one `= flow:` line under the finding, while the
    # concise format keeps one line a finding.
    out = run("check", "samples/seed000_ex2_mismatched_embedding.py", "--output-format", "text").stdout
    flows = [line.strip() for line in out.splitlines() if "= flow:" in line]
    assert flows == ["= flow: input_ids [1, 10] → self.embedding → [1, 10, 128] → self.projection → "
                     "[1, 10, 256] → self.linear expects 128"]
