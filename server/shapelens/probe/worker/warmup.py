"""The worker's warm-up: loading torch's lazily imported parts while the worker is idle (after
`ready`), so that a probe forked later starts warm and one forked sooner is not kept waiting."""

from __future__ import annotations

import sys

import torch
from torch import nn

from shapelens import timing

WARMING: list = []  # warm-up steps not taken yet
# A worker told it serves one probe (the CLI's one file) takes none: each step costs more than a
# cold probe loses (meta_layers alone takes ~0.7 s), and the worker ends after that probe.
SKIPPED = [False]


def skip() -> None:
    WARMING.clear()
    SKIPPED[0] = True


def cold() -> bool:
    """A probe forked now loads torch's lazy parts itself (it gets more time for it)."""
    return bool(WARMING) or SKIPPED[0]


def warm_up_steps() -> list:
    """The steps, each short enough that a probe arriving meanwhile waits little."""
    def meta_layers() -> None:
        with torch.device("meta"):
            x = torch.randint(0, 10, (2, 3))
            e = nn.Embedding(10, 8)(x)
            attn = nn.MultiheadAttention(8, 2, batch_first=True)
            attn(e, e, e)
            nn.Conv2d(3, 4, 3)(torch.randn(1, 3, 8, 8))
            nn.LayerNorm(8)(nn.Linear(8, 8)(e))
            nn.LSTM(8, 8, batch_first=True)(e)

    def probe_layers() -> None:
        from shapelens.probe.worker import run

        run.warm_up()  # the layers and ops the probe's checks reach (BatchNorm imports torch._dynamo)

    return [meta_layers, probe_layers]


def warm_now(steps: int | None = None) -> None:
    """The warm-up steps not taken yet (at most `steps` of them), now."""
    while WARMING and (steps is None or steps > 0):
        steps = None if steps is None else steps - 1
        try:
            timing.mark("worker: warm-up step")
            WARMING.pop(0)()
        except Exception as exc:  # noqa: BLE001 — a cold probe is slower, never wrong
            print(f"shapelens worker: warm-up step failed: {exc}", file=sys.stderr)
