"""The client's pipes to the worker: answers coming back while a large request is being written
must never deadlock. A request bigger than a pipe holds blocks until the worker reads it; the
worker writes an answer whole before it reads again, so the client's reader must be able to take
answers while another thread is inside that write (the CLI hung so on 30 transformers files)."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

WIDE = "import torch\nimport torch.nn as nn\n\n\nclass Tower(nn.Module):\n    def __init__(self):\n" \
       "        super().__init__()\n        self.layers = nn.Sequential(\n" + \
       "".join(f"            nn.Linear({16 + i}, {17 + i}),\n" for i in range(60)) + \
       "        )\n\n    def forward(self, x):\n        return self.layers(x)\n\n\n" \
       "y = Tower()(torch.randn(2, 16))\n"
PADDING = "# " + "a long comment that makes the request larger than a pipe holds " * 17000 + "\n"


@pytest.fixture
def own_worker():
    from shapelens.probe.client import WorkerClient

    client = WorkerClient()
    client.start()
    yield client
    client.close()


def test_answers_that_arrive_while_a_large_request_is_written_are_all_taken(tmp_path, own_worker):
    from shapelens.engine import Engine, ProbeOptions

    assert len(PADDING) > 1 << 20  # the request is 16 times a Linux pipe's 64 KiB
    engine = Engine(str(tmp_path), worker=own_worker)
    options = ProbeOptions(timeout=30)
    paths = []
    for i in range(4):
        paths.append(tmp_path / f"m{i}.py")
        paths[-1].write_text(WIDE)
    big = tmp_path / "big.py"
    big.write_text(WIDE + PADDING)
    assert engine.submit(str(paths[0]), WIDE, options)[1].result(timeout=60).shapes  # warm

    # Three probes start; the worker is stopped before it can send their answers (each ~200 KB),
    # so they wait in it while another thread writes the large request into a full pipe.
    futures = [engine.submit(str(p), WIDE, options)[1] for p in paths[1:]]
    time.sleep(0.05)
    os.kill(own_worker.pid, signal.SIGSTOP)
    try:
        time.sleep(1.0)  # the probe children finish meanwhile
        writer = threading.Thread(target=lambda: futures.append(engine.submit(str(big), big.read_text(), options)[1]))
        writer.start()
        time.sleep(0.3)
    finally:
        os.kill(own_worker.pid, signal.SIGCONT)
    writer.join(timeout=60)
    assert not writer.is_alive(), "the request was never written: client and worker deadlocked"
    reports = [f.result(timeout=60) for f in futures]
    for report in reports:
        assert not [f for f in report.findings if f.severity == "error"]
        assert len([s for s in report.shapes if s.kind == "layer" and s.output_shape is not None]) >= 60
    assert own_worker.starts == 1  # answered, not rescued by the watchdog's restart
