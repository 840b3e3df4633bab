"""Whole messages between the worker and its probe children, and a probe's requests for helpers.

A probe child may not fork (its seccomp filter refuses it before the file's code runs), so the
probes it needs run for it (a fix's re-probe, a second assumption) it asks the worker for over its
channel, a socket whose other end the worker holds: results and requests go out, answers come in.
The worker forks each helper, a fresh sandboxed probe child (worker/helpers.py). A helper asks for
no helpers of its own: what it would ask for it does in place (`is_helper`).
"""

from __future__ import annotations

import itertools
import json
import os
import select
import time
from typing import Any

from shapelens.probe import protocol

ANSWER_SLACK_S = 0.3  # past the seconds a request names: the worker ends a helper 0.2 s after them and says so
MIN_SECONDS = 0.05  # less than this left: asking decides nothing

CHANNEL: list[int] = []  # this probe child's channel to the worker, once it has one
_HELPER = [False]
_SEQ = itertools.count(1)


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


def connect(fd: int, helper: bool) -> None:
    """In a probe child: `fd` is its channel; `helper` when the worker forked it for another probe."""
    CHANNEL[:] = [fd]
    _HELPER[0] = helper


def is_helper() -> bool:
    return _HELPER[0]


def next_seq() -> int:
    return next(_SEQ)


def ask(request: dict, seconds: float) -> Any:
    """Send `request` (a protocol.Reprobe or SecondAssumption built with `seconds` and
    `next_seq()`) to the worker and wait for its answer: the helper's answer value, or None when
    none came in time (the probe's own timer can still stop the wait, as any other step)."""
    if not CHANNEL or seconds <= MIN_SECONDS:
        return None
    fd = CHANNEL[0]
    write_all(fd, (protocol.dumps({"request": request}) + "\n").encode())
    deadline = time.monotonic() + seconds + ANSWER_SLACK_S
    pending = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return None
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            # An answer to an earlier request this probe stopped waiting for is not this one's.
            if isinstance(msg, dict) and msg.get("seq") == request["seq"]:
                return msg.get("answer")
