"""The language server survives what a probed file's code does to the worker: forged protocol
lines, a SIGSTOPped worker, a setsid() grandchild; and after exit nothing it started is alive.
The kernel sandbox is off here (SHAPELENS_SANDBOX=off) so the grandchild can exist at all: these
are the layers under it."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from conftest import SAMPLES
from support.procs import descendants, wait_dead
from support.rawlsp import LspClient, server_cmd
from test_containment import ESCAPE, FORGE, forward_file

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="walks /proc (Linux)")
SEED = SAMPLES / "seed000_ex2_mismatched_embedding.py"


def diagnostics(client: LspClient, path, text: str | None = None) -> list[dict]:
    uri = path.as_uri()
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                             "text": path.read_text() if text is None else text}})
    _, params = client.wait_diagnostics(uri, 1, timeout=120)
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    return params["diagnostics"]


def cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def test_the_server_survives_forgery_a_stopped_worker_and_an_escaped_grandchild(tmp_path, monkeypatch):
    monkeypatch.setenv("SHAPELENS_SANDBOX", "off")
    client = LspClient(server_cmd(), cwd=str(tmp_path))
    started: set[int] = set()
    try:
        client.initialize(str(tmp_path), {"debounce": 0, "probeTimeout": 2})
        assert [d["code"] for d in diagnostics(client, SEED)] == ["feature-mismatch"]
        started |= descendants(client.proc.pid)

        forged = tmp_path / "forge.py"
        forged.write_text(forward_file(FORGE))
        notes = diagnostics(client, forged)
        assert [d["code"] for d in notes] == ["probe-incomplete"] and "malformed" in notes[0]["message"], notes

        pidfile = tmp_path / "grandchild.pid"
        escape = tmp_path / "escape.py"
        escape.write_text(forward_file(ESCAPE.format(pidfile=str(pidfile))))
        diagnostics(client, escape)
        assert not wait_dead([int(pidfile.read_text())]), "the setsid grandchild outlived its probe"

        (worker,) = [p for p in descendants(client.proc.pid) if b"shapelens.probe.worker" in cmdline(p)]
        os.kill(worker, signal.SIGSTOP)
        stalled = diagnostics(client, SEED, SEED.read_text() + "\n# edited\n")
        assert [d["code"] for d in stalled] == ["probe-incomplete"] and "did not answer" in stalled[0]["message"]
        assert [d["code"] for d in diagnostics(client, SEED)] == ["feature-mismatch"]  # a fresh worker
        started |= descendants(client.proc.pid)
        assert "Traceback" not in client.server_log()
    finally:
        client.close()
    assert client.proc.returncode == 0
    assert not wait_dead(started), "a process the server started is still alive"
