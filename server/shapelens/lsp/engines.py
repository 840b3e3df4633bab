"""The probe worker of one interpreter and the engines (one per workspace root) that share it."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from shapelens.engine import Engine, ProbeOptions, find_root
from shapelens.probe.client import WorkerClient

# Loads the torch name table (from disk, or the worker) and Jedi before the first document.
WARM_UP = "import torch\nfrom torch import nn\n\nlayer = nn.Linear(4, 8)\nx = torch.zeros(2, 4)\ny = layer(x)\n"


class Engines:
    def __init__(self, python: str | None, roots: list[str]) -> None:
        self.python = python
        self.roots = sorted({os.path.realpath(r) for r in roots}, key=len, reverse=True)
        self.worker = WorkerClient(python)
        self.ready = False  # the worker imported torch and answered (set on the event loop)
        # Planning runs Jedi (its caches are not thread-safe) and sets the resolver's overlay, so
        # one thread plans, in order, off the event loop.
        self.planner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shapelens-plan")
        self._engines: dict[str, Engine] = {}
        # Plans queued behind the one running: while there are any, a long plan gives way.
        self._waiting = 0
        self._waiting_lock = threading.Lock()

    def engine_for(self, path: str) -> Engine:
        """Planner thread only."""
        root = next((r for r in self.roots if path.startswith(r + os.sep)), None) or find_root(path)
        if root not in self._engines:
            self._engines[root] = Engine(root, self.python, worker=self.worker)
        return self._engines[root]

    def submit(self, path: str, text: str, options: ProbeOptions,
               preempt: Callable[[], bool] | None = None) -> tuple[Engine, int | None, Future]:
        """Planner thread only: plan, then hand the probe to the worker."""
        engine = self.engine_for(path)
        req_id, fut = engine.submit(path, text, options, preempt)
        return engine, req_id, fut

    def queued(self, change: int) -> None:
        """A plan joined (+1) or left (-1) the planner's queue."""
        with self._waiting_lock:
            self._waiting += change

    def others_waiting(self) -> bool:
        return self._waiting > 0

    def warm_up(self) -> None:
        """Planner thread only: load the torch name table before the first document."""
        root = self.roots[-1] if self.roots else os.getcwd()
        path = os.path.join(root, "__shapelens_warm_up__.py")
        self.engine_for(path).plan(path, WARM_UP)

    def close(self) -> None:
        self.planner.shutdown(wait=False, cancel_futures=True)
        self.worker.close()
