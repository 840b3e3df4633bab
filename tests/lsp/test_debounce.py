"""The adaptive debounce: the configured wait is an upper bound, shortened after cheap probes."""

from __future__ import annotations

from shapelens.lsp.probes import MIN_DELAY_S, Scheduler


def scheduler() -> Scheduler:
    return Scheduler(lambda job, report: None, lambda job, exc: None, lambda job, work: work)


def test_a_document_never_probed_waits_the_whole_debounce():
    assert scheduler().delay("file:///a.py", 0.3) == 0.3


def test_a_cheap_last_probe_shortens_the_wait_to_twice_its_cost():
    s = scheduler()
    s.record_cost("file:///a.py", 0.06)
    assert s.delay("file:///a.py", 0.3) == 0.12
    assert s.delay("file:///b.py", 0.3) == 0.3  # per document
    s.record_cost("file:///a.py", 0.001)
    assert s.delay("file:///a.py", 0.3) == MIN_DELAY_S


def test_an_expensive_probe_or_a_zero_debounce_keeps_the_setting():
    s = scheduler()
    s.record_cost("file:///a.py", 2.0)
    assert s.delay("file:///a.py", 0.3) == 0.3
    s.record_cost("file:///a.py", 0.06)
    assert s.delay("file:///a.py", 0.0) == 0.0  # never longer than asked
    s.forget_cost("file:///a.py")
    assert s.delay("file:///a.py", 0.3) == 0.3
