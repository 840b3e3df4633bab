"""The process that answers the editor never imports torch: only the worker does."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT, SAMPLES

PROGRAM = f"""
import sys
import importlib.util
import shapelens.cli, shapelens.cli.check, shapelens.engine, shapelens.analysis.plan, shapelens.report.build
import shapelens.probe.client, shapelens.probe.protocol, shapelens.report.codes
if importlib.util.find_spec("shapelens.lsp.server"):
    import shapelens.lsp.server
from shapelens.engine import Engine
engine = Engine({str(ROOT)!r})
# A whole plan (Jedi resolves the torch calls) and a whole probe, seen from this process.
report = engine.check({str(SAMPLES / "seed000_ex2_mismatched_embedding.py")!r})
assert [f.code for f in report.findings] == ["feature-mismatch"], report.findings
engine.close()
print("torch" in sys.modules)
"""


def test_editor_side_never_imports_torch():
    out = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
