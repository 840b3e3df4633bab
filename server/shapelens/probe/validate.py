"""Checking a message against the typed protocol before anyone reads it.

The probe child runs user code, and user code can write anything to the child's result pipe. The
worker therefore checks every child message against the TypedDicts of protocol.py (the one
definition of what crosses the boundary) and turns a malformed one into a failed probe with a
`probe-incomplete` note, instead of forwarding it to the editor side, where a missing key would
raise inside a reader. Torch-free, and generic: a new protocol field is checked by declaring it.
"""

from __future__ import annotations

import functools
import math
import types
import typing
from typing import Any, Union

from shapelens.probe import protocol

MAX_DEPTH = 12  # protocol messages nest a few levels; deeper is not ours


def problem(value: Any, expected: Any, where: str = "result", depth: int = 0) -> str | None:
    """What is wrong with `value` as an `expected` (a protocol type), or None when it fits."""
    if depth > MAX_DEPTH:
        return f"{where}: nested too deeply"
    if expected is Any:
        return None
    origin = typing.get_origin(expected)
    if origin is typing.NotRequired or origin is typing.Required:
        return problem(value, typing.get_args(expected)[0], where, depth)
    if origin in (Union, types.UnionType):
        options = typing.get_args(expected)
        if any(problem(value, opt, where, depth) is None for opt in options):
            return None
        return f"{where}: expected {_name(expected)}, got {type(value).__name__}"
    if origin is list:
        if not isinstance(value, list):
            return f"{where}: expected a list, got {type(value).__name__}"
        (item,) = typing.get_args(expected) or (Any,)
        for i, v in enumerate(value):
            if (p := problem(v, item, f"{where}[{i}]", depth + 1)) is not None:
                return p
        return None
    if origin is dict:
        if not isinstance(value, dict):
            return f"{where}: expected an object, got {type(value).__name__}"
        key_t, val_t = typing.get_args(expected) or (Any, Any)
        for k, v in value.items():
            if (p := problem(k, key_t, f"{where} key", depth + 1) or problem(v, val_t, f"{where}.{k}", depth + 1)):
                return p
        return None
    if typing.is_typeddict(expected):
        return _typed_dict(value, expected, where, depth)
    if expected is type(None):
        return None if value is None else f"{where}: expected null, got {type(value).__name__}"
    if expected is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return None if ok else f"{where}: expected a number, got {value!r:.40}"
    if expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else f"{where}: expected an integer, got {value!r:.40}"
    if isinstance(expected, type):
        return None if isinstance(value, expected) else f"{where}: expected {expected.__name__}, got " \
                                                        f"{type(value).__name__}"
    return f"{where}: cannot check against {expected!r}"


@functools.cache
def _fields(expected: Any) -> tuple[dict[str, Any], tuple[str, ...]]:
    """A TypedDict's resolved field types and its required keys, once per type: resolving them
    (get_type_hints evaluates protocol.py's string annotations) cost more than checking a whole
    GPT-2 result, one call per shape entry."""
    hints = typing.get_type_hints(expected, include_extras=True)
    # NotRequired read from the resolved hints: protocol.py's annotations are strings, which
    # TypedDict's own __required_keys__ cannot see into.
    required = tuple(k for k, t in hints.items() if typing.get_origin(t) is not typing.NotRequired
                     and getattr(expected, "__total__", True))
    return hints, required


def _typed_dict(value: Any, expected: Any, where: str, depth: int) -> str | None:
    if not isinstance(value, dict):
        return f"{where}: expected an object, got {type(value).__name__}"
    hints, required = _fields(expected)
    missing = [k for k in required if k not in value]
    if missing:
        return f"{where}: missing {', '.join(sorted(missing))}"
    for key, v in value.items():
        if key not in hints:
            continue  # an added field a newer peer sends: the contract only adds
        if (p := problem(v, hints[key], f"{where}.{key}", depth + 1)) is not None:
            return p
    return None


def _name(t: Any) -> str:
    return " or ".join(getattr(a, "__name__", str(a)) for a in typing.get_args(t))


def result_problem(result: Any) -> str | None:
    """A probe's result against protocol.Result."""
    return problem(result, protocol.Result)


REQUESTS: dict[str, Any] = {"reprobe": protocol.Reprobe, "assume": protocol.SecondAssumption}


def request_problem(request: Any) -> str | None:
    """A probe child's request for a helper probe against protocol.Reprobe / SecondAssumption."""
    kind = REQUESTS.get(str(request.get("op"))) if isinstance(request, dict) else None
    if kind is None:
        return f"request: expected an object with op {' or '.join(REQUESTS)}, got {request!r:.60}"
    return problem(request, kind, "request")


def answer_problem(op: str, answer: Any) -> str | None:
    """A helper probe's answer to a request `op` against protocol.Answer and what that op expects."""
    return problem(answer, protocol.Answer, "answer") or problem(answer["answer"], protocol.ANSWERS[op], "answer")


def location(value: Any) -> list | None:
    """A child's `at` ([path, line] or [path, line, kind]) when well-formed, else None."""
    if isinstance(value, list) and len(value) in (2, 3) and isinstance(value[0], str) \
            and isinstance(value[1], int) and not isinstance(value[1], bool) \
            and (len(value) == 2 or value[2] in ("timeout", "crash")):
        return value
    return None
