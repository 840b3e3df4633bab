"""Targets: the optional `labels=None` of a model's forward, given once more.

A library's task heads compute their loss only when given targets (`if labels is not None:
loss = CrossEntropyLoss()(logits.view(-1, n), labels.view(-1))`), so a probe that leaves them
None never reaches the loss. After a clean forward the probe runs it once more with targets made
up: class indices shaped like the integer main input (a language model's `[B, T]` ids) or one
per example (`[B]`), values 0 and 1, which every class count takes. A try that fails is taken
back whole: made-up targets of the wrong layout say nothing about the model.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from shapelens.probe.worker.layer_rule import Spec

NAMES = ("labels", "label", "targets", "target")


def candidates(specs: dict[str, Any]) -> list[Spec]:
    ids = next((s for s in specs.values() if isinstance(s, Spec) and not s.dtype.is_floating_point
                and s.dims[:1] == ("B",)), None)
    out = [Spec(ids.dims, torch.long, 2)] if ids is not None else []
    return [*out, Spec(("B",), torch.long, 2)]


def probe_targets(state, instance: nn.Module, specs: dict[str, Any],
                  run: Callable[[dict[str, Any]], bool]) -> None:
    """`run(specs)` runs forward on those inputs and says whether it stopped on an error."""
    try:
        params = inspect.signature(instance.forward).parameters.values()
    except (TypeError, ValueError):
        return
    names = [p.name for p in params if p.name in NAMES and p.default is None and p.name not in specs]
    if not names:
        return
    for spec in candidates(specs):
        mark = state.mark()
        aborted = run({**specs, **{n: spec for n in names}})
        if not aborted and not state.errors_since(mark):
            return
        state.rollback(mark)
