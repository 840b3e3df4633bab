"""A time budget for planning one file, and the way another document preempts it.

Planning asks Jedi about callees, tens of milliseconds each in a long file: a 1,500-line chain of
`.view` calls took a minute, and one planner thread serves every document. So the planner checks
its budget between statements and before each Jedi question. When the time is spent it stops:
what it planned so far is still probed, and a probe-incomplete note says where it stopped. When
`preempt` says someone else is waiting (a newer edit, another document), it gives up the thread
(`Preempted`), and the caller plans the file again later.
"""

from __future__ import annotations

import time
from collections.abc import Callable

DEFAULT_SECONDS = 30.0  # wall time: a cold Jedi first look at torch takes seconds on a loaded machine
MAX_STATEMENT_CHARS = 200_000  # a statement longer than this is not analysed (a 2 MB one-line literal)


class BudgetSpent(Exception):
    """Planning ran out of time; the planner stops where it is."""


class Preempted(Exception):
    """Someone else needs the planner thread; this plan is abandoned, to be made again."""


class PlanBudget:
    def __init__(self, seconds: float = DEFAULT_SECONDS, preempt: Callable[[], bool] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.preempt = preempt
        self.clock = clock
        self.started = clock()
        self.spent = False  # the time ran out (a plan made under it is partial)

    def check(self) -> None:
        """Raise when planning must stop: `Preempted` first (the work would be thrown away)."""
        if self.preempt is not None and self.preempt():
            raise Preempted
        if self.spent or self.clock() - self.started > self.seconds:
            self.spent = True
            raise BudgetSpent

    def elapsed(self) -> float:
        return self.clock() - self.started

