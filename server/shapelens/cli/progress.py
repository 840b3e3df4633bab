"""The progress line on stderr: only on a terminal, and only once a run has taken a second (a
quick run prints nothing extra). `[done/total] file being planned`, redrawn in place and erased
at the end."""

from __future__ import annotations

import threading
import time
from typing import TextIO

DELAY_S = 1.0


class Progress:
    def __init__(self, total: int, stream: TextIO, display, delay_s: float = DELAY_S) -> None:
        self.total, self.stream, self.display = total, stream, display
        self.enabled = _is_tty(stream) and total > 0
        self.done, self.current = 0, ""
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._drawn = False
        self._started = time.monotonic()
        self._delay = delay_s
        self._thread = threading.Thread(target=self._tick, daemon=True, name="shapelens-progress")
        if self.enabled:
            self._thread.start()

    def event(self, kind: str, path: str) -> None:
        with self._lock:
            if kind == "plan":
                self.current = path
            elif kind == "done":
                self.done += 1

    def _tick(self) -> None:
        while not self._stop.wait(0.1):
            if time.monotonic() - self._started < self._delay:
                continue
            with self._lock:
                line = f"[{self.done}/{self.total}] checking {self.display(self.current)}" if self.current else \
                    f"[{self.done}/{self.total}] starting the probe worker"
                width = 119
                self.stream.write("\r\x1b[K" + (line if len(line) <= width else line[:width - 1] + "…"))
                self.stream.flush()
                self._drawn = True

    def close(self) -> None:
        if not self.enabled:
            return
        self._stop.set()
        self._thread.join(timeout=1)
        with self._lock:
            if self._drawn:
                self.stream.write("\r\x1b[K")
                self.stream.flush()


def _is_tty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
