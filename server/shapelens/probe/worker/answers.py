"""A probe child's answer, as the worker reads it back: whether it has arrived, and whether it
is what the protocol says (user code can write to the child's result pipe: nothing malformed may
reach the editor side)."""

from __future__ import annotations

import json

from shapelens.probe import validate


def answered(buf: bytes) -> bool:
    """Whether the child's last complete line is its answer (a result or an error)."""
    if not buf.endswith(b"\n"):
        return False
    last = buf[buf.rfind(b"\n", 0, len(buf) - 1) + 1:]
    return (b'"result"' in last or b'"error"' in last) and any("result" in m or "error" in m
                                                               for m in json_lines(last))


def checked(payload: dict | None) -> dict | None:
    """The child's answer when it is what the protocol says; otherwise an error naming what was
    wrong (user code can write to the child's result pipe: it must not reach the editor side)."""
    if payload is None:
        return None
    if "result" in payload:
        bad = validate.result_problem(payload["result"])
        if bad is None:
            return payload
        return {"error": f"the probe's answer was malformed ({bad[:200]}); did the file's code write to the probe's "
                         "result pipe?", "at": None}
    error = payload.get("error")
    trace = payload.get("trace")
    return {"error": error[:2000] if isinstance(error, str) else "the probe's error report was malformed",
            "trace": trace[:8000] if isinstance(trace, str) else None, "at": validate.location(payload.get("at"))}


def json_lines(buf: bytes):
    """The JSON objects a child wrote (a faulthandler dump may be interleaved)."""
    for line in buf.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if isinstance(msg, dict):
            yield msg
