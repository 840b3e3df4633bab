"""`shapelens check --fix` and `--diff` on real files: nothing but the fixed expression changes
(line endings, PEP 263 encoding, BOM, mode), a file that does not decode is a diagnostic, and a
result that would not parse is never written."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from conftest import ROOT, SAMPLES
from shapelens.cli.sources import decode
from shapelens.cli.writing import fix_file

SAMPLE = (SAMPLES / "seed000_ex2_mismatched_embedding.py").read_text()
BAD, GOOD = "nn.Linear(embed_dim, 256)", "nn.Linear(embed_dim * 2, 256)"


def run(*args, cwd=ROOT, stdin: bytes | None = None):
    return subprocess.run([sys.executable, "-m", "shapelens", *args], cwd=cwd, capture_output=True,
                          input=stdin, timeout=300)


def variants() -> dict[str, bytes]:
    lines = SAMPLE.splitlines(keepends=True)
    return {
        "crlf.py": SAMPLE.replace("\n", "\r\n").encode(),
        "mixed.py": "".join(line.replace("\n", "\r\n") if i % 2 else line for i, line in enumerate(lines)).encode(),
        "latin1.py": ("# -*- coding: latin-1 -*-\n# modèle de démonstration: café\n" + SAMPLE).encode("latin-1"),
        "bom.py": b"\xef\xbb\xbf" + SAMPLE.encode(),
        "mode.py": SAMPLE.encode(),
    }


@pytest.fixture(scope="module")
def fixed(tmp_path_factory):
    """One `check --fix` over a folder of every variant (each probe costs seconds)."""
    folder = tmp_path_factory.mktemp("fix")
    for name, data in variants().items():
        (folder / name).write_bytes(data)
    os.chmod(folder / "mode.py", 0o750)
    done = run("check", "--fix", str(folder))
    return folder, done


@pytest.mark.parametrize("name", sorted(variants()))
def test_only_the_fixed_expression_changes(fixed, name):
    """Line endings (CRLF, mixed), a latin-1 coding line, a BOM: the bytes are the original's but
    for the fix."""
    folder, done = fixed
    assert done.returncode == 0, done.stdout + done.stderr
    original = variants()[name]
    assert (folder / name).read_bytes() == original.replace(BAD.encode(), GOOD.encode())
    assert original != (folder / name).read_bytes()


def test_the_file_mode_is_kept_and_no_temporary_file_is_left(fixed):
    folder, _ = fixed
    assert stat.S_IMODE((folder / "mode.py").stat().st_mode) == 0o750
    assert sorted(p.name for p in folder.iterdir()) == sorted(variants())


def test_a_file_that_does_not_decode_is_a_syntax_error_and_is_never_written(tmp_path):
    target = tmp_path / "binary.py"
    data = b"import torch\nname = '\xff\xfe caf\xe9'\n"
    target.write_bytes(data)
    done = run("check", "--fix", "--output-format", "json", str(target))
    assert done.returncode == 1, done.stderr
    (diag,) = json.loads(done.stdout)["files"][0]["diagnostics"]
    assert diag["code"] == "syntax-error" and diag["severity"] == "error"
    assert "cannot decode the file as utf-8: byte 0xff at line 2, column 9" in diag["message"]
    assert diag["range"]["start"] == {"line": 1, "character": 8}
    assert target.read_bytes() == data
    assert b"Traceback" not in done.stderr


def test_diff_prints_a_unified_diff_writes_nothing_and_exits_1(tmp_path):
    target = tmp_path / "model.py"
    data = SAMPLE.replace("\n", "\r\n").encode()
    target.write_bytes(data)
    done = run("check", "--diff", "model.py", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert target.read_bytes() == data
    diff = done.stdout.decode()
    assert diff.startswith("--- a/model.py\n+++ b/model.py\n@@ ")
    assert f"-        self.linear = {BAD} # Using the incorrect embed_dim\r\n" in diff
    assert f"+        self.linear = {GOOD} # Using the incorrect embed_dim\r\n" in diff
    assert "Would fix 1 issue in 1 file." in done.stderr.decode()
    # `git apply` takes it as is
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "change.diff").write_bytes(done.stdout)
    subprocess.run(["git", "apply", "change.diff"], cwd=tmp_path, check=True)
    assert target.read_bytes() == data.replace(BAD.encode(), GOOD.encode())


def test_a_fix_whose_result_does_not_parse_or_encode_is_refused():
    src = decode("m.py", "# -*- coding: latin-1 -*-\nx = f(1)\n".encode("latin-1"))
    at = {"start": {"line": 1, "character": 6}, "end": {"line": 1, "character": 7}}
    assert fix_file(src, [(at, "2")]).data == "# -*- coding: latin-1 -*-\nx = f(2)\n".encode("latin-1")
    broken = fix_file(src, [(at, "2,,")])
    assert broken.data is None and "would not parse" in broken.refused
    unencodable = fix_file(src, [(at, "'\u20ac'")])
    assert unencodable.data is None and "cannot encode" in unencodable.refused


@pytest.mark.parametrize("data", [b"x = 1\r\ny = 2\r\n", b"\xef\xbb\xbfx = 1\n", b"x = 1\ry = 2\r"])
def test_the_engine_sees_universal_newlines_without_a_bom(data):
    src = decode("m.py", data)
    assert "\r" not in src.text and not src.text.startswith("\ufeff")
    assert src.encode(src.original) == data
