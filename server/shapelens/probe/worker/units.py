"""One unit's fault never hides another's findings: time budgets per unit of a probe.

A probe has one time limit (the child's SIGALRM timer). Without budgets, a class whose forward
hangs spends all of it, and every class probed after it is lost. Each unit (the module-level
statements, then each class) instead runs under a shorter timer that keeps a reserve for the
units still to come; a unit that overruns it is reported where it was, and the probe goes on
with the reserve. In the common case nothing overruns and this costs two setitimer calls a
unit, no extra process. A hang in native code that ignores signals is still caught only by
the worker's own deadline (the whole probe, as before).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

from shapelens.probe.worker.state import ProbeTimeout

RESERVE_PER_UNIT_S = 0.5  # what a later unit is kept: a small model probes in well under this
MAX_RESERVE_SHARE = 0.4  # never more than this share of the time limit is held back


def guarded(units_after: int, timeout: float, work: Callable[[], None],
            on_overrun: Callable[[ProbeTimeout], None]) -> None:
    """Run `work` under what is left of the timer minus the reserve for `units_after` more
    units; `on_overrun(exc)` when it runs out, and the timer then gets its reserve back."""
    remaining = signal.getitimer(signal.ITIMER_REAL)[0]
    reserve = min(RESERVE_PER_UNIT_S * units_after, MAX_RESERVE_SHARE * timeout)
    if remaining <= 0 or units_after <= 0 or remaining - reserve <= 0.05:
        work()  # no timer (in-process use), or nothing to keep time for: the probe's own limit
        return
    started = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, remaining - reserve)
    try:
        work()
    except ProbeTimeout as exc:
        signal.setitimer(signal.ITIMER_REAL, 0)
        on_overrun(exc)
    finally:
        signal.setitimer(signal.ITIMER_REAL, max(remaining - (time.monotonic() - started), 0.001))
