"""`shapelens check` on notebooks: a real subprocess, the real worker, real .ipynb files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from test_cli import SCHEMA, run
from test_formats import sarif_schema

NOTEBOOK = Path(__file__).parent / "data" / "notebooks" / "seed000_ex2.ipynb"
STRICT_SCHEMA = Path(__file__).parent / "data" / "check-json.schema.json"


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("")
    shutil.copy(NOTEBOOK, tmp_path / "nb.ipynb")
    return tmp_path


def test_a_folder_walk_finds_the_notebook_and_prints_cell_locations(folder: Path):
    (folder / ".ipynb_checkpoints").mkdir()
    shutil.copy(NOTEBOOK, folder / ".ipynb_checkpoints" / "nb-checkpoint.ipynb")
    out = run("check", ".", "--output-format", "concise", cwd=folder)
    assert out.returncode == 1, out.stderr
    lines = out.stdout.splitlines()
    # cell 3 of 4 (the markdown cell counts), line 6 of the cell, column 33: `embed_dim` in nn.Linear(embed_dim, 256)
    assert lines[0].startswith("nb.ipynb:cell 3:6:33: error[feature-mismatch] self.linear expects in_features=128")
    assert lines[1:] == ["Found 1 error in 1 file (1 fixable with --fix)."]  # the checkpoint copy is skipped


def test_the_text_format_shows_the_cell_s_line(folder: Path):
    out = run("check", "nb.ipynb", cwd=folder)
    assert "6 |         self.linear = nn.Linear(embed_dim, 256) # Using the incorrect embed_dim" in out.stdout
    assert "256 features come from self.projection (out_features=embed_dim * 2) (nb.ipynb:cell 3:5:9)" in out.stdout
    assert "input_ids [1, 10] (nb.ipynb:cell 4:5:13)" in out.stdout


def test_json_diagnostics_and_shapes_carry_their_cell(folder: Path):
    out = run("check", "nb.ipynb", "--output-format", "json", cwd=folder)
    doc = json.loads(out.stdout)
    for schema in {SCHEMA, STRICT_SCHEMA}:
        jsonschema.Draft202012Validator(json.loads(schema.read_text())).validate(doc)
    (file,) = doc["files"]
    (diag,) = file["diagnostics"]
    assert diag["cell"] == 3 and diag["range"] == {"start": {"line": 5, "character": 32},
                                                   "end": {"line": 5, "character": 41}}
    assert diag["fixes"][0]["edits"] == [{"range": diag["range"], "newText": "embed_dim * 2", "cell": 3}]
    assert [(step["label"], step["cell"]) for step in diag["chain"]][:2] == [("input_ids", 4), ("self.embedding", 3)]
    projected = next(s for s in file["shapes"] if s["name"] == "projected")
    assert (projected["cell"], projected["range"]["start"], projected["shape"]) == (3, {"line": 9, "character": 8},
                                                                                    [1, 10, 256])
    # the cell with `!nvidia-smi` and `model.linear?` still ran: `output` has its shape
    output = next(s for s in file["shapes"] if s["name"] == "output")
    assert output["cell"] == 4 and output["shape"] == [1, 10, 256]


def test_github_sarif_and_junit_name_the_cell(folder: Path):
    github = run("check", "nb.ipynb", "--output-format", "github", cwd=folder).stdout
    assert github.startswith("::error file=nb.ipynb,line=6,col=33,endLine=6,endColumn=42,"
                             "title=shapelens (feature-mismatch) in cell 3::self.linear expects")
    sarif = json.loads(run("check", "nb.ipynb", "--output-format", "sarif", cwd=folder).stdout)
    jsonschema.Draft4Validator(sarif_schema()).validate(sarif)
    (result,) = sarif["runs"][0]["results"]
    (where,) = result["locations"]
    assert where["properties"] == {"cell": 3} and where["physicalLocation"]["region"]["startLine"] == 6
    assert result["fixes"][0]["artifactChanges"][0]["replacements"][0]["properties"] == {"cell": 3}
    junit = ET.fromstring(run("check", "nb.ipynb", "--output-format", "junit", cwd=folder).stdout)
    (failure,) = junit.iter("failure")
    assert failure.text.startswith("nb.ipynb:cell 3:6:33: error[feature-mismatch]")


def test_fix_rewrites_only_that_line_of_that_cell(folder: Path):
    before = (folder / "nb.ipynb").read_bytes()
    out = run("check", "--fix", "nb.ipynb", cwd=folder)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Fixed 1 issue in nb.ipynb" in out.stdout
    after = (folder / "nb.ipynb").read_bytes()
    old_lines, new_lines = before.split(b"\n"), after.split(b"\n")
    assert len(old_lines) == len(new_lines)
    changed = [(a, b) for a, b in zip(old_lines, new_lines) if a != b]
    assert changed == [(b'    "        self.linear = nn.Linear(embed_dim, 256) # Using the incorrect embed_dim\\n",',
                        b'    "        self.linear = nn.Linear(embed_dim * 2, 256) # Using the incorrect embed_dim\\n",')]
    nb_before, nb_after = json.loads(before), json.loads(after)
    assert [c for i, c in enumerate(nb_after["cells"]) if i != 2] == [c for i, c in enumerate(nb_before["cells"]) if i != 2]
    assert run("check", "nb.ipynb", cwd=folder).returncode == 0


def test_diff_shows_the_change_without_writing(folder: Path):
    before = (folder / "nb.ipynb").read_bytes()
    out = run("check", "--diff", "nb.ipynb", cwd=folder)
    assert out.returncode == 1
    assert '+    "        self.linear = nn.Linear(embed_dim * 2, 256)' in out.stdout
    assert (folder / "nb.ipynb").read_bytes() == before


@pytest.mark.parametrize("content, needle", [
    (b'{"cells": [\n  {"cell_type": "code",', "invalid JSON"),
    (b'{"nbformat": 3, "worksheets": []}', "nbformat 3"),
    (b'\xff\xfe{}', "not UTF-8"),
])
def test_a_broken_notebook_is_one_diagnostic(folder: Path, content: bytes, needle: str):
    (folder / "nb.ipynb").write_bytes(content)
    out = run("check", "nb.ipynb", "--output-format", "json", cwd=folder)
    assert out.returncode == 1
    (diag,) = json.loads(out.stdout)["files"][0]["diagnostics"]
    assert diag["code"] == "invalid-notebook" and needle in diag["message"]
    fixed = run("check", "--fix", "nb.ipynb", cwd=folder)
    assert (folder / "nb.ipynb").read_bytes() == content and fixed.returncode == 1



def test_a_notebook_on_stdin_is_read_as_a_notebook(folder: Path):
    out = subprocess.run([sys.executable, "-m", "shapelens", "check", "--stdin-filename", "nb.ipynb",
                          "--output-format", "concise", "-"], cwd=folder, input=NOTEBOOK.read_bytes(),
                         capture_output=True, timeout=300)
    assert out.stdout.decode().startswith("nb.ipynb:cell 3:6:33: error[feature-mismatch]"), out.stderr
