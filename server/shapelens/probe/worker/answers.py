"""A probe child's answer, as the worker reads it back: whether it has arrived, and whether it
is what the protocol says (user code can write to the child's result pipe: nothing malformed may
reach the editor side)."""

from __future__ import annotations

import json
import re

from shapelens.probe import validate


def answered(buf: bytes, helper: bool = False) -> bool:
    """Whether the child's last complete line is its answer (a result or an error; a helper's
    answer or an error)."""
    if not buf.endswith(b"\n"):
        return False
    last = buf[buf.rfind(b"\n", 0, len(buf) - 1) + 1:]
    final = ("answer" if helper else "result", "error")
    return any(f'"{k}"'.encode() in last for k in final) and any(k in m for m in json_lines(last) for k in final)


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


_FRAME = re.compile(r'File "(?P<path>[^"]+)", line (?P<line>\d+)')


def dumped_location(buf: bytes, files: set[str]) -> list | None:
    """The innermost workspace frame of a faulthandler dump (it lists the most recent first)."""
    text = buf.decode("utf-8", "replace")
    kind = "timeout" if "Timeout" in text else "crash"
    for m in _FRAME.finditer(text):
        if m.group("path") in files:
            return [m.group("path"), int(m.group("line")), kind]
    marks = [m["at"] for m in json_lines(buf) if validate.location(m.get("at")) and len(m["at"]) == 2]
    return [marks[-1][0], marks[-1][1], kind] if marks else None
