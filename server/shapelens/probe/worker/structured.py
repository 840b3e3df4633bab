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


def keyword_specs(fn: ast.FunctionDef, param: str, follow: Follow) -> dict[str, Any]:
    """{key: spec} for the keys `forward(self, x, **kwargs)` reads as `kwargs['labels']` (or
    `kwargs.get('labels')`) that reach a layer: each is given as that keyword."""
    found: dict[str, Any] = {}

    def read(node: ast.expr) -> str | None:
        while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr != "get":
            node = node.func.value  # `.float()`, `.to(x.device)`: the same entry
        key = _key(node, param)
        if key is None and isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "get" and isinstance(node.func.value, ast.Name) and node.func.value.id == param \
                and node.args and isinstance(node.args[0], ast.Constant):
            key = node.args[0].value
        return key if isinstance(key, str) and key.isidentifier() else None

    for node in ast.walk(fn):  # `y = kwargs['labels'].float()`, then y
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and (key := read(node.value)) is not None and key not in found:
            if (spec := follow(node.targets[0].id)) is not None:
                found[key] = spec
    for node in ast.walk(fn):  # `self.embed(kwargs['labels'])`
        if isinstance(node, ast.expr) and (key := read(node)) is not None and key not in found:
            if (spec := follow(node)) is not None:
                found[key] = spec
    return found
