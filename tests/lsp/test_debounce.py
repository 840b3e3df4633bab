"""The adaptive debounce: the configured wait is an upper bound, shortened after cheap probes, and
for the first edit after a document settled, shortened so its diagnostics come when the debounce
would have ended."""

from __future__ import annotations

import asyncio

from shapelens.engine import ProbeOptions
from shapelens.lsp.probes import MIN_DELAY_S, Job, Scheduler

A = "file:///a.py"


def scheduler() -> Scheduler:
    return Scheduler(lambda job, report: None, lambda job, exc: None, lambda job, work: work)


def job(refine: bool = False) -> Job:
    return Job(A, "/a.py", 2, "x = 1\n", ProbeOptions(), engines=None, refine=refine)  # type: ignore[arg-type]


def delay_while_pending(s: Scheduler, pending: Job, debounce_s: float) -> float:
    """The delay of an edit that arrives while `pending` (an earlier job) still waits to run."""
    async def measure() -> float:
        s.schedule(pending, 60.0)
        try:
            return s.delay(A, debounce_s)
        finally:
            s.cancel(A)
    return asyncio.run(measure())


def test_a_document_never_probed_waits_the_whole_debounce():
    assert scheduler().delay(A, 0.3) == 0.3


def test_a_cheap_last_probe_shortens_the_wait_to_twice_its_cost():
    s = scheduler()
    s.record_cost(A, 0.06)
    assert s.delay(A, 0.3) == 0.12
    assert delay_while_pending(s, job(), 0.3) == 0.12  # typing: the same
    assert s.delay("file:///b.py", 0.3) == 0.3  # per document
    s.record_cost(A, 0.001)
    assert s.delay(A, 0.3) == MIN_DELAY_S


def test_the_first_edit_after_the_document_settled_starts_so_it_ends_with_the_debounce():
    s = scheduler()
    s.record_cost(A, 0.2)
    assert abs(s.delay(A, 0.3) - 0.1) < 1e-9  # 0.1 s wait + 0.2 s probe = the 0.3 s debounce
    s.record_cost(A, 2.0)
    assert s.delay(A, 0.3) == MIN_DELAY_S  # longer than the debounce: start (almost) at once


def test_while_typing_an_expensive_probe_waits_the_whole_debounce():
    """A keystroke that finds the previous one's probe pending is part of a burst: at most the
    burst's first probe started early, the rest wait as configured."""
    s = scheduler()
    s.record_cost(A, 0.2)
    assert delay_while_pending(s, job(), 0.3) == 0.3
    s.record_cost(A, 2.0)
    assert delay_while_pending(s, job(), 0.3) == 0.3
    # A pending refining probe (the same version, with its fix re-probes) is not typing.
    assert delay_while_pending(s, job(refine=True), 0.3) == MIN_DELAY_S


def test_a_zero_debounce_keeps_the_setting():
    s = scheduler()
    s.record_cost(A, 0.06)
    assert s.delay(A, 0.0) == 0.0  # never longer than asked
    assert delay_while_pending(s, job(), 0.0) == 0.0
    s.forget_cost(A)
    assert s.delay(A, 0.3) == 0.3
