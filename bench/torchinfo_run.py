"""Run torchinfo.summary on one benchmark model in this process and print one JSON line:
what users pay today (real weights, real forward). Used by bench/run.py in a subprocess."""

from __future__ import annotations

import importlib.util
import json
import resource
import sys
import time


def main() -> None:
    path, cap_gb = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 0
    if cap_gb:
        cap = int(cap_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    import torch
    import torchinfo

    spec = importlib.util.spec_from_file_location("bench_model", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    started = time.perf_counter()
    try:
        model = mod.MODEL(*mod.MODEL_ARGS)
        kind, shape, high = mod.INPUT
        x = torch.randint(0, high, shape) if kind == "long" else torch.randn(shape)
        torchinfo.summary(model, input_data=x, verbose=0, device="cpu")
        ok, error = True, None
    except (RuntimeError, MemoryError) as exc:
        ok, error = False, f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"ok": ok, "error": error, "seconds": elapsed, "peak_mb": peak_mb}))


if __name__ == "__main__":
    main()
