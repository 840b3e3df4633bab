"""What a probe child gives up before it runs any user code.

Order matters: first every inherited descriptor but the result pipe goes (the worker's protocol
streams, sibling probes' pipes), so user code can neither forge the worker's answers nor read
another probe's; then the child asks to die with the worker.
"""

from __future__ import annotations

import os

from shapelens.probe.worker import reaper

FD_LIMIT = 1 << 20


def close_inherited(keep: int) -> None:
    """Close every descriptor above stderr except `keep` (close_range where the OS has it)."""
    os.closerange(3, keep)
    os.closerange(keep + 1, FD_LIMIT)
    os.set_inheritable(keep, False)  # close-on-exec, should anything ever exec


def enter(result_fd: int) -> None:
    """Confine this freshly forked probe child; `result_fd` is its one way out."""
    close_inherited(result_fd)
    reaper.die_with_parent()
