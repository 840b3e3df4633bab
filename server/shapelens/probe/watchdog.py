"""The editor side's own watch on the probe worker.

The worker enforces each probe's time limit itself, but a worker that is stopped (SIGSTOP), stuck
or starved never answers at all, and every request sent to it would wait forever. While requests
are pending, the watchdog pings the worker whenever it has been quiet; a worker that says nothing
for the longest pending time limit plus a grace is killed, with every process below it, and
restarted, and its pending requests are answered as failed. Torch-free.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

GRACE_S = 1.5  # the worker's own grace past a probe's time limit
SLACK_S = 10.0  # a healthy worker can be busy this long between two reads (a warm-up step, a cold fork)
TICK_S = 0.25


def quiet_limit(timeouts: list[float]) -> float:
    """How long a worker with these probes pending may stay silent."""
    return max(timeouts, default=5.0) + GRACE_S + SLACK_S


def watch(proc: subprocess.Popen, quiet_for: Callable[[], tuple[float, float] | None], ping: Callable[[], None],
          on_stall: Callable[[float], None], restart: Callable[[], None]) -> threading.Thread:
    """Watch `proc` until it exits. `quiet_for()`: seconds since the worker last spoke while it has
    requests pending, and the limit for them (None: nothing pending). On a stall `on_stall(seconds)`
    is called first (the client lets go of the worker), then the worker and its descendants are
    killed, then `restart()`."""
    def loop() -> None:
        pinged = False
        while proc.poll() is None:
            time.sleep(TICK_S)
            state = quiet_for()
            if state is None:
                pinged = False
                continue
            quiet, limit = state
            if quiet < 1.0:
                pinged = False
            elif not pinged:
                ping()  # a live worker answers at once, whatever its probes are doing
                pinged = True
            if quiet >= limit and proc.poll() is None:
                on_stall(quiet)
                kill_tree(proc.pid)
                proc.wait()
                restart()
                return

    thread = threading.Thread(target=loop, daemon=True, name="shapelens-worker-watchdog")
    thread.start()
    return thread


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, parents before children (Linux /proc; empty elsewhere)."""
    kids: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in kids.get(todo.pop(0), []):
            out.append(child)
            todo.append(child)
    return out


def kill_tree(pid: int) -> None:
    """Freeze `pid` and everything below it (so nothing forks or re-parents meanwhile), then kill
    them all. A process that already left the tree is the worker's subreaper's business."""
    if not sys.platform.startswith("linux"):
        _signal(pid, signal.SIGKILL)
        return
    frozen: list[int] = []
    todo = [pid]
    for _ in range(8):  # a tree that is still growing while it is frozen: freeze the new ones too
        for p in todo:
            _signal(p, signal.SIGSTOP)
            frozen.append(p)
        todo = [p for p in descendants(pid) if p not in frozen]
        if not todo:
            break
    for p in frozen:
        _signal(p, signal.SIGKILL)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
