"""The flow that brought a tensor to a layer: each tensor remembers the step that made it (a
layer's call, a `view`/`flatten`/`cat`/`permute`, or where it was created or named), and a
mismatch is told as the chain from the input to the layer that rejects it:

    input_ids [1, 10] → self.embedding → [1, 10, 128] → self.projection → [1, 10, 256] → self.linear expects 128

Shape-keeping ops in between (`relu`, `dropout`, `x + y`) pass the step of their first input on.
"""

from __future__ import annotations

import weakref
from typing import Any, NamedTuple

import torch

from shapelens.probe import protocol

STEP_OPS = {"view", "reshape", "flatten", "unflatten", "cat", "concat", "concatenate", "stack", "permute",
            "transpose", "swapaxes", "movedim", "split", "chunk", "squeeze", "unsqueeze", "expand", "repeat",
            "einsum", "matmul", "__matmul__", "bmm", "mean", "sum", "__getitem__"}
MAX_STEPS = 12  # a long chain shows its last steps; the input is always the first


class Step(NamedTuple):
    label: str  # `self.embedding`, `view`, or the input's name
    path: str | None
    span: tuple | None
    shape: str  # the shape the tensor had, as hovers show it
    prev: Step | None


def get(t: Any) -> Step | None:
    return getattr(t, "_sl_step", None)


def _set(t: Any, step: Step) -> None:
    try:
        t._sl_step = step
    except (AttributeError, RuntimeError):
        pass


def origin(t: torch.Tensor, shape: str) -> Step | None:
    """A tensor no step made: the chain starts at its name and where it was made."""
    name = getattr(t, "_sl_name", None)
    site = getattr(t, "_sl_site", None) or getattr(t, "_sl_named_at", None)
    if name is None and site is None:
        return None
    return Step(name or "input", site.path if site else None, tuple(site.span) if site else None, shape, None)


def of(t: Any, shape_of) -> Step | None:
    """The step that made `t`, or its origin. `shape_of(t)` renders a shape."""
    step = get(t)
    if step is None and isinstance(t, torch.Tensor):
        step = origin(t, shape_of(t))
    return step


def made(result: Any, label: str, site, source: Any, shape_of) -> None:
    """`result` was made by `label` (a layer or a shape op) at `site` from `source`."""
    if not isinstance(result, torch.Tensor) or site is None:
        return
    prev = of(source, shape_of) if isinstance(source, torch.Tensor) else None
    _set(result, Step(label, site.path, tuple(site.span), shape_of(result), prev))


def passed(result: Any, source: Any) -> None:
    """A shape-keeping op: `result` continues the chain of `source`."""
    if isinstance(result, torch.Tensor) and isinstance(source, torch.Tensor) and get(result) is None:
        step = get(source)
        if step is not None:
            _set(result, step)
        else:
            _set(result, _Later(weakref.ref(source)))


def after_op(name: str, args: tuple, result: Any, where, shape_of) -> None:
    """An op ran: a shape op is a step of the chain (at `where()`, the user's line), any other op
    passes its first input's chain on."""
    first = next((a for a in args if isinstance(a, torch.Tensor)), None)
    if first is None and args and isinstance(args[0], (list, tuple)):
        first = next((a for a in args[0] if isinstance(a, torch.Tensor)), None)  # cat, stack
    if first is None or first is result:
        return
    if name in STEP_OPS:
        made(result, name.strip("_"), where(), first, shape_of)
    else:
        passed(result, first)


class _Later(NamedTuple):
    """The chain of a tensor that had none yet when an op used it (it is named afterwards)."""

    source: weakref.ref


def steps(t: torch.Tensor, shape_of) -> list[Step]:
    """The chain that made `t`, its input first."""
    out: list[Step] = []
    step = get(t)
    seen = 0
    while isinstance(step, _Later):
        src = step.source()
        step = of(src, shape_of) if src is not None else None
    if step is None:
        step = origin(t, shape_of(t))
    while step is not None and seen < 64:
        out.append(step)
        prev = step.prev
        while isinstance(prev, _Later):
            src = prev.source()
            prev = of(src, shape_of) if src is not None else None
        step, seen = prev, seen + 1
    out.reverse()
    if len(out) > MAX_STEPS:
        out = out[:1] + out[-(MAX_STEPS - 1):]
    return out


def told(steps_: list[Step], consumer: str, expects: str) -> str:
    """`input_ids [1, 10] → self.embedding → [1, 10, 128] → … → self.linear expects 128`."""
    parts = []
    for i, s in enumerate(steps_):
        parts.append(f"{s.label} {s.shape}" if i == 0 and s.prev is None else f"{s.label} → {s.shape}")
    parts.append(f"{consumer} expects {expects}")
    return " → ".join(parts)


def told_as_chain(t: torch.Tensor, consumer: str, expects: str, path: str, where, message: str,
                  related: list[protocol.Related], shape_of) -> tuple[str, list[protocol.Related],
                                                                      list[protocol.ChainStep]]:
    """A finding told as the flow from the input to the layer: a second line of its message, one
    related location per step, and the steps for the squiggle's hover. A tensor that went
    straight from its input into the layer has no flow to tell."""
    made_by = steps(t, shape_of)
    if len(made_by) < 2:
        return message, related, []
    chain, extra = [], []
    for i, s in enumerate(made_by):
        if s.path is None or s.span is None:
            continue
        first = i == 0 and s.prev is None
        chain.append(protocol.chain_step(s.label, s.shape, s.path, s.span))
        extra.append(protocol.related(s.path, s.span, f"{s.label} {s.shape}" if first else f"{s.label} → {s.shape}"))
    chain.append(protocol.chain_step(consumer, f"expects {expects}", path, where))
    return f"{message}\n{told(made_by, consumer, expects)}", related + extra, chain
