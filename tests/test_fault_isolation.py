"""One model's fault never hides another's findings: a class whose forward hangs is reported
where it hangs, and the file's other class still gets its mismatch (engine, CLI and LSP)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from helpers import locate
from support.rawlsp import LspClient, server_cmd

WIDE = """
class Wide(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(8, 16)
        self.b = nn.Linear(32, 4)

    def forward(self, x):
        return self.b(self.a(x))
"""
SPIN = """
class Spin(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        x = self.fc(x)
        while True:
            x = x + 1
"""


def source(spin_last: bool) -> str:
    # Classes are probed last-defined first: with Spin last, it would take the whole time limit.
    body = WIDE + SPIN if spin_last else SPIN + WIDE
    return "import torch\nimport torch.nn as nn\n" + textwrap.dedent(body)


def expected(path) -> set[tuple[str, int]]:
    return {("feature-mismatch", locate(path, "self.b = nn.Linear(32, 4)", "32")["start"]["line"]),
            ("probe-incomplete", locate(path, "x = x + 1", "x")["start"]["line"])}


@pytest.mark.parametrize("spin_last", [True, False])
def test_a_hang_beside_a_mismatch_reports_both(workspace, spin_last):
    path = workspace.write("two.py", source(spin_last))
    report = workspace.check("two.py", timeout=2.0)
    got = {(f.code, f.range["start"]["line"]) for f in report.findings}
    assert got == expected(path), report.findings
    hang = next(f for f in report.findings if f.code == "probe-incomplete")
    assert "timed out" in hang.message


def test_a_hang_beside_a_mismatch_reports_both_in_the_cli(tmp_path):
    path = tmp_path / "two.py"
    path.write_text(source(True))
    out = subprocess.run([sys.executable, "-m", "shapelens", "check", "--format", "json", "--timeout", "2",
                          str(path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stderr
    found = {(d["code"], d["range"]["start"]["line"]) for f in json.loads(out.stdout)["files"]
             for d in f["diagnostics"]}
    assert found == expected(path)


def test_a_hang_beside_a_mismatch_reports_both_over_lsp(tmp_path):
    path = tmp_path / "two.py"
    path.write_text(source(True))
    client = LspClient(server_cmd(), cwd=str(tmp_path))
    try:
        client.initialize(str(tmp_path), {"debounce": 0, "probeTimeout": 2})
        uri = path.as_uri()
        client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                                 "text": path.read_text()}})
        _, params = client.wait_diagnostics(uri, 1, timeout=120)
    finally:
        client.close()
    assert {(d["code"], d["range"]["start"]["line"]) for d in params["diagnostics"]} == expected(path)
