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


def measure(mode: str, runs: int) -> dict[str, float]:
    from shapelens.engine import Engine, ProbeOptions
    from shapelens.probe.client import WorkerClient

    os.environ["SHAPELENS_SANDBOX"] = mode
    worker = WorkerClient()
    worker.start()
    engine = Engine(str(ROOT), worker=worker)
    out = {}
    try:
        for name in FILES:
            path = str(ROOT / "samples" / name)
            plan, _ = engine._plan(path, Path(path).read_text(), True)
            request = {**plan.to_json(), "skip_classes": []}  # every class probed, every time
            options = ProbeOptions().to_json()
            worker.probe(request, options)  # warm: the worker's lazy imports
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                assert worker.probe(request, options)["ok"]
                times.append((time.perf_counter() - started) * 1000)
            out[name] = statistics.median(times)
    finally:
        worker.close()
    return out


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    off, on = measure("off", runs), measure("on", runs)
    print(f"load average {os.getloadavg()[0]:.2f}, {runs} runs each, median ms per probe")
    for name in FILES:
        print(f"  {name:44s} off {off[name]:7.1f}  on {on[name]:7.1f}  ({on[name] - off[name]:+.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
