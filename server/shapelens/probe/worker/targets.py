"""Targets: the optional `labels=None` of a model's forward, given once more.

A library's task heads compute their loss only when given targets (`if labels is not None:
loss = CrossEntropyLoss()(logits.view(-1, n), labels.view(-1))`), so a probe that leaves them
None never reaches the loss. After a clean forward the probe runs it once more with targets made
up: class indices shaped like the integer main input (a language model's `[B, T]` ids) or one
per example (`[B]`), values 0 and 1, which every class count takes. A try that fails is taken
back whole: made-up targets of the wrong layout say nothing about the model.

Heads with more than one target name theirs by what they score: `next_sentence_label`,
`mc_labels` (one per example first), a span's `start_positions` / `end_positions` (one index
per example). Each gets its own layout; the layouts are tried together, the likeliest first,
then each target alone (a multiple-choice head's `mc_labels` need a choices axis the made-up
ids lack, yet its language-model `labels` fit). A classifier that chooses its loss by the targets'
dtype then gets float scores per label too (`[B, num_labels]`: the multi-label loss); a config
the forward writes its choice into is put back as built before each try.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from shapelens.probe.worker.layer_rule import Spec

NAMES = ("labels", "label", "targets", "target")
PER_EXAMPLE = ("start_positions", "end_positions")  # a span's ends: one index per example
MAX_TRIES = 4  # layouts tried together, when several targets are named


def is_target(name: str) -> bool:
    return name in NAMES or name in PER_EXAMPLE or name.endswith(("_labels", "_label"))


def candidates(specs: dict[str, Any], name: str = "labels") -> list[Spec]:
    """The layouts a target may have, the likeliest first: per token like the integer main input,
    then per example; one named for a second task (`mc_labels`, `next_sentence_label`) or a span's
    end is per example first."""
    ids = next((s for s in specs.values() if isinstance(s, Spec) and not s.dtype.is_floating_point
                and s.dims[:1] == ("B",)), None)
    tokens = [Spec(ids.dims, torch.long, 2)] if ids is not None and ids.dims != ("B",) else []
    per_example = [Spec(("B",), torch.long, 2)]
    if name in PER_EXAMPLE:
        return per_example
    return per_example + tokens if name not in NAMES else tokens + per_example


def probe_targets(state, instance: nn.Module, specs: dict[str, Any],
                  run: Callable[[dict[str, Any]], bool]) -> None:
    """`run(specs)` runs forward on those inputs and says whether it stopped on an error."""
    try:
        params = inspect.signature(instance.forward).parameters.values()
    except (TypeError, ValueError):
        return
    names = [p.name for p in params if is_target(p.name) and p.default is None and p.name not in specs]
    if not names:
        return
    options = [list(enumerate(candidates(specs, n))) for n in names]
    combos = [dict(zip(names, (spec for _, spec in c)))
              for c in sorted(itertools.product(*options), key=lambda c: sum(i for i, _ in c))[:MAX_TRIES]]
    if len(names) > 1:  # one head's target alone, when another's layout is beyond the made-up inputs
        combos += [{n: spec} for n, o in zip(names, options) for _, spec in o]
    for combo in combos:
        mark = state.mark()
        with _config_kept(instance):
            aborted = run({**specs, **combo})
        if not aborted and not state.errors_since(mark):
            _scores(state, instance, specs, names, run)
            return
        state.rollback(mark)


def _scores(state, instance: nn.Module, specs: dict[str, Any], names: list[str],
            run: Callable[[dict[str, Any]], bool]) -> None:
    """A classifier that picks its loss by its targets' dtype (class indices: cross-entropy;
    scores, one per label: a binary loss) gets the second layout too: float `[B, num_labels]`."""
    count = getattr(instance, "num_labels", None)
    if type(count) is not int or count < 2 or not {"labels", "label"} & set(names):
        return
    name = "labels" if "labels" in names else "label"
    mark = state.mark()
    with _config_kept(instance):
        aborted = run({**specs, name: Spec(("B", count), torch.float32)})
    if aborted or state.errors_since(mark):
        state.rollback(mark)


@contextlib.contextmanager
def _config_kept(instance: nn.Module):
    """A forward that writes what it inferred from its targets into its config (`config.problem_type
    = ...`) finds it as built on the next try."""
    config = getattr(instance, "config", None)
    saved = dict(vars(config)) if hasattr(config, "__dict__") else None
    try:
        yield
    finally:
        if saved is not None:
            vars(config).clear()
            vars(config).update(saved)
