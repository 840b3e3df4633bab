"""Whole messages over pipes between the worker and its forked children."""

from __future__ import annotations

import os
import posix
import select
import signal
import time
from collections.abc import Callable

from shapelens.probe.worker import audit, reaper


def write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def read_all(fd: int, deadline: float | None = None) -> bytes:
    """Everything until the writer closes its end (or, with `deadline`, until that monotonic
    time; or until the fd, when non-blocking, has nothing more now)."""
    chunks = []
    while True:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                break
        try:
            chunk = os.read(fd, 1 << 20)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


_IN_COPY = False  # this process is a copy run_forked made (it may not fork again)


def in_copy() -> bool:
    return _IN_COPY


def run_forked(work: Callable[[], bytes], deadline: float) -> bytes:
    """`work()` in a forked copy of this process, thrown away afterwards: its answer, or b""
    when it did not finish by `deadline` (the child's own timer stops it there too)."""
    budget = deadline - time.monotonic()
    if budget <= 0.05:
        return b""
    read, write = os.pipe()
    with audit.trusted():  # the worker's own fork, not the file's code: let through the audit hook
        pid = os.fork()
    if pid == 0:
        global _IN_COPY
        _IN_COPY = True
        os.close(read)
        data = b""
        try:
            signal.setitimer(signal.ITIMER_REAL, budget)
            data = work()
            signal.setitimer(signal.ITIMER_REAL, 0)
        except BaseException:  # noqa: BLE001 — an unfinished child decides nothing
            data = b""
        try:
            write_all(write, data)
        finally:
            posix._exit(0)
    os.close(write)
    try:
        answer = read_all(read, deadline)
    finally:
        os.close(read)
        _end(pid)
    return answer


def _end(pid: int) -> None:
    """Kill and reap a forked copy. Inside the sandbox a probe may signal only itself, so a copy
    that overran is left to its own timer, or to the worker, which kills the probe's process group
    when the probe ends and reaps what is left (worker/reaper.py)."""
    try:
        with audit.trusted():
            os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        os.waitpid(pid, 0 if reaper.exited(pid) else os.WNOHANG)
    except ChildProcessError:
        pass

