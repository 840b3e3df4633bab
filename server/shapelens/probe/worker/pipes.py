"""Whole messages over pipes between the worker and its forked children."""

from __future__ import annotations

import os
import select
import time


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
