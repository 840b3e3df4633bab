"""What a model's own rejection of the inputs the probe made up says they should be: a check
such as `Expected 3 but got 6` (HF vision models compare the channel count with their config)."""

from __future__ import annotations

import re
from typing import Any

from torch import nn

from shapelens.probe.worker.failures import REJECTED
from shapelens.probe.worker.rules import Spec

EXPECTED_GOT = re.compile(r"[Ee]xpected:? (\d+),? but (?:got|found|received):? (\d+)")


def refitted(specs: dict[str, Any], findings: list) -> dict[str, Any] | None:
    """The made-up inputs with the one fixed dim a rejection names changed to what it expects, or
    None (no such rejection, or the number it got is in no made-up dim or in more than one)."""
    for f in findings:
        m = EXPECTED_GOT.search(f["message"]) if f["message"].startswith(REJECTED) else None
        if m is None:
            continue
        want, got = int(m.group(1)), int(m.group(2))
        places = [(k, d) for k, v in specs.items() if type(v) is Spec for d, n in enumerate(v.dims) if n == got]
        if want <= 0 or len(places) != 1:
            continue
        (key, d), = places
        spec = specs[key]
        return {**specs, key: Spec((*spec.dims[:d], want, *spec.dims[d + 1:]), spec.dtype, spec.high)}
    return None


def rejected_by_model(findings: list) -> bool:
    return any(f["message"].startswith(REJECTED) for f in findings)


def sizes_asked(findings: list, size: int, min_size: int, max_size: int) -> list[int]:
    """Sizes a rejection of the made-up input names (`doesn't match model (224*224)`), other
    than the one tried."""
    asked: list[int] = []
    for f in findings:
        if f["message"].startswith(REJECTED):
            # Not below the smallest side searched: `can't divide 28 in chunks of 8` names the
            # chunk, not a size to try.
            asked += [n for n in map(int, re.findall(r"\d+", f["message"]))
                      if min_size <= n <= max_size and n != size]
    return list(dict.fromkeys(asked))[:3]


def table_lengths(instance: nn.Module) -> list[int]:
    """Lengths of learned position tables: parameters and buffers shaped [1, n, d]; and the
    tokens of a grid the module keeps as a pair of sides (Swin's `self.input_resolution = (56,
    56)`, whose forward asserts `L == H * W`)."""
    found: list[int] = []
    for t in [*instance.parameters(), *instance.buffers()]:
        if t.dim() == 3 and t.shape[0] == 1 and t.shape[1] > 1 and t.shape[1] not in found:
            found.append(int(t.shape[1]))
    for name, value in vars(instance).items():
        if "resolution" in name and isinstance(value, (tuple, list)) and len(value) == 2 \
                and all(type(v) is int and v > 0 for v in value) and value[0] * value[1] not in found:
            found.append(value[0] * value[1])
    return found[:3]


def solved_sides(exprs: list[tuple[Any, int]], tried: list[int], max_size: int) -> list[int]:
    """Sides under which a flattened width the made-up sides gave (`64 * ((H - 32)/8) * ((W -
    32)/8)`, a symexpr.Dim) equals the width the next layer declares (3136: cleanrl's Atari frames,
    84 or 88 a side), found by evaluating the expression, not by probing: the size search tries
    them next, and the probe there says whether they fit."""
    out: list[int] = []
    for dim, want in exprs[-3:]:
        for side in range(8, max_size + 1):
            values = dict.fromkeys(dim.symbols(), side)
            # every factor a side left positive: `(12/3 - 5)` squared is 1, yet no side of -1 exists
            if side not in tried and side not in out and dim.value(values) == want \
                    and all(f.value(values) > 0 for f in getattr(dim, "factors", ())):
                out.append(side)
                break
    return out
