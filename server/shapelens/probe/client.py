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
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from shapelens import timing
from shapelens.probe import watchdog

PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])  # the folder holding `shapelens/`


OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "DIFFUSERS_OFFLINE": "1", "TORCH_HUB_OFFLINE": "1"}


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
        self.info: dict = {}  # the worker's `ready` message (torch version, pid, ...)
        self.hello: dict = {}  # its `hello`, sent before it imports torch (where torch is)
        self._hello = threading.Event()
        self.log: collections.deque[str] = collections.deque(maxlen=400)
        self._proc: subprocess.Popen | None = None
        self._lock = threading.RLock()
        # Writes to the worker's stdin, one message at a time. Never taken with `_lock` held: a
        # large request blocks on a full pipe until the worker reads, and the worker reads only
        # after the reader thread (which needs `_lock`) has taken its answers.
        self._write_lock = threading.Lock()
        self._pending: dict[int, Future] = {}
        self._next = 0
        self._ready = threading.Event()
        self._start_error: str | None = None
        self._timeouts: dict[int, float] = {}  # the time limit of each pending probe (the watchdog's)
        self._spoke = self._sent = time.monotonic()  # when the worker last said / was last sent anything
        self._abandoned: set[subprocess.Popen] = set()  # killed by the watchdog: their readers stay quiet
        self.stalls = 0  # workers the watchdog killed

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, wait: bool = True) -> None:
        """Start the worker process; with `wait`, until it is ready (torch imported). Without,
        the caller plans meanwhile and `submit` waits for readiness."""
        self._spawn_once()
        if wait:
            self.wait_ready()

    def _spawn_once(self) -> None:
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
            # The sandbox refuses the network; offline mode makes the hub libraries give up at
            # once (`from_pretrained("bert-base-uncased")` retried until the probe timed out).
            env.update(OFFLINE_ENV)
            self._ready.clear()
            self._hello.clear()
            self._start_error = None
            try:
                self._proc = subprocess.Popen(
                    [self.python, "-m", "shapelens.probe.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, env=env, start_new_session=True, cwd=tempfile.gettempdir(),
                )
            except OSError as exc:
                raise WorkerUnavailable(f"cannot start the probe worker with {self.python}: {exc}") from exc
            self.starts += 1
            timing.mark("client: worker spawned")
            proc = self._proc
            threading.Thread(target=self._read_stdout, args=(proc,), daemon=True, name="shapelens-worker-out").start()
            threading.Thread(target=self._read_stderr, args=(proc,), daemon=True, name="shapelens-worker-err").start()
            watchdog.watch(proc, lambda: self._quiet(proc), lambda: self._ping(proc),
                           lambda quiet: self._stalled(proc, quiet), self._restart)

    def wait_ready(self) -> None:
        if not self._ready.wait(self.start_timeout) or self._start_error:
            tail = "\n".join(list(self.log)[-8:])
            self.close()
            raise WorkerUnavailable(self._start_error or f"the probe worker did not start in time\n{tail}")

    def close(self, wait: bool = True) -> None:
        """Shut the worker down. Without `wait`, return at once (the CLI prints its output while
        the worker exits): the worker ends on the shutdown message, or on the end of its input
        should this process die first, so none outlives it either way."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is None:
            return
        # Not inside another thread's half-written request: wait for it, a little.
        locked = self._write_lock.acquire(timeout=5)
        try:
            if locked and proc.stdin:
                proc.stdin.write(b'{"op": "shutdown"}\n')
                proc.stdin.close()
        except (OSError, ValueError):
            pass
        finally:
            if locked:
                self._write_lock.release()
        if not locked:  # a write stuck on a worker that does not read: it cannot shut down by itself
            proc.kill()
        if not wait:
            return
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    # -- requests ------------------------------------------------------------------------------
    def submit(self, plan: dict, options: dict) -> tuple[int, Future]:
        return self.request("probe", plan=plan, options=options)

    def request(self, op: str, **fields) -> tuple[int, Future]:
        """Send one request; the future resolves to the worker's answer."""
        self.start()
        with self._lock:
            self._next += 1
            req_id = self._next
            fut: Future = Future()
            self._pending[req_id] = fut
            self._sent = time.monotonic()  # (not on a ping: it must not reset what it measures)
            if op == "probe":
                self._timeouts[req_id] = float((fields.get("options") or {}).get("timeout", 5.0))
            proc = self._proc
        self._send({"id": req_id, "op": op, **fields}, proc)
        return req_id, fut

    def one_shot(self) -> None:
        """This worker will serve one probe and be closed: it takes no warm-up steps (they would
        only delay the probe's re-probes)."""
        self.start(wait=False)
        self._send({"op": "no_warm_up"}, self._proc)

    def wait_hello(self, timeout: float) -> dict:
        """Where the worker's torch is (empty when it has none or did not say in time)."""
        self._hello.wait(timeout)
        return self.hello

    def cancel(self, req_id: int) -> None:
        with self._lock:
            proc = self._proc if req_id in self._pending and self.alive else None
        if proc is not None:
            self._send({"op": "cancel", "id": req_id}, proc)

    def probe(self, plan: dict, options: dict) -> dict:
        _, fut = self.submit(plan, options)
        return fut.result()

    def _send(self, msg: dict, proc: subprocess.Popen | None) -> None:
        if proc is None or proc.stdin is None:
            self._fail_all("the probe worker stopped")
            return
        line = (json.dumps(msg) + "\n").encode()
        try:
            with self._write_lock:
                proc.stdin.write(line)
                proc.stdin.flush()
        except (OSError, ValueError):
            if proc is self._proc:
                self._fail_all("the probe worker stopped")

    # -- reading -------------------------------------------------------------------------------
    def _read_stdout(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            try:
                msg = json.loads(raw)
            except ValueError:
                msg = None
            if not isinstance(msg, dict):
                self._log(f"worker: unreadable line {raw[:200]!r}")
                continue
            self._spoke = time.monotonic()
            if timing.ENABLED:
                timing.received(msg.get("timing"))
                said = msg.get("event") or f"answer {msg.get('id')}"
                timing.mark(f"client: worker said {said}" + (f" (pid {msg.get('pid')})" if said == "ready" else ""))
            if msg.get("event") == "hello":
                self.hello = msg
                self._hello.set()
                continue
            if msg.get("event") == "ready":
                self.info = msg
                self._hello.set()  # a worker that skipped hello has no more to say
                self._ready.set()
                continue
            with self._lock:
                req_id = msg.get("id")
                fut = self._pending.pop(req_id, None) if isinstance(req_id, int) else None
                if isinstance(req_id, int):
                    self._timeouts.pop(req_id, None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
        code = proc.wait()
        if proc in self._abandoned:
            return  # the watchdog answered for it; the ready state is a newer worker's
        self._hello.set()
        if not self._ready.is_set():
            tail = "\n".join(list(self.log)[-6:])
            self._start_error = f"the probe worker exited with status {code} before it was ready:\n{tail}"
            self._ready.set()
        if (self._proc is proc or self._proc is None) and proc not in self._abandoned:
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

    # -- the watchdog's view ----------------------------------------------------------------------
    def _quiet(self, proc: subprocess.Popen) -> tuple[float, float] | None:
        """(seconds the worker has been silent while probes are pending, how long it may be)."""
        with self._lock:
            if proc is not self._proc or not self._ready.is_set() or not self._pending:
                return None
            limit = watchdog.quiet_limit(list(self._timeouts.values()))
            return time.monotonic() - max(self._spoke, self._sent), limit

    def _ping(self, proc: subprocess.Popen) -> None:
        with self._lock:
            live = proc is self._proc and self.alive
        if live:
            self._send({"op": "ping", "id": 0}, proc)

    def _stalled(self, proc: subprocess.Popen, quiet: float) -> None:
        """The watchdog is about to kill `proc`: let go of it and answer what it held."""
        with self._lock:
            self._abandoned.add(proc)
            if self._proc is not proc:
                return
            self._proc = None
            self.stalls += 1
            self._fail_all(f"the probe worker did not answer for {quiet:.0f} s (stopped or stuck); it was killed "
                           "and restarted")
            self._log("shapelens: the probe worker stopped answering; restarted")

    def _restart(self) -> None:
        try:
            self._spawn_once()
        except WorkerUnavailable as exc:
            self._log(str(exc))

    def _fail_all(self, why: str) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            self._timeouts.clear()
        for fut in pending.values():
            if not fut.done():
                fut.set_result({"ok": False, "crashed": why, "error": why})
