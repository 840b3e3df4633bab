"""Untrusted workspaces: no user code runs at all, yet literal checks still work."""

from __future__ import annotations

import textwrap

from helpers import locate

SOURCE = textwrap.dedent("""
    import torch
    import torch.nn as nn

    open({module_marker!r}, "w").write("ran")

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            open({init_marker!r}, "w").write("ran")
            self.attn = nn.MultiheadAttention(100, 8)

        def forward(self, x):
            return self.attn(x, x, x)[0]

    emb = nn.Embedding(50, 4)
    idx = torch.tensor([1, 60, 3])
    out = emb(idx)
""")


def test_untrusted_runs_no_user_code_but_checks_literals(workspace, tmp_path):
    init_marker, module_marker = tmp_path / "init_ran", tmp_path / "module_ran"
    path = workspace.write("m.py", SOURCE.format(init_marker=str(init_marker), module_marker=str(module_marker)))
    report = workspace.check("m.py", trusted=False)
    assert not init_marker.exists() and not module_marker.exists()
    got = {(f.code, f.range["start"]["line"], f.range["start"]["character"]) for f in report.findings}
    heads = locate(path, "nn.MultiheadAttention(100, 8)", "8")["start"]
    literal = locate(path, "idx = torch.tensor([1, 60, 3])", "60")["start"]
    assert got == {("invalid-layer-config", heads["line"], heads["character"]),
                   ("index-out-of-range", literal["line"], literal["character"])}
    assert report.shapes == []  # shapes need execution
    assert report.stats["trusted"] is False


def test_the_same_file_trusted_does_run_its_init(workspace, tmp_path):
    """The control for the test above: the marker mechanism really fires when code runs."""
    init_marker, module_marker = tmp_path / "init_ran", tmp_path / "module_ran"
    workspace.write("m.py", SOURCE.format(init_marker=str(init_marker), module_marker=str(module_marker)))
    report = workspace.check("m.py")
    # The class is probed: its __init__ runs, and the probe's sandbox refuses its write and says so.
    assert any(f"blocked open({str(init_marker)!r}) for writing" in f.message for f in report.findings), \
        [f.message for f in report.findings]
    assert not init_marker.exists()
    assert not module_marker.exists()  # module-level side effects never run, even when trusted
