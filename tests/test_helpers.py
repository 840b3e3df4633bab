"""A probe child may not fork, so the probes it needs run for it (a fix's re-probe, the second
assumption of constructor arguments) are helper probes the worker forks on its request
(worker/children.py). They decide what forked copies of the child decided before; a request the
file's code forges fails only its own probe, or runs as sandboxed as the probe itself."""

from __future__ import annotations

import sys

import pytest

from helpers import shape_of
from support.procs import descendants
from test_assumed_args import LIBRARY
from test_breadth import errors, probe, text_at
from test_containment import forward_file

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="walks /proc (Linux)")

CHOOSE = """
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(16, 32)
        self.b = nn.Linear(64, 10)
        self.d = nn.Linear(64, 5)

    def forward(self, x):
        h = self.a(x)
        return self.b(h), self.d(h)


y = Net()(torch.zeros(2, 16))
"""


def test_the_fix_that_resolves_both_errors_is_chosen_by_helper_re_probes(workspace, worker):
    """Unverified, each error would keep its own fix on the layer taking 32 features; the
    re-probes show that one fix on self.a resolves both."""
    workspace.write("m.py", CHOOSE)
    report = workspace.check("m.py")
    (error,) = errors(report)
    assert text_at(workspace, error) == "32" and "self.a makes 32 features" in error.message
    assert [fix.title for fix in error.fixes] == ["Change out_features to 64"]
    assert any("this fix also resolves: self.d expects in_features=64" in r.message for r in error.related)
    assert report.stats["helper_probes"] >= 2
    assert not descendants(worker.pid), "a helper outlived its probe"


def test_an_assumed_argument_class_still_gets_its_second_assumption(workspace):
    report = probe(workspace, LIBRARY.replace("HEAD_IN", "dim * 2"))
    (error,) = errors(report)
    assert "second assumption gives the same mismatch" in error.message
    assert report.stats["helper_probes"] >= 1
    encoder = next(c for c in report.classes if c.name == "Encoder")
    assert set(encoder.assumed_args) == {"dim", "depth", "heads", "mlp_dim", "num_classes"}


# The file's code finds its channel to the worker (a socket; its dup is the crash dump's) and
# writes a request of its own.
FORGE_REQUEST = """
import stat
line = open(__file__).read().splitlines().index("m = Bad()") + 1  # the line a forged edit rewrites
channels = [fd for fd in range(3, 64) if os.path.exists(f"/proc/self/fd/{{fd}}")
            and stat.S_ISSOCK(os.fstat(fd).st_mode)]
os.write(channels[0], json.dumps({{"request": {request}}}).encode() + b"\\n")
{then}
"""


def test_a_malformed_request_fails_only_its_own_probe(workspace, worker):
    pid = worker.pid
    workspace.write("forge.py", forward_file(FORGE_REQUEST.format(
        request='{"op": "reprobe", "seq": 1, "seconds": "all", "edits": []}', then="time.sleep(2)")))
    report = workspace.check("forge.py")
    notes = [f for f in report.findings if f.code == "probe-incomplete"]
    assert len(notes) == 1 and "malformed request (request.seconds: expected a number" in notes[0].message, notes
    assert worker.pid == pid and worker.alive
    workspace.write("ok.py", "import torch\nx = torch.zeros(3, 4)\n")
    assert shape_of(workspace.check("ok.py"), "x").shape == [3, 4]


def test_a_forged_request_runs_only_as_another_sandboxed_probe(workspace, worker):
    """A well-formed forged re-probe whose edit turns a statement into `os.system`: the helper the
    worker forks for it is as confined as the probe (no marker), and the probe itself is unharmed."""
    marker = workspace.root / "marker"
    edit = {"path": "PATH", "span": "SPAN", "new_text": f"m = __import__('os').system('touch {marker}')"}
    request = repr({"op": "reprobe", "seq": 7, "seconds": 3.0, "edits": [edit]}).replace("'PATH'", "__file__") \
        .replace("'SPAN'", "[line, 0, line, 9]")
    wait = "select_fd = channels[0]\nimport select\nselect.select([select_fd], [], [], 3.0)\n" \
           "answer = json.loads(os.read(select_fd, 1 << 20).splitlines()[0])\nassert answer['seq'] == 7, answer"
    workspace.write("forge.py", forward_file(FORGE_REQUEST.format(request=request, then=wait)))
    report = workspace.check("forge.py")
    assert not [f for f in report.findings if "AssertionError" in f.message], report.findings
    assert shape_of(report, "z").shape == [3, 5]
    assert report.stats["helper_probes"] == 1
    assert not marker.exists()
    assert not descendants(worker.pid), "a helper outlived its probe"
