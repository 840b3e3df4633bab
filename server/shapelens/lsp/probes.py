"""Background probes: debounced per document, cancelled by a newer edit, never awaited by a
request handler (hovers read the last result instead). A long plan yields the one planner thread
to a newer edit and, once, to another document's plan (then plans again)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from shapelens.analysis.budget import Preempted
from shapelens.engine import ProbeOptions
from shapelens.lsp.engines import Engines
from shapelens.lsp.notebooks import Snapshot
from shapelens.report.model import ProbeReport

MIN_DELAY_S = 0.05  # the shortest wait after an edit, however cheap probing the file is


@dataclass(frozen=True)
class Job:
    uri: str
    path: str
    version: int | None
    text: str
    options: ProbeOptions
    engines: Engines
    notebook: Snapshot | None = None  # a notebook: `text` is its program, `version` the notebook's
    refine: bool = False  # the same version again, with the fix re-probes its first probe skipped


class Scheduler:
    def __init__(self, on_done: Callable[[Job, ProbeReport], None], on_error: Callable[[Job, Exception], None],
                 wrap: Callable[[Job, Awaitable[ProbeReport]], Awaitable[ProbeReport]]) -> None:
        """`wrap` surrounds each probe (progress reporting)."""
        self.on_done, self.on_error, self.wrap = on_done, on_error, wrap
        self._tasks: dict[str, tuple[asyncio.Task, Job]] = {}
        self._cost: dict[str, float] = {}  # seconds the last finished probe of each document took

    def delay(self, uri: str, debounce_s: float) -> float:
        """How long to wait after an edit before probing: the wait exists so typing does not
        start work that is thrown away.

        - While typing (the edit came before the previous edit's probe finished): the debounce,
          shortened to twice the last probe's cost when that probe was cheap (a cheap probe a
          newer keystroke cancels wastes little).
        - The first edit after the document settled: also no longer than what makes its
          diagnostics arrive when the debounce would have ended (the debounce less the last
          probe's cost). At most one such probe per burst of typing is thrown away: the next
          keystroke finds it pending and waits as above."""
        cost = self._cost.get(uri)
        if cost is None:
            return debounce_s
        typing = uri in self._tasks and not self._tasks[uri][1].refine
        wait = 2 * cost if typing else min(2 * cost, debounce_s - cost)
        return min(debounce_s, max(MIN_DELAY_S, wait))

    def schedule(self, job: Job, delay_s: float) -> None:
        """Probe `job` after `delay_s` unless another job for the same document comes first."""
        self.cancel(job.uri)
        self._tasks[job.uri] = (asyncio.get_running_loop().create_task(self._run(job, delay_s)), job)

    def record_cost(self, uri: str, seconds: float) -> None:
        self._cost[uri] = seconds

    def forget_cost(self, uri: str) -> None:
        self._cost.pop(uri, None)

    def cancel(self, uri: str) -> None:
        pending = self._tasks.pop(uri, None)
        if pending is not None:
            pending[0].cancel()

    def cancel_all(self) -> None:
        for uri in list(self._tasks):
            self.cancel(uri)

    async def _run(self, job: Job, delay_s: float) -> None:
        try:
            await asyncio.sleep(delay_s)
            started = time.perf_counter()
            report = await self.wrap(job, _probe(job))
            if not job.refine:  # (what the delay predicts: the first answer to an edit)
                self.record_cost(job.uri, time.perf_counter() - started)
            report.stats["delay_ms"] = delay_s * 1000
        except Exception as exc:  # noqa: BLE001 — a failed probe must never take the server down
            self._forget(job)
            self.on_error(job, exc)
            return
        self._forget(job)
        self.on_done(job, report)

    def _forget(self, job: Job) -> None:
        pending = self._tasks.get(job.uri)
        if pending is not None and pending[0] is asyncio.current_task():
            del self._tasks[job.uri]


async def _probe(job: Job) -> ProbeReport:
    loop = asyncio.get_running_loop()
    superseded = threading.Event()

    def plan_and_submit(may_yield: bool):
        if may_yield:
            job.engines.queued(-1)
        # An edit may have superseded this job while it queued behind other plans.
        if superseded.is_set():
            return None
        # A long plan gives way to a newer edit, and (once) to another document's plan.
        return job.engines.submit(job.path, job.text, job.options, lambda: superseded.is_set() or (
            may_yield and job.engines.others_waiting()))

    for may_yield in (True, False):
        if may_yield:  # a plan that already gave way once does not make others give way to it
            job.engines.queued(+1)
        planned = loop.run_in_executor(job.engines.planner, plan_and_submit, may_yield)
        try:
            # Shielded: a cancelled await must not orphan a probe the planner is about to start.
            submitted = await asyncio.shield(planned)
            break
        except asyncio.CancelledError:
            superseded.set()
            planned.add_done_callback(_cancel_submitted)
            raise
        except Preempted:
            continue  # to the back of the queue, behind the plan that was waiting
    else:
        raise RuntimeError("planning was preempted twice")  # only a superseded job is, and it was cancelled
    engine, req_id, fut = submitted
    try:
        return await asyncio.shield(asyncio.wrap_future(fut))
    except asyncio.CancelledError:
        engine.cancel(req_id)  # the worker kills the probe; its "cancelled" report is never read
        raise


def _cancel_submitted(planned: asyncio.Future) -> None:
    if planned.cancelled() or planned.exception() is not None or planned.result() is None:
        return
    engine, req_id, _ = planned.result()
    engine.cancel(req_id)
