"""The worker's record of each probe child, and the helper probes a child asks for.

A probe child may not fork (docs/security.md), so when it needs the file probed again (a fix's
re-probe, a second assumption) it sends a request over its channel (worker/pipes.py) and waits.
The worker forks the helper, a fresh sandboxed probe child of the same plan that does what the
request says, under what is left of the asking probe's time, and relays the helper's answer.
A helper holds no slot of its own (the probe it works for is waiting: one process runs for the
slot) and dies with that probe. A request or an answer is checked against the protocol like every
child message: a malformed request fails only the probe that sent it, a malformed answer decides
nothing (the asker gets null).
"""

from __future__ import annotations

import os
import selectors

from shapelens.probe import protocol, validate
from shapelens.probe.worker.answers import json_lines

HELPER_GRACE_S = 0.2  # past its seconds, a helper is killed and the asker told it decided nothing
MAX_HELPERS = 64  # per probe: a file's code forging requests cannot fork the worker without end
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


class Child:
    def __init__(self, req_id, pid: int, fd: int, deadline: float, plan: dict, options: dict,
                 requester: Child | None = None) -> None:
        self.id, self.pid, self.fd, self.deadline = req_id, pid, fd, deadline
        self.plan, self.options = plan, options
        self.files: set[str] = {f["path"] for f in plan.get("files", [])}
        self.buf = b""
        self.cancelled = False
        self.failure: str | None = None  # why the worker failed this probe (a malformed request)
        self.requester = requester  # the probe this helper works for (None: a client's probe)
        self.helper: Child | None = None  # the helper this probe waits for
        self.helpers = 0  # helpers started for it
        self.scanned = 0  # how much of `buf` was looked through for requests
        self.outbox = b""  # answers not yet written to its channel (it reads them when it can)


def probes(children: dict) -> int:
    """The children that hold a slot: the client's probes, not their helpers."""
    return sum(1 for c in children.values() if c.requester is None)


def new_requests(child: Child) -> list[dict | str]:
    """The requests among the lines `child` completed since the last call: each one valid, or
    what is wrong with it."""
    end = child.buf.rfind(b"\n") + 1
    lines, child.scanned = child.buf[child.scanned:end], max(child.scanned, end)
    if b'"request"' not in lines:
        return []
    return [validate.request_problem(m["request"]) or m["request"] for m in json_lines(lines) if "request" in m]


def seconds_for(child: Child, request: dict, now: float, grace: float) -> float:
    """What a helper for `request` may take: what was asked, within what the asker has left."""
    return min(float(request["seconds"]), child.deadline - grace - now)


def helper_options(child: Child, request: dict, seconds: float) -> dict:
    """The asker's options (its time limit too: the probe's time budgets are shared out alike),
    and the request, with the seconds the helper's own timer gives it."""
    return {**child.options, "helper": {**request, "seconds": seconds}}


def answer_of(helper: Child) -> list | dict | None:
    """The helper's answer when it is what its request expects, else None."""
    request = helper.options["helper"]
    msg = next((m for m in json_lines(helper.buf) if "answer" in m or "error" in m), None)
    if msg is None or "answer" not in msg or validate.answer_problem(request["op"], msg) is not None \
            or msg["seq"] != request["seq"]:
        return None
    return msg["answer"]


def relay(child: Child, seq: int, value: list | dict | None, sel) -> None:
    child.outbox += (protocol.dumps(protocol.answer(seq, value)) + "\n").encode()
    flush(child, sel)


def flush(child: Child, sel) -> None:
    """Write what the channel takes now; the rest when the worker's loop finds it writable."""
    try:
        while child.outbox:
            child.outbox = child.outbox[os.write(child.fd, child.outbox):]
    except BlockingIOError:
        pass
    except OSError:
        child.outbox = b""  # it is gone: its end is closed
    sel.modify(child.fd, READ | (WRITE if child.outbox else 0), child)
