"""What a model's own rejection of the inputs the probe made up says they should be: a check
such as `Expected 3 but got 6` (HF vision models compare the channel count with their config)."""

from __future__ import annotations

import re
from typing import Any

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
