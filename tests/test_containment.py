"""User code cannot break the worker's protocol, a stalled worker is replaced, and nothing a probe
starts outlives it. Real worker processes, real files, /proc walked for what is left."""

from __future__ import annotations

import os
import signal
import sys
import textwrap

import pytest

from conftest import SAMPLES
from helpers import shape_of
from shapelens.probe import validate
from support.procs import wait_dead

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="walks /proc (Linux)")

FORWARD_FILE = """
import os, sys, time, json, socket, ctypes
import torch
import torch.nn as nn


class Bad(nn.Module):
    def forward(self, x):
{body}
        return x


m = Bad()
y = m(torch.zeros(2))
z = torch.zeros(3, 5)
"""


def forward_file(body: str) -> str:
    return FORWARD_FILE.format(body=textwrap.indent(textwrap.dedent(body).strip(), " " * 8))


FORGE = """
forged = b'{"id": 1, "ok": true, "result": {"findings": 5}}\\n{"result": [1, 2]}\\nnot json\\n'
for fd in range(0, 512):
    try:
        os.write(fd, forged)
    except OSError:
        pass
"""


def test_user_code_writing_to_every_descriptor_fails_only_its_own_probe(workspace, worker):
    pid = worker.pid
    workspace.write("forge.py", forward_file(FORGE))
    report = workspace.check("forge.py")
    notes = [f for f in report.findings if f.code == "probe-incomplete"]
    assert len(notes) == 1 and "malformed" in notes[0].message, report.findings
    assert worker.pid == pid and worker.alive  # the worker's protocol stream was never reachable
    # The session's other requests were not answered by the forgery: the next probe is right.
    workspace.write("ok.py", "import torch\nx = torch.zeros(3, 4)\n")
    assert shape_of(workspace.check("ok.py"), "x").shape == [3, 4]


ESCAPE = """
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() == 0:  # a grandchild in a session of its own, its parent gone
        with open({pidfile!r}, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(600)
    os.kill(os.getpid(), 9)  # (the probe turns os._exit into SystemExit)
os.waitpid(pid, 0)
time.sleep(0.5)
"""


def test_a_setsid_grandchild_dies_with_its_probe(tmp_path, monkeypatch):
    """With the sandbox off (it would refuse the fork), the subreaper still ends the escape."""
    from shapelens.engine import Engine
    from shapelens.probe.client import WorkerClient

    monkeypatch.setenv("SHAPELENS_SANDBOX", "off")
    pidfile = tmp_path / "grandchild.pid"
    (tmp_path / "escape.py").write_text(forward_file(ESCAPE.format(pidfile=str(pidfile))))
    client = WorkerClient()
    try:
        report = Engine(str(tmp_path), worker=client).check(str(tmp_path / "escape.py"))
        assert shape_of(report, "z").shape == [3, 5]
        grandchild = int(pidfile.read_text())
        assert not wait_dead([grandchild]), "the setsid grandchild outlived its probe"
        assert client.alive
    finally:
        client.close()


def test_a_child_cannot_read_a_sibling_probes_pipe_or_the_protocol(workspace):
    """Only stdin, stdout, stderr and the result pipe are open in the probe child."""
    workspace.write("fds.py", forward_file("""
        fds = sorted(int(n) for n in os.listdir("/proc/self/fd"))
        assert len(fds) <= 5, fds
    """))
    report = workspace.check("fds.py")
    assert not [f for f in report.findings if "AssertionError" in f.message], report.findings
    assert shape_of(report, "z").shape == [3, 5]


def test_a_stopped_worker_is_killed_and_replaced(tmp_path):
    from shapelens.engine import Engine, ProbeOptions
    from shapelens.probe.client import WorkerClient

    client = WorkerClient()
    try:
        client.start()
        old = client.pid
        assert old is not None
        os.kill(old, signal.SIGSTOP)
        path = tmp_path / "m.py"
        path.write_text((SAMPLES / "seed000_ex2_mismatched_embedding.py").read_text())
        engine = Engine(str(tmp_path), worker=client)
        report = engine.check(str(path), options=ProbeOptions(timeout=1.0))
        assert [f.code for f in report.findings] == ["probe-incomplete"]
        assert "did not answer" in report.findings[0].message
        assert client.stalls == 1 and not wait_dead([old])
        report = engine.check(str(path), options=ProbeOptions(timeout=5.0))
        assert [f.code for f in report.findings] == ["feature-mismatch"]
        assert client.pid != old
    finally:
        client.close()


def test_malformed_results_are_named():
    good = {"findings": [], "tensors": [], "layers": [], "classes": [], "stats": {}}
    assert validate.result_problem(good) is None
    assert validate.result_problem({**good, "later_field": 1}) is None  # the contract only adds
    assert "missing" in validate.result_problem({"findings": []})
    bad_finding = {"code": "x", "path": "p", "span": ["a"], "message": "m", "related": [], "fixes": [], "owner": None}
    assert "result.findings[0].span[0]" in validate.result_problem({**good, "findings": [bad_finding]})
    assert "expected a list" in validate.result_problem({**good, "tensors": {}})
    assert validate.result_problem([1]) is not None
    assert validate.location(["p.py", 3]) == ["p.py", 3]
    assert validate.location(["p.py", "3"]) is None and validate.location("x") is None
