"""The editor-side handle on the probe worker. Torch-free: it only speaks JSON lines to a
subprocess running `python -m shapelens.probe.worker` in the user's interpreter."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])  # the folder holding `shapelens/`


class WorkerUnavailable(RuntimeError):
    """The worker could not start (no torch in that interpreter, a bad interpreter path...)."""


class WorkerClient:
    """One long-lived worker process; each probe is a request, answered by a forked child."""

    def __init__(self, python: str | None = None, on_log: Callable[[str], None] | None = None,
                 start_timeout: float = 120.0) -> None:
        self.python = python or sys.executable
        self.on_log = on_log
        self.start_timeout = start_timeout
        self.starts = 0  # how many worker processes this client has started (tests check reuse)
        self.info: dict = {}
        self.log: collections.deque[str] = collections.deque(maxlen=400)
        self._proc: subprocess.Popen | None = None
        self._lock = threading.RLock()
        self._pending: dict[int, Future] = {}
        self._next = 0
        self._ready = threading.Event()
        self._start_error: str | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        with self._lock:
            if self.alive:
                return
            env = dict(os.environ)
            # The worker needs only torch in that interpreter: it imports shapelens from here.
            env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_PARENT, env.get("PYTHONPATH")) if p)
            env["PYTHONUNBUFFERED"] = "1"
            # Never let a file in the workspace shadow a module the worker imports (`python -m`
            # would put the current folder first on sys.path): start elsewhere, in safe-path mode.
            env["PYTHONSAFEPATH"] = "1"
            self._ready.clear()
            self._start_error = None
            try:
                self._proc = subprocess.Popen(
                    [self.python, "-m", "shapelens.probe.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, env=env, start_new_session=True, cwd=tempfile.gettempdir(),
                )
            except OSError as exc:
                raise WorkerUnavailable(f"cannot start the probe worker with {self.python}: {exc}") from exc
            self.starts += 1
            proc = self._proc
            threading.Thread(target=self._read_stdout, args=(proc,), daemon=True, name="shapelens-worker-out").start()
            threading.Thread(target=self._read_stderr, args=(proc,), daemon=True, name="shapelens-worker-err").start()
        if not self._ready.wait(self.start_timeout) or self._start_error:
            tail = "\n".join(list(self.log)[-8:])
            self.close()
            raise WorkerUnavailable(self._start_error or f"the probe worker did not start in time\n{tail}")

    def close(self) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin:
                proc.stdin.write(b'{"op": "shutdown"}\n')
                proc.stdin.close()
        except (OSError, ValueError):
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    # -- requests ------------------------------------------------------------------------------
    def submit(self, plan: dict, options: dict) -> tuple[int, Future]:
        if not self.alive:
            self.start()
        with self._lock:
            self._next += 1
            req_id = self._next
            fut: Future = Future()
            self._pending[req_id] = fut
            self._send({"id": req_id, "op": "probe", "plan": plan, "options": options})
        return req_id, fut

    def cancel(self, req_id: int) -> None:
        with self._lock:
            if req_id in self._pending and self.alive:
                self._send({"op": "cancel", "id": req_id})

    def probe(self, plan: dict, options: dict) -> dict:
        _, fut = self.submit(plan, options)
        return fut.result()

    def _send(self, msg: dict) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write((json.dumps(msg) + "\n").encode())
            self._proc.stdin.flush()
        except (OSError, ValueError):
            self._fail_all("the probe worker stopped")

    # -- reading -------------------------------------------------------------------------------
    def _read_stdout(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            try:
                msg = json.loads(raw)
            except ValueError:
                self._log(f"worker: unreadable line {raw[:200]!r}")
                continue
            if msg.get("event") == "ready":
                self.info = msg
                self._ready.set()
                continue
            with self._lock:
                fut = self._pending.pop(msg.get("id"), None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
        code = proc.wait()
        if not self._ready.is_set():
            tail = "\n".join(list(self.log)[-6:])
            self._start_error = f"the probe worker exited with status {code} before it was ready:\n{tail}"
            self._ready.set()
        if self._proc is proc or self._proc is None:
            self._fail_all(f"the probe worker exited with status {code}")

    def _read_stderr(self, proc: subprocess.Popen) -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            self._log(raw.decode("utf-8", "replace").rstrip())

    def _log(self, line: str) -> None:
        self.log.append(line)
        if self.on_log:
            try:
                self.on_log(line)
            except Exception:  # noqa: BLE001
                pass

    def _fail_all(self, why: str) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_result({"ok": False, "crashed": why, "error": why})
