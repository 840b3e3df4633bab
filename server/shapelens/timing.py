"""SHAPELENS_TIMING=1: when each phase of a `shapelens check` run happened, printed to stderr at
the end (bench/phases.py reads it).

Every process marks its events with the wall clock (the CLI and the probe worker are separate
processes: only one clock makes their events comparable); the worker's events travel with its
messages (`timing`), so the one list says what overlapped with what. Off, `mark` costs a
comparison. Torch-free.
"""

from __future__ import annotations

import os
import sys
import time

ENABLED = os.environ.get("SHAPELENS_TIMING", "") not in ("", "0")
EVENTS: list[tuple[float, str]] = []  # (wall clock, what), in the order marked
_sent = 0  # in the worker: how many of EVENTS went out with a message already


def process_start() -> float:
    """When this process started (wall clock; Linux, to 10 ms), or now where unknown."""
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rpartition(")")[2].split()[19])  # field 22: start time since boot
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.time()


def mark(what: str, at: float | None = None) -> None:
    if ENABLED:
        EVENTS.append((time.time() if at is None else at, what))


def unsent() -> list[list]:
    """The events not sent yet (the worker attaches them to its next message)."""
    global _sent
    out = [[t, what] for t, what in EVENTS[_sent:]]
    _sent = len(EVENTS)
    return out


def received(events: object) -> None:
    """Events another process sent (a list of [time, what]); anything malformed is dropped."""
    if not ENABLED or not isinstance(events, list):
        return
    for e in events:
        if isinstance(e, list) and len(e) == 2 and isinstance(e[0], (int, float)) and isinstance(e[1], str):
            EVENTS.append((float(e[0]), e[1][:80]))


def render(start: float) -> str:
    lines = ["shapelens timing (seconds since the process started):"]
    for t, what in sorted(EVENTS):
        lines.append(f"  {t - start:8.3f}  {what}")
    return "\n".join(lines) + "\n"


def report(start: float) -> None:
    if ENABLED:
        sys.stderr.write(render(start))
        sys.stderr.flush()
