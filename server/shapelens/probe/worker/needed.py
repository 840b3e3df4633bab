"""Optional forward inputs the forward needs after all.

A parameter with a `None` default keeps it (a mask, targets), but some are optional only in the
signature: a cross-attention block's `encoder_hidden_states: Tensor | None = None` is used as a
tensor unconditionally, and calling forward without it fails on `None.shape`. That failure is
the probe's (it chose the None), so the probe makes that input up too and runs forward again.
"""

from __future__ import annotations

import inspect
import linecache
import re

from torch import nn

_NAME = re.compile(r"[A-Za-z_]\w*")


def none_used(exc: BaseException, instance: nn.Module, given: set[str], unset: set[str] = frozenset()) -> str | None:
    """The optional parameter of `instance.forward` (default None, not given), or one of `unset`
    (required, yet given None: nothing told what it takes), that `exc` comes from: a name on a
    raising line, in the model's forward or in a submodule's forward that got it by the same
    name, holding None."""
    if not isinstance(exc, (AttributeError, TypeError)) or "NoneType" not in str(exc):
        return None
    try:
        params = inspect.signature(instance.forward).parameters.values()
    except (TypeError, ValueError):
        return None
    optional = {p.name for p in params if (p.default is None and p.name not in given or p.name in unset)
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    for tb in reversed(frames):
        frame = tb.tb_frame
        line = linecache.getline(frame.f_code.co_filename, tb.tb_lineno)
        for name in _NAME.findall(line):
            if name in optional and name in frame.f_locals and frame.f_locals[name] is None:
                return name
    return None
