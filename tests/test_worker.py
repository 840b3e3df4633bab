"""The worker process: reused, isolated, memory flat on the meta device, and it survives
hangs, crashes and exits in user code."""

from __future__ import annotations

import textwrap

import pytest

from conftest import SAMPLES
from helpers import locate, shape_of


def test_one_worker_serves_every_probe(engine, worker):
    starts = worker.starts
    pid = worker.pid
    for name in ("seed000_ex1_simple_embedding.py", "seed001_ex1_word_embedding.py", "mha_embed_dim_mismatch.py"):
        engine.check(str(SAMPLES / name))
    assert worker.starts == starts and worker.pid == pid


def test_7b_definition_allocates_no_parameter_storage(engine):
    report = engine.check(str(SAMPLES / "llama_7b.py"))
    assert report.findings == []
    total = next(c for c in report.classes if c.name == "Llama").total_params
    assert total > 6.5e9
    assert report.stats["device"] == "meta"
    assert report.stats["param_storage_bytes"] == 0
    assert report.stats["peak_rss_kb"] < 1024 * 1024  # under 1 GB for 6.7B parameters
    assert shape_of(report, "logits").symbolic == "[B, T, 32000]"


HANG = textwrap.dedent("""
    import torch
    import torch.nn as nn

    class Spin(nn.Module):
        def forward(self, x):
            while True:
                x = x + 1

    m = Spin()
    y = m(torch.zeros(2))
""")


def test_a_hang_becomes_probe_incomplete_and_the_next_probe_works(workspace):
    path = workspace.write("hang.py", HANG)
    report = workspace.check("hang.py", timeout=1.0)
    assert [f.code for f in report.findings] == ["probe-incomplete"]
    assert report.findings[0].range["start"]["line"] == locate(path, "x = x + 1", "x")["start"]["line"]
    assert "timed out" in report.findings[0].message
    workspace.write("ok.py", "import torch\nx = torch.zeros(3, 4)\n")
    assert shape_of(workspace.check("ok.py"), "x").shape == [3, 4]


@pytest.mark.parametrize("call", ["os.abort()", "sys.exit(3)", "os._exit(1)", "ctypes.string_at(0)"])
def test_a_crash_or_exit_in_user_code_is_survived(workspace, call):
    path = workspace.write("crash.py", textwrap.dedent(f"""
        import os, sys, ctypes
        import torch
        import torch.nn as nn

        class Boom(nn.Module):
            def forward(self, x):
                {call}
                return x

        m = Boom()
        y = m(torch.zeros(2))
    """))
    report = workspace.check("crash.py")
    assert [f.code for f in report.findings] == ["probe-incomplete"]
    assert report.findings[0].severity == "information"
    assert report.findings[0].range["start"]["line"] == locate(path, call, call[:2])["start"]["line"]
    workspace.write("ok.py", "import torch\nx = torch.zeros(3, 4)\n")
    assert shape_of(workspace.check("ok.py"), "x").shape == [3, 4]


def test_memory_blowup_on_cpu_is_contained(workspace):
    workspace.write("big.py", "import torch\nx = torch.empty(10**12)\ny = torch.zeros(2, 2)\n")
    report = workspace.check("big.py", device="cpu", memory_mb=512)
    assert [f.code for f in report.findings] == ["probe-incomplete"]
    assert "memory" in report.findings[0].message
    assert shape_of(report, "y").shape == [2, 2]


def test_cpu_device_gives_the_same_finding(workspace):
    workspace.write("m.py", (SAMPLES / "seed000_ex2_mismatched_embedding.py").read_text())
    report = workspace.check("m.py", device="cpu")
    assert [f.code for f in report.findings] == ["feature-mismatch"]
    assert report.stats["device"] == "cpu"
    assert shape_of(report, "projected").shape == [1, 10, 256]


def _cuda_available() -> bool:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
                         capture_output=True, text=True)
    return out.stdout.strip() == "True"


@pytest.mark.skipif(not _cuda_available(), reason="needs a CUDA GPU visible to torch")
def test_cuda_device(workspace):
    workspace.write("m.py", (SAMPLES / "seed000_ex2_mismatched_embedding.py").read_text())
    report = workspace.check("m.py", device="cuda")
    assert report.stats["device"] == "cuda"
    assert [f.code for f in report.findings] == ["feature-mismatch"]


def test_cuda_request_without_a_gpu_falls_back_with_a_note(workspace):
    if _cuda_available():
        pytest.skip("a GPU is present; the fallback only happens without one")
    workspace.write("m.py", "import torch\nx = torch.zeros(2, 3)\n")
    report = workspace.check("m.py", device="cuda")
    assert report.stats["device"] == "meta"
    assert any("CUDA is not available" in f.message for f in report.findings)
