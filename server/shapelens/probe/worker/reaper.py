"""Nothing a probe starts outlives it.

A probe child runs in its own session and process group, so killing the group ends whatever it
started the ordinary way. A process that left the group (`setsid()`, a double fork) is caught by
the worker being a child subreaper (Linux, PR_SET_CHILD_SUBREAPER): when its parent dies it is
re-parented to the worker instead of init, and the worker kills every child it did not fork
itself. The probe child also asks to be killed when the worker dies (PR_SET_PDEATHSIG), so a
worker killed by the editor side's watchdog takes its probes with it.
"""

from __future__ import annotations

import glob
import os
import signal
import sys

from shapelens.probe.worker import landlock

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
MAX_SWEEPS = 64  # each sweep reaches one more generation of a chain of double forks

def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        return landlock.libc().prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def become_subreaper() -> bool:
    """Make orphaned descendants of this process its children (False where the OS cannot)."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent() -> bool:
    """Have the kernel SIGKILL this process when the thread that forked it dies."""
    return _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def children() -> set[int]:
    """This process's children (those it forked and those re-parented to it)."""
    out: set[int] = set()
    for path in glob.glob(f"/proc/{os.getpid()}/task/*/children"):
        try:
            with open(path) as f:
                out.update(int(p) for p in f.read().split())
        except (OSError, ValueError):
            continue
    return out


def exited(pid: int) -> bool:
    """Whether the child `pid` has ended (it stays waitable: WNOWAIT)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def kill_strays(known: set[int]) -> int:
    """SIGKILL and reap every child that is not in `known` (the probe children the worker is
    waiting for), until none is left; returns how many were killed."""
    killed = 0
    for _ in range(MAX_SWEEPS):
        strays = children() - known
        if not strays:
            break
        for pid in strays:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(pid, 0)  # its own children are re-parented to us as it exits
            except ChildProcessError:
                pass
            killed += 1
    return killed
