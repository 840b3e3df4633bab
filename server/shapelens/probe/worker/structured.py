"""Inputs that are containers: `forward(self, batch)` reading `batch["image"]`, and
`forward(self, inputs)` unpacking `x, lengths = inputs`. Each entry is followed to its first
layer like a plain parameter; the made-up input is a dict (or tuple) of those tensors."""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

Follow = Callable[[str | ast.expr], Any]  # a name or expression -> the spec of the first layer it reaches


def _key(node: ast.expr, param: str) -> str | int | None:
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == param \
            and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, (str, int)):
        return node.slice.value
    return None


def keyed_specs(fn: ast.FunctionDef, param: str, follow: Follow):
    """{key: spec} for `param["key"]` reads, a tuple for `a, b = param`; None when an entry
    reaches no layer (or `param` is read no such way)."""
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Tuple) \
                and isinstance(node.value, ast.Name) and node.value.id == param:
            names = [e.id if isinstance(e, ast.Name) else None for e in node.targets[0].elts]
            specs = [follow(n) if n else None for n in names]
            return tuple(specs) if specs and all(s is not None for s in specs) else None
    keys: dict[str | int, Any] = {}
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and (k := _key(node.value, param)) is not None and k not in keys:
            keys[k] = follow(node.targets[0].id)  # `x = batch["image"]`
    for node in ast.walk(fn):
        if (k := _key(node, param)) is not None and keys.get(k) is None:
            keys[k] = follow(node)  # `self.conv(batch["image"])`
    if not keys or any(v is None for v in keys.values()):
        return None
    if all(isinstance(k, int) for k in keys):
        return tuple(keys[i] for i in range(max(keys) + 1)) if set(keys) == set(range(max(keys) + 1)) else None
    return keys if all(isinstance(k, str) for k in keys) else None
