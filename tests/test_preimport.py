"""Installed packages a probe imports are imported once, in the worker before it forks, so every
probe child inherits them (a CLI batch of transformers files, or each edit in the editor, does
not import transformers again) — and nothing of the workspace is ever imported that way.

Each fake installed package below records the pid of every process that imports it, which
tells the worker (the parent) from its probe children without any timing."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from shapelens.engine import Engine, ProbeOptions
from shapelens.probe.client import WorkerClient

RECORDS = textwrap.dedent("""\
    import os
    with open(os.environ["SHAPELENS_TEST_IMPORT_LOG"], "a") as f:
        f.write(f"{__name__} {os.getpid()}\\n")
    WIDTH = 8
    """)

MODEL = textwrap.dedent("""\
    import torch
    import torch.nn as nn
    import {dep}
    from {dep} import WIDTH


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(WIDTH, 4)

        def forward(self, x):
            return self.fc(x)


    net = Net()
    y = net(torch.zeros(2, 8))
    """)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("preimport")
    site = base / "lib" / "site-packages"
    for name in ("sl_dep_batch", "sl_dep_shadowed", "sl_dep_untrusted"):
        (site / name).mkdir(parents=True)
        (site / name / "__init__.py").write_text(RECORDS)
    # An installed package that reaches for a workspace module (the workspace is on PYTHONPATH).
    (site / "sl_dep_reaching").mkdir()
    (site / "sl_dep_reaching" / "__init__.py").write_text(RECORDS + "import sl_ws_helper\n")
    ws = base / "ws"
    ws.mkdir()
    (ws / "pyproject.toml").write_text("[project]\nname = 'ws'\n")
    marker = base / "helper-ran"
    (ws / "sl_ws_helper.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\nHELPER = 1\n")
    (ws / "sl_dep_shadowed.py").write_text("WIDTH = 8\n")  # the workspace's own module of that name
    log = base / "imports.log"
    log.write_text("")
    old = {k: os.environ.get(k) for k in ("PYTHONPATH", "SHAPELENS_TEST_IMPORT_LOG", "SHAPELENS_SANDBOX")}
    os.environ["PYTHONPATH"] = os.pathsep.join([str(site), str(ws)])
    os.environ["SHAPELENS_SANDBOX"] = "off"  # the fake packages log from the probe child: a file write
    os.environ["SHAPELENS_TEST_IMPORT_LOG"] = str(log)
    # The fake packages write their log from the probe children too, which the sandbox forbids.
    os.environ["SHAPELENS_SANDBOX"] = "off"
    worker = WorkerClient()
    worker.start()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    yield ws, log, marker, worker
    worker.close()


def importers(log: Path, name: str) -> list[int]:
    return [int(line.split()[1]) for line in log.read_text().splitlines() if line.split()[0] == name]


def probe(ws: Path, worker: WorkerClient, name: str, text: str, **options):
    path = ws / name
    path.write_text(text)
    return Engine(str(ws), worker=worker).check(str(path), text, ProbeOptions(**options) if options else None)


def test_a_batch_imports_an_installed_package_once_in_the_worker(setup):
    ws, log, _, worker = setup
    for i in range(3):
        report = probe(ws, worker, f"m{i}.py", MODEL.format(dep="sl_dep_batch"))
        assert report.error_count == 0, report.findings
        assert any(s.name == "y" and s.shape == [2, 4] for s in report.shapes)
    assert importers(log, "sl_dep_batch") == [worker.pid]  # the parent, once; no child again


def test_a_workspace_module_of_the_same_name_is_never_imported_by_the_worker(setup):
    ws, log, _, worker = setup
    report = probe(ws, worker, "shadow.py", MODEL.format(dep="sl_dep_shadowed"))
    assert report.error_count == 0, report.findings
    assert importers(log, "sl_dep_shadowed") == []  # the workspace's file won, through its plan


def test_an_untrusted_probe_imports_nothing(setup):
    ws, log, _, worker = setup
    probe(ws, worker, "untrusted.py", MODEL.format(dep="sl_dep_untrusted"), trusted=False)
    assert importers(log, "sl_dep_untrusted") == []


def test_a_package_reaching_for_a_workspace_module_is_left_to_the_child(setup):
    ws, log, marker, worker = setup
    report = probe(ws, worker, "reach.py", MODEL.format(dep="sl_dep_reaching"))
    pids = importers(log, "sl_dep_reaching")
    # The worker's attempt was refused at the workspace import and rolled back; the child then
    # imported the package itself, where the workspace module loads only through its plan.
    assert pids[0] == worker.pid and len(pids) >= 2 and worker.pid not in pids[1:]
    assert not marker.exists(), "a workspace module ran outside its plan"
    assert report is not None
