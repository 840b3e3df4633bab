"""`shapelens check` as CI runs it, end to end in a real subprocess: stdin, config and suppression
comments in a real git project, exit statuses, environment errors, colour and the progress line
on a real terminal (pty). Formats themselves are in test_formats.py."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import threading

import pytest

from conftest import ROOT, SAMPLES

SEED = (SAMPLES / "seed000_ex2_mismatched_embedding.py").read_text()
LINEAR = "        self.linear = nn.Linear(embed_dim, 256) # Using the incorrect embed_dim\n"


def run(*args, cwd=ROOT, stdin: str | None = None, env: dict | None = None):
    return subprocess.run([sys.executable, "-m", "shapelens", *args], cwd=cwd, capture_output=True, text=True,
                          input=stdin, timeout=600, env={**os.environ, **(env or {})})


# -- stdin -----------------------------------------------------------------------------------------
def test_stdin_is_checked_under_the_stdin_filename(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    done = run("check", "-", "--stdin-filename", "pkg/model.py", "--output-format", "github", cwd=tmp_path,
               stdin=SEED)
    assert done.returncode == 1, done.stderr
    (line,) = done.stdout.splitlines()
    assert line.startswith("::error file=pkg/model.py,line=9,col=33,endLine=9,endColumn=42,"
                           "title=shapelens (feature-mismatch)::self.linear expects in_features=128")


def test_stdin_with_fix_prints_the_fixed_file(tmp_path):
    done = run("check", "-", "--fix", cwd=tmp_path, stdin=SEED.replace("\n", "\r\n"))
    assert done.returncode == 0, done.stderr
    assert done.stdout == SEED.replace("nn.Linear(embed_dim, 256)", "nn.Linear(embed_dim * 2, 256)")
    assert "All checks passed: 1 file" in done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written


# -- config and suppressions in a real project -------------------------------------------------------
PYPROJECT = """[project]
name = "proj"

[tool.shapelens]
ignroe = ["shape-error"]
show-unused-ignores = true

[tool.shapelens.per-file-ignores]
"legacy/*" = ["feature-mismatch"]

[tool.shapelens.severity]
probe-incomplete = "warning"
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("proj")
    files = {
        "pyproject.toml": PYPROJECT,
        ".gitignore": "data/\n",
        "suppressed.py": SEED.replace(LINEAR, LINEAR.rstrip("\n") + "  # shapelens: ignore[feature-mismatch]\n")
        + "unused = 1  # shapelens: ignore[shape-error]\n",
        "legacy/old.py": SEED,
        "incomplete.py": (SAMPLES / "probe_incomplete.py").read_text(),
        "failing.py": (SAMPLES / "shape_error.py").read_text(),
        "data/ignored.py": SEED,
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    done = run("check", "--output-format", "json", "--exit-zero", cwd=root)
    return done, {f["path"]: f["diagnostics"] for f in json.loads(done.stdout)["files"]}


def test_exit_zero_keeps_the_errors_in_the_report(project):
    done, files = project
    assert done.returncode == 0, done.stderr
    assert [d["code"] for d in files["failing.py"]] == ["shape-error"]


def test_an_unknown_key_is_one_warning_on_stderr(project):
    done, _ = project
    warnings = [line for line in done.stderr.splitlines() if line.startswith("shapelens: warning:")]
    assert len(warnings) == 1 and "[tool.shapelens] ignroe: unknown key" in warnings[0]
    assert done.stderr.count("\n") == 1


def test_suppression_comments_per_file_ignores_and_severity(project):
    _, files = project
    assert sorted(files) == ["failing.py", "incomplete.py", "legacy/old.py", "suppressed.py"]  # data/ is git-ignored
    assert files["legacy/old.py"] == []
    assert len(files["suppressed.py"]) == 1, files["suppressed.py"]
    (unused,) = files["suppressed.py"]
    assert unused["code"] == "unused-ignore" and unused["severity"] == "hint"
    assert unused["range"]["start"]["line"] == SEED.count("\n")
    assert unused["fixes"][0]["title"] == "Remove the unused suppression"
    assert [(d["code"], d["severity"]) for d in files["incomplete.py"]] == [("probe-incomplete", "warning")]


# -- fast paths: no probe runs for a file that does not parse ---------------------------------------
@pytest.fixture
def broken(tmp_path):
    (tmp_path / "broken.py").write_text("import torch\nx = torch.zeros(2,\n")
    return tmp_path


def test_colour_is_forced_or_refused_by_the_environment(broken):
    plain = run("check", "broken.py", cwd=broken, env={"NO_COLOR": "", "FORCE_COLOR": ""})
    forced = run("check", "broken.py", cwd=broken, env={"FORCE_COLOR": "1"})
    refused = run("check", "broken.py", cwd=broken, env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert plain.returncode == forced.returncode == refused.returncode == 1
    assert "\x1b[" not in plain.stdout and "\x1b[" not in refused.stdout
    assert "\x1b[1;31merror\x1b[0m" in forced.stdout
    assert re.sub(r"\x1b\[[0-9;]*m", "", forced.stdout) == plain.stdout == refused.stdout


def test_ignoring_a_code_on_the_command_line(broken):
    done = run("check", "--ignore", "syntax-error", "broken.py", cwd=broken)
    assert done.returncode == 0 and "All checks passed" in done.stdout


# -- environment -----------------------------------------------------------------------------------
def _python_without_torch() -> str | None:
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(candidate) and subprocess.run(
                [candidate, "-c", "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('torch') is None else 1)"],
                capture_output=True).returncode == 0:
            return candidate
    return None


def test_an_interpreter_without_torch_is_one_line_and_exit_2():
    python = _python_without_torch()
    if python is None:
        pytest.skip("no interpreter without torch on this machine")
    done = run("check", "--python", python, "samples/seed000_ex3_correct_embedding.py")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (f"shapelens: error: torch is not installed in {python}: install it there or pass "
                           "--python PATH\n")


# -- progress --------------------------------------------------------------------------------------
def test_a_progress_line_on_a_terminal(tmp_path):
    """stderr on a real terminal, a run that takes over a second (the worker's start alone does):
    `[done/total] checking file`, erased at the end; stdout stays clean."""
    (tmp_path / "model.py").write_text((SAMPLES / "seed000_ex3_correct_embedding.py").read_text())
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "shapelens", "check", "model.py"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=follower, text=True)
    os.close(follower)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:  # EIO: the other side closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    stdout, _ = proc.communicate(timeout=600)
    reader.join(timeout=10)
    os.close(leader)
    err = b"".join(chunks).decode()
    assert proc.returncode == 0 and stdout == "All checks passed: 1 file, no shape mismatches.\n"
    assert re.search(r"\[[01]/1\] (checking model\.py|starting the probe worker)", err), err[-500:]
    assert err.endswith("\r\x1b[K")

