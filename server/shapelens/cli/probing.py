"""Probing a set of files: one planning + probing process per core for larger sets, with
progress events (`("plan", path)` when a file's planning starts, `("done", path)` when its report
is in) for the progress line."""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial

from shapelens.engine import Engine, ProbeOptions, find_root
from shapelens.probe.client import WorkerClient
from shapelens.probe.torchnames import TorchNames
from shapelens.report.model import ProbeReport

Notify = Callable[[str, str], None]
Item = tuple[str, str]  # (path, text): the text as read (stdin, or a decoded file)

_events = None  # in a batch process: the queue its progress events go to


def probe_all(items: list[Item], options: ProbeOptions, python: str | None,
              notify: Notify | None = None, worker: WorkerClient | None = None) -> list[ProbeReport]:
    """Every item's report, in order. Planning (Jedi) is single-threaded work, so a larger set
    of files is split into one batch per core, each planned and probed by its own process; this
    process takes the first batch, with `worker` (started early, its torch maybe imported)."""
    jobs = min(os.cpu_count() or 1, len(items) // 2)
    if jobs <= 1:
        return probe_batch(items, options, python, notify, worker)
    batches = [items[i::jobs] for i in range(jobs)]
    context = multiprocessing.get_context("spawn")  # no fork of a process that runs threads
    events = context.Queue() if notify else None
    relay = threading.Thread(target=_relay, args=(events, notify), daemon=True) if notify else None
    if relay:
        relay.start()
    try:
        with ProcessPoolExecutor(jobs - 1, mp_context=context, initializer=_init, initargs=(events,)) as pool:
            others = pool.map(probe_batch, batches[1:], [options] * (jobs - 1), [python] * (jobs - 1))
            results = [probe_batch(batches[0], options, python, notify, worker), *others]
    finally:
        if events is not None and relay is not None:
            events.put(None)
            relay.join(timeout=5)
    by_path = {item[0]: r for batch, reports in zip(batches, results) for item, r in zip(batch, reports)}
    return [by_path[item[0]] for item in items]


def _init(events) -> None:
    global _events
    _events = events


def _done(notify: Notify, path: str, _future) -> None:
    notify("done", path)


def _relay(events, notify: Notify) -> None:
    while True:
        try:
            event = events.get(timeout=1)
        except queue.Empty:
            continue
        except (EOFError, OSError):
            return
        if event is None:
            return
        notify(*event)


def probe_batch(items: list[Item], options: ProbeOptions, python: str | None,
                notify: Notify | None = None, worker: WorkerClient | None = None) -> list[ProbeReport]:
    """The items' reports, planned here and probed by `worker` (its owner closes it), or by a
    worker of this batch's own."""
    if notify is None and _events is not None:
        notify = lambda kind, path: _events.put((kind, path))  # noqa: E731
    own = worker is None
    worker = worker or WorkerClient(python)
    worker.start(wait=False)  # torch imports there while this process plans
    if len(items) == 1:
        worker.one_shot()  # one probe: warming up would only delay it
    names = TorchNames(worker)
    engines: dict[str, Engine] = {}
    futures = []
    try:
        for path, text in items:
            if notify:
                notify("plan", path)
            root = find_root(path)
            engine = engines.get(root) or engines.setdefault(root, Engine(root, python, options, worker, names))
            fut = engine.submit(os.path.realpath(path), text)[1]
            if notify:
                fut.add_done_callback(partial(_done, notify, path))
            futures.append(fut)
        return [fut.result() for fut in futures]
    finally:
        if own:
            worker.close(wait=False)
