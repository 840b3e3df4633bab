"""Planning has a time budget and gives way: what was planned before the budget ran out is still
probed, with a note where planning stopped; a statement of hundreds of kilobytes is not analysed;
and in the language server a second document gets its diagnostics (and hovers their answers)
while a long plan of the first is under way. Real worker, real server over pipes; the budget's
clock is a counter where a test needs to know where planning stops."""

from __future__ import annotations

import itertools
import time

from support.rawlsp import LspClient, server_cmd

HEAD = "import torch\nimport torch.nn as nn\n\nx = torch.zeros(2, 3)\nlayer = nn.Linear(3, 4)\ny = layer(x)\n"


def chain(n: int) -> str:
    """The issue's slow case: a long run of `.view` calls, each one a question to Jedi."""
    return HEAD + "".join(f"z{i} = y.view(4, 2)\n" for i in range(n)) + "last = y.view(8)\n"


def tensors(report) -> dict[str, list[int]]:
    return {s.name: s.shape for s in report.shapes if s.kind == "tensor"}


def test_a_spent_budget_probes_what_was_planned_and_says_where_it_stopped(workspace, worker):
    from shapelens.analysis.budget import PlanBudget
    from shapelens.engine import Engine

    path = workspace.write("long.py", chain(300))
    ticks = itertools.count()
    budget = PlanBudget(25, clock=lambda: float(next(ticks)))  # 25 checks: past the head, not the chain
    engine = Engine(str(workspace.root), worker=worker)
    report = engine.submit(str(path), path.read_text(), budget=budget)[1].result(timeout=300)
    got = tensors(report)
    assert got.get("y") == [2, 4]  # planned before the budget ran out: it ran
    assert "last" not in got  # after it: not run
    notes = [f for f in report.findings if f.code == "probe-incomplete" and "budget" in f.message]
    assert len(notes) == 1
    stop_line = notes[0].range["start"]["line"] + 1
    assert 6 < stop_line < 300  # somewhere in the chain
    assert path.read_text().splitlines()[stop_line - 1].startswith("z")


def test_the_options_budget_bounds_a_real_plan(workspace):
    """The same through the options (what the CLI and the editor set): seconds of real time, so
    where it stops depends on the machine; 1,500 Jedi questions take far longer than 0.5 s."""
    path = workspace.write("long.py", chain(1500))
    report = workspace.check("long.py", plan_budget=0.5)
    notes = [f for f in report.findings if f.code == "probe-incomplete" and "budget" in f.message]
    assert len(notes) == 1
    # How far half a second gets depends on the machine's load; what was planned by then ran.
    if notes[0].range["start"]["line"] + 1 > 6:
        assert tensors(report).get("y") == [2, 4]
    assert "last" not in tensors(report)
    assert path.exists()


def test_a_huge_statement_is_not_analysed_and_the_rest_still_runs(workspace):
    literal = "data = [" + ", ".join(str(i) for i in range(60_000)) + "]\n"
    workspace.write("big.py", "import torch\n" + literal + "t = torch.zeros(3, 5)\n")
    report = workspace.check("big.py")
    assert tensors(report).get("t") == [3, 5]


def test_another_document_is_served_while_a_long_plan_runs(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'ws'\n")
    slow, quick = tmp_path / "slow.py", tmp_path / "quick.py"
    slow.write_text(chain(600))
    quick.write_text("import torch\n\nq = torch.zeros(3, 7)\nr = q.sum(0)\n")
    client = LspClient(server_cmd(), cwd=str(tmp_path))
    try:
        client.initialize(str(tmp_path), {"debounce": 0, "planBudget": 120})
        warm = tmp_path / "warm.py"
        warm.write_text("import torch\nw = torch.zeros(1)\n")
        _open(client, warm)
        client.wait_diagnostics(warm.as_uri(), 1, timeout=300)  # the worker is up
        _open(client, slow)
        time.sleep(0.5)  # its plan is under way (it takes many seconds)
        _open(client, quick)
        client.wait_diagnostics(quick.as_uri(), 1, timeout=300)
        assert slow.as_uri() not in client.published  # the quick document did not wait for it
        hover = client.request("textDocument/hover", {"textDocument": {"uri": quick.as_uri()},
                                                      "position": {"line": 2, "character": 0}}).result(timeout=60)
        assert hover[2] is None and "3, 7" in str(hover[1])  # answered from the quick document's probe
        assert slow.as_uri() not in client.published  # ... while the slow one still plans
        _, params = client.wait_diagnostics(slow.as_uri(), 1, timeout=600)  # and it is finished after all
        assert not any("budget" in d["message"] for d in params["diagnostics"])  # yielding is not running out
        assert "Traceback" not in client.server_log()
    finally:
        client.close()


def _open(client: LspClient, path) -> None:
    client.notify("textDocument/didOpen", {"textDocument": {"uri": path.as_uri(), "languageId": "python",
                                                             "version": 1, "text": path.read_text()}})


def test_an_untrusted_plan_has_the_budget_too(workspace, worker):
    from shapelens.analysis.budget import PlanBudget
    from shapelens.engine import Engine, ProbeOptions

    path = workspace.write("long.py", chain(300))
    ticks = itertools.count()
    report = Engine(str(workspace.root), worker=worker).submit(
        str(path), path.read_text(), ProbeOptions(trusted=False),
        budget=PlanBudget(25, clock=lambda: float(next(ticks))))[1].result(timeout=300)
    notes = [f for f in report.findings if f.code == "probe-incomplete" and "budget" in f.message]
    assert len(notes) == 1 and "not checked" in notes[0].message
