"""The editor side runs nothing from the workspace, whoever launches it: `python -m shapelens`
started inside a workspace does not import its modules, and an untrusted workspace cannot choose
the interpreter the server starts. Real server processes over pipes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SAMPLES
from support.rawlsp import LspClient, server_cmd

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="a shell-script interpreter")

TRAP = "open({marker!r}, 'a').write('imported {name}\\n')\nraise SystemExit(9)\n"


def trapped_workspace(tmp_path: Path) -> tuple[Path, Path]:
    """A workspace whose json.py and torch.py leave a marker when imported."""
    ws, marker = tmp_path / "ws", tmp_path / "MARKER"
    ws.mkdir()
    for name in ("json", "torch", "typing_extensions", "pygls"):
        (ws / f"{name}.py").write_text(TRAP.format(marker=str(marker), name=name))
    (ws / "m.py").write_text((SAMPLES / "seed000_ex2_mismatched_embedding.py").read_text())
    return ws, marker


def test_serve_started_in_the_workspace_imports_none_of_its_modules(tmp_path):
    ws, marker = trapped_workspace(tmp_path)
    client = LspClient(server_cmd(), cwd=str(ws))
    try:
        client.initialize(str(ws), {"debounce": 0})
        uri = (ws / "m.py").as_uri()
        client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                                 "text": (ws / "m.py").read_text()}})
        _, params = client.wait_diagnostics(uri, 1, timeout=120)
        assert [d["code"] for d in params["diagnostics"]] == ["feature-mismatch"]
    finally:
        client.close()
    assert not marker.exists(), marker.read_text()


def test_check_started_in_the_workspace_imports_none_of_its_modules(tmp_path):
    ws, marker = trapped_workspace(tmp_path)
    out = subprocess.run([sys.executable, "-m", "shapelens", "check", "m.py"], cwd=ws, capture_output=True,
                         text=True, timeout=300)
    assert "feature-mismatch" in out.stdout, out.stdout + out.stderr
    assert not marker.exists(), marker.read_text()


def fake_interpreter(ws: Path, marker: Path) -> Path:
    """An 'interpreter' inside the workspace: it records that it was started, then runs Python."""
    python = ws / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/bin/sh\necho started >> {marker}\nexec {sys.executable} \"$@\"\n")
    python.chmod(0o755)
    return python


@pytest.mark.parametrize("trusted", [False, True])
def test_an_untrusted_workspace_cannot_choose_the_interpreter(tmp_path, trusted):
    ws, marker = tmp_path / "ws", tmp_path / "STARTED"
    ws.mkdir()
    (ws / "m.py").write_text((SAMPLES / "seed000_ex2_mismatched_embedding.py").read_text())
    python = fake_interpreter(ws, marker)
    client = LspClient(server_cmd(), cwd=str(tmp_path))
    try:
        client.initialize(str(ws), {"debounce": 0, "trusted": trusted, "interpreter": str(python)})
        uri = (ws / "m.py").as_uri()
        client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                                 "text": (ws / "m.py").read_text()}})
        client.wait_diagnostics(uri, 1, timeout=120)
        messages = list(client.messages)
    finally:
        client.close()
    # Trusted, the workspace's interpreter is what the user asked for: it runs (the test's control).
    assert marker.exists() == trusted
    if not trusted:
        assert any("is inside the untrusted workspace and is ignored" in m for m in messages), messages
