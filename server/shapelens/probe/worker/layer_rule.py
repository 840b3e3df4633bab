"""What a layer rule can say (the table itself is rules.py).

A rule says which constructor argument declares the input width a layer expects (and at which
axis of the input it is read), which argument declares the width of its output (so a later
mismatch can name, and offer to fix, where a width came from), what to feed each input when a
model's inputs must be inferred, which parameters must keep the shape the constructor declared
(weight tying can swap them), which constructor arguments torch would reject, and, for layers
the common checks do not fit, the check to run before the layer runs and the hook after it.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from shapelens.report.codes import FEATURE_MISMATCH

# check(module, rule, args, kwargs) -> the (args, kwargs) to run the layer on, or None to keep them
PreCheck = Callable[[nn.Module, "LayerRule", tuple, dict], "tuple[tuple, dict] | None"]
# on_output(module, output): what a layer's output learns beyond the rule's out_param
OutputHook = Callable[[nn.Module, Any], None]


@dataclass(frozen=True)
class Spec:
    """An input to make up: dims are ints or symbolic names (B, T, H, W, D, L)."""

    dims: tuple[int | str, ...]
    dtype: torch.dtype = torch.float32
    high: int | None = None  # integer inputs are drawn from [0, high)

    def __post_init__(self) -> None:
        # A width of the user's numpy code (`nn.Linear(np.prod(shape), 120)`: numpy's int64) is a
        # number, not a made-up dim.
        if any(not isinstance(d, (int, str)) and isinstance(d, numbers.Integral) for d in self.dims):
            object.__setattr__(self, "dims", tuple(d if isinstance(d, (int, str)) or not isinstance(d, numbers.Integral)
                                                   else int(d) for d in self.dims))
        if self.high is not None and not isinstance(self.high, int) and isinstance(self.high, numbers.Integral):
            object.__setattr__(self, "high", int(self.high))


@dataclass(frozen=True)
class ConfigCheck:
    """A constructor argument torch rejects: `ok(args)` is False -> diagnostic on `param`;
    `repair(args)` gives the value the probe continues with (and the fix, if `fixable`)."""

    param: str
    ok: Callable[[dict], bool]
    message: Callable[[dict], str]
    repair: Callable[[dict], object]
    fixable: bool = True


@dataclass(frozen=True)
class Input:
    """A further input of a layer whose width a constructor argument declares (Bilinear's
    input2, a decoder's memory, nn.Transformer's tgt)."""

    position: int  # index among forward's arguments
    name: str  # forward's parameter name, for keyword calls and messages
    param: str  # constructor argument declaring its width
    width: Callable[[nn.Module], int]
    axis: int = -1
    spec: Callable[[nn.Module], Spec | None] | None = None


@dataclass(frozen=True)
class LayerRule:
    cls: type[nn.Module]
    code: str = FEATURE_MISMATCH
    in_param: str | None = None  # constructor argument declaring the input width
    in_width: Callable[[nn.Module], int | tuple] | None = None
    in_axis: int = -1  # axis of the first input that must equal it (negative: unbatched inputs work too)
    out_param: str | None = None  # constructor argument declaring the output width
    out_axis: int = -1
    # output width -> the out_param value that gives it (a bidirectional RNN doubles its width)
    out_to_param: Callable[[nn.Module, int], int | None] = lambda m, width: width
    min_dims: int = 1  # inputs with fewer dims are left to torch's own error
    spec: Callable[[nn.Module], Spec | None] | None = None
    inputs: tuple[Input, ...] = ()
    # (parameter attribute, axis, constructor argument): tying weights must keep these equal
    params: tuple[tuple[str, int, str], ...] = ()
    checks: tuple[ConfigCheck, ...] = field(default_factory=tuple)
    # Constructor arguments that are widths (the corpus mutates exactly these).
    widths: tuple[str, ...] = ()
    # The output has the input's width (a norm, an attention block): after a mismatch the probe
    # goes on with the width the layer received, not the one it declares, so the layers after it
    # are checked against what really flows.
    keeps_width: bool = False
    # The constructor's parameters in order, for classes whose __init__ hides them (`*args`).
    signature: tuple[str, ...] | None = None
    # The check before the layer runs; None: the common one (the input width, then `inputs`).
    check: PreCheck | None = None
    # Called after the layer ran, once its output carries out_param's provenance.
    on_output: OutputHook | None = None


def bind_values(sig: inspect.Signature, self: object, args: tuple, kwargs: dict) -> dict[str, Any] | None:
    """A constructor call's arguments by name, defaults filled in (None: they do not bind)."""
    try:
        bound = sig.bind(self, *args, **kwargs)
    except TypeError:
        return None
    bound.apply_defaults()
    return dict(bound.arguments)


def failed_checks(rule: LayerRule, values: dict[str, Any]) -> Iterator[tuple[ConfigCheck, str, object]]:
    """The rule's config checks that `values` (a constructor call's arguments by name) fail,
    each with its message and the repaired value; `values` takes the repaired value, so the
    layer can be built with it and later checks see it."""
    for check in rule.checks:
        try:
            ok = check.ok(values)
        except Exception:  # noqa: BLE001 — odd argument types are torch's to reject
            ok = True
        if ok:
            continue
        repaired = check.repair(values)
        message = check.message(values)
        yield check, message, repaired
        values[check.param] = repaired
