"""The static filter holds against every escape form of tests/escapes.py, in a trusted workspace,
through the real CLI and the real language server; a legitimate tensor-pure file still runs."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from escapes import FORMS, LINKS, OUTSIDE, PYPROJECT, SUPPORT
from support.rawlsp import LspClient, server_cmd

CONTROL = """import torch
import torch.nn as nn

x = torch.randn(2, 4)
layer = nn.Linear(4, 3)
y = layer(x)


class Ran(nn.Module):
    def __init__(self):
        super().__init__()
        open({marker!r}, "w").close()  # a model's own code runs: the marker mechanism works
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)
"""


class Payload:
    """Unpickling it writes a marker (what `torch.load(weights_only=False)` would do)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def escapes(tmp_path_factory):
    return build_workspace(tmp_path_factory.mktemp("escapes"))


def build_workspace(base: Path) -> tuple[Path, Path, Path]:
    """The workspace of every form (ws/forms/<form>.py), the folder outside it, the markers'."""
    ws, outside, markers = base / "ws", base / "outside", base / "markers"
    for d in (ws, outside, markers):
        d.mkdir()
    fill = {"outside": str(outside), "pickle": str(outside / "payload.pt")}
    (outside / "payload.pt").write_bytes(pickle.dumps(Payload(str(markers / "pickle"))))
    (ws / "pyproject.toml").write_text(PYPROJECT.format(m=markers / "pyproject_init"))
    for name, text in FORMS.items():
        path = ws / "forms" / f"{name}.py" if "/" not in name else ws / f"{name}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.format(m=markers / name.replace("/", "-"), **fill))
    for spec, text in SUPPORT.items():
        rel, _, form = spec.partition(":")
        target = ws / rel if "/" in rel else ws / "forms" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text.format(m=markers / form.replace("/", "-")))
    for rel, (text, _) in OUTSIDE.items():
        target = outside / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text.format(m=markers / ("outside-" + rel.replace("/", "-"))))
    for name, rel in LINKS.items():
        (ws / "forms" / name).symlink_to(outside / rel, target_is_directory=True)
    control_marker = base / "control_ran"
    (ws / "control.py").write_text(CONTROL.format(marker=str(control_marker)))
    return ws, markers, control_marker


# These tests are about the static filter: with the probe's sandbox on, no marker could be
# written whatever the filter let through (tests/test_sandbox.py tests that layer).
FILTER_ONLY = {"SHAPELENS_SANDBOX": "off"}


def _ran(markers: Path) -> list[str]:
    return sorted(p.name for p in markers.iterdir())


def test_no_escape_form_runs_through_the_cli(escapes):
    ws, markers, control_marker = escapes
    proc = subprocess.run([sys.executable, "-m", "shapelens", "check", str(ws), "--format", "json", "--exit-zero"],
                          capture_output=True, text=True, cwd=str(ws), timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "server"), **FILTER_ONLY})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _ran(markers) == []
    files = {Path(f["path"]).name: f for f in json.loads(proc.stdout)["files"]}
    # The control: a tensor-pure file still runs (its shapes are found, its model is built).
    tensors = {s["name"]: s["shape"] for s in files["control.py"]["shapes"] if s["kind"] == "tensor"}
    assert tensors.get("y") == [2, 3]
    assert control_marker.exists()
    checked = {Path(f["path"]).stem for f in json.loads(proc.stdout)["files"]}
    assert {n.rsplit("/", 1)[-1] for n in FORMS} <= checked  # every form was really probed


def test_no_escape_form_runs_through_the_language_server(escapes, monkeypatch):
    ws, markers, _ = escapes
    monkeypatch.setenv("SHAPELENS_SANDBOX", "off")  # (FILTER_ONLY)
    client = LspClient(server_cmd(), cwd=str(ws))
    try:
        client.initialize(str(ws), {"debounce": 0, "trusted": True})
        uris = []
        for name in FORMS:
            path = ws / "forms" / f"{name}.py" if "/" not in name else ws / f"{name}.py"
            uri = path.as_uri()
            client.notify("textDocument/didOpen", {"textDocument": {
                "uri": uri, "languageId": "python", "version": 1, "text": path.read_text()}})
            uris.append(uri)
        for uri in uris:
            client.wait_diagnostics(uri, 1, timeout=300)
        assert "Traceback" not in client.server_log()
    finally:
        client.close()
    assert _ran(markers) == []


def test_torch_entry_points_are_refused_by_the_allow_list():
    """The loaders that need a native library or a TorchScript file to show a marker: the plan
    itself refuses them, so nothing of them runs."""
    from shapelens.analysis.allowlist import torch_allowed

    for name in ("torch.jit.load", "torch.jit._serialization.load", "torch.ops.load_library",
                 "torch.classes.load_library", "torch.load", "torch.serialization.load", "torch.from_file",
                 "torch.utils.collect_env.run", "torch.hub.load", "torch.compile", "torch.PyTorchFileWriter",
                 "torch.Tensor.untyped_storage", "torch.UntypedStorage.from_file"):
        assert not torch_allowed(name), name
    for name in ("torch.zeros", "torch.nn.modules.linear.Linear", "torch.nn.functional.relu",
                 "torch.functional.einsum", "torch.float32", "torch.random.manual_seed", "torch.linalg.norm"):
        assert torch_allowed(name, kind="function"), name
    assert torch_allowed("torch.Size", kind="class") and not torch_allowed("torch.CompilationUnit", kind="class")
