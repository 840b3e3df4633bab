"""What the public names of torch are, read from the real objects (worker side).

The editor-side planner must know that `nn.Linear` is `torch.nn.modules.linear.Linear` and that
`torch.load` is `torch.serialization.load`; asking Jedi costs seconds on a cold cache. The worker
imports torch anyway, so it answers once per torch installation and the editor keeps the table on
disk (`shapelens.analysis.torchnames`). Only reading attributes happens here: no user code.
"""

from __future__ import annotations

import sys
import types

from shapelens.probe import protocol

# The namespaces model code imports names from. Those that import torch has not loaded are
# skipped rather than imported (no cost, no side effects); a name outside them is Jedi's to answer.
# Namespaces whose every function is denied (torch.hub, torch.onnx, ...) need no entries: their
# public prefix alone denies them.
NAMESPACES = (
    "torch", "torch.nn", "torch.nn.functional", "torch.nn.init", "torch.nn.utils", "torch.nn.utils.rnn",
    "torch.nn.utils.parametrize", "torch.nn.parameter", "torch.nn.modules", "torch.nn.attention",
    "torch.linalg", "torch.fft", "torch.special", "torch.autograd", "torch.amp", "torch.jit", "torch.utils",
    "torch.utils.checkpoint", "torch.distributions", "torch.optim", "torch.func", "torch.masked",
    "torch.nested", "torch.sparse", "torch.types", "torch.compiler",
)
KIND_MODULE, KIND_CLASS, KIND_FUNCTION, KIND_VALUE = "module", "class", "function", "value"


def _canonical(obj: object, public: str) -> tuple[str, str]:
    """(the name Jedi would report: where the object is defined, its kind). Builtins keep their
    public name (`torch.randn` lives on a C class no import reaches)."""
    if isinstance(obj, types.ModuleType):
        return obj.__name__, KIND_MODULE
    kind = KIND_CLASS if isinstance(obj, type) else KIND_FUNCTION if callable(obj) else KIND_VALUE
    if isinstance(obj, (type, types.FunctionType)):
        module, qual = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
        if isinstance(module, str) and isinstance(qual, str) and module.startswith("torch") and "<" not in qual:
            return f"{module}.{qual}", kind
    return public, kind


def build_table() -> protocol.TorchNames:
    """Public dotted name -> [canonical name, kind], for the namespaces above and their attributes."""
    import torch

    table: dict[str, list[str]] = {}
    for name in NAMESPACES:
        module = sys.modules.get(name)
        if module is None:
            continue
        table[name] = [module.__name__, KIND_MODULE]
        for attr in dir(module):
            if attr.startswith("__"):
                continue
            try:
                obj = getattr(module, attr)
            except Exception:  # noqa: BLE001 — a lazy attribute that fails to load
                continue
            public = f"{name}.{attr}"
            if isinstance(obj, types.ModuleType) and not obj.__name__.startswith("torch"):
                continue  # `torch.nn.functional.math` and the like: not torch's
            table[public] = list(_canonical(obj, public))
    return protocol.torch_names(torch.__version__, torch.__file__, table)
