"""What the probe child's sandbox costs: the same probe requests with SHAPELENS_SANDBOX on and
off, in one worker each (median wall time per probe in the worker, planning excluded). Run: `.venv/bin/python bench/sandbox.py`."""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = ["seed000_ex2_mismatched_embedding.py", "mha_embed_dim_mismatch.py", "llama_7b.py"]


def measure(runs: int) -> dict[str, dict[str, float]]:
    """Both workers up at once, their probes alternated, so a change of machine load hits both."""
    from shapelens.engine import Engine, ProbeOptions
    from shapelens.probe.client import WorkerClient

    workers = {}
    for mode in ("off", "on"):
        os.environ["SHAPELENS_SANDBOX"] = mode  # read by the worker's children: fixed at its start
        workers[mode] = WorkerClient()
        workers[mode].start()
    engine = Engine(str(ROOT), worker=workers["off"])
    options = ProbeOptions().to_json()
    out: dict[str, dict[str, float]] = {}
    try:
        for name in FILES:
            path = str(ROOT / "samples" / name)
            plan, _ = engine._plan(path, Path(path).read_text(), True)
            request = {**plan.to_json(), "skip_classes": []}  # every class probed, every time
            times: dict[str, list[float]] = {"off": [], "on": []}
            for worker in workers.values():
                worker.probe(request, options)  # warm: the worker's lazy imports
            for _ in range(runs):
                for mode, worker in workers.items():
                    started = time.perf_counter()
                    assert worker.probe(request, options)["ok"]
                    times[mode].append((time.perf_counter() - started) * 1000)
            out[name] = {mode: statistics.median(t) for mode, t in times.items()}
    finally:
        for worker in workers.values():
            worker.close()
    return out


def entering(runs: int) -> list[float]:
    """ms that sandbox.enter takes in a freshly forked child of a process holding torch (what
    each probe child pays before it runs user code), load-insensitive next to whole probes."""
    import torch  # noqa: F401 — a child of a torch process, as in the worker

    from shapelens.probe.worker import sandbox

    os.environ["SHAPELENS_SANDBOX"] = "on"
    sandbox.prepare()
    out = []
    for _ in range(runs):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            started = time.perf_counter()
            sandbox.enter(write, set())
            os.write(write, f"{(time.perf_counter() - started) * 1000:.3f}".encode())
            os._exit(0)
        os.close(write)
        out.append(float(os.read(read, 64)))
        os.close(read)
        os.waitpid(pid, 0)
        sandbox.discard(pid)
    return out


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    enter = entering(15)
    print(f"sandbox.enter: median {statistics.median(enter):.1f} ms (min {min(enter):.1f}, max {max(enter):.1f})")
    figures = measure(runs)
    print(f"load average {os.getloadavg()[0]:.2f}, {runs} runs each, alternated, median ms per probe")
    for name, got in figures.items():
        print(f"  {name:44s} off {got['off']:7.1f}  on {got['on']:7.1f}  ({got['on'] - got['off']:+.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
