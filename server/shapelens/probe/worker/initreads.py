"""What a constructor's source says about a parameter it is not given a value for: the strings it
compares the parameter with, and how long a list it must be (assume.py, branches.py)."""

from __future__ import annotations

import ast
import re
import typing
from typing import Any

from torch import nn


def compared_strings(node: ast.AST, name: str, owner: str | None = None) -> list[str]:
    """Strings the class compares `name` (or `self.name`) with: `assert mode in {'sine',
    'learnable'}`. With `owner`, `name` is an attribute of that config: only `owner.name` and
    `self.name` count, not a local of that name (minGPT's `from_pretrained(cls, model_type)`)."""
    out: list[str] = []

    def is_param(e: ast.expr) -> bool:
        return (owner is None and isinstance(e, ast.Name) and e.id == name) or (
            isinstance(e, ast.Attribute) and e.attr == name and isinstance(e.value, ast.Name)
            and e.value.id in ("self", owner or "self"))

    for sub in ast.walk(node):
        if not isinstance(sub, ast.Compare) or not is_param(sub.left):
            continue
        for comp in sub.comparators:
            items = comp.elts if isinstance(comp, (ast.Tuple, ast.List, ast.Set)) else [comp]
            out += [i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)]
    return out


def _is_name(node: ast.AST, name: str) -> bool:
    """`name`, or `self.name` (Swin's `H, W = self.input_resolution` in forward)."""
    return isinstance(node, ast.Name) and node.id == name or isinstance(node, ast.Attribute) \
        and node.attr == name and isinstance(node.value, ast.Name) and node.value.id == "self"


def sequence_length(node: ast.AST | None, name: str) -> int | None:
    """How long a list `name` must be when the class uses it as one: `a, b = patch_size` -> 2,
    `channels[9]` -> 10, `len(layers)` / `for d in depths` / `zip(dims, ...)` -> 4. None: a number."""
    if node is None:
        return None
    found: int | None = None
    for sub in ast.walk(node):
        if isinstance(sub, ast.Assign) and _is_name(sub.value, name) \
                and len(sub.targets) == 1 and isinstance(sub.targets[0], ast.Tuple):
            elts = sub.targets[0].elts
            if not any(isinstance(e, ast.Starred) for e in elts):
                return len(elts)
            found = max(found or 0, len(elts) - 1)
        if isinstance(sub, ast.Compare) and isinstance(sub.left, ast.Call) and isinstance(sub.left.func, ast.Name) \
                and sub.left.func.id == "len" and any(isinstance(a, ast.Name) and a.id == name for a in sub.left.args) \
                and isinstance(sub.ops[0], ast.Eq) and isinstance(sub.comparators[0], ast.Constant) \
                and type(sub.comparators[0].value) is int:
            return sub.comparators[0].value  # `assert len(dims) == 3`
        if isinstance(sub, ast.Subscript) and isinstance(sub.value, ast.Name) and sub.value.id == name:
            index = sub.slice.value if isinstance(sub.slice, ast.Constant) and type(sub.slice.value) is int else 3
            found = max(found or 4, index + 1 if index >= 0 else -index)
        elif isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id in (
                "len", "zip", "enumerate", "sum", "list", "tuple", "reversed"):
            if any(isinstance(a, ast.Name) and a.id == name for a in sub.args):
                found = max(found or 4, 4)
        elif isinstance(sub, (ast.For, ast.comprehension)) and isinstance(sub.iter, ast.Name) and sub.iter.id == name:
            found = max(found or 4, 4)
    return found


BLOCK = re.compile(r"^(block|block_fn|block_cls|block_class|block_type|block_module)$")


def block_class(cls: type, ns: dict, init: ast.FunctionDef | None, name: str, annotation: Any) -> type | None:
    """A module class of the file, other than `cls`, for a block parameter annotated with such
    classes (timm's `block: Union[BasicBlock, Bottleneck]`: the first), or that the constructor
    calls as a class (`block(inplanes, planes)`): one with each attribute read of it."""
    named = [a for a in typing.get_args(annotation) or [annotation] if isinstance(a, type) and issubclass(a, nn.Module) and a.__module__ == ns.get("__name__") and a is not cls]
    if named or init is None:
        return named[0] if named else None
    if not any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name for n in ast.walk(init)):
        return None
    read = {n.attr for n in ast.walk(init) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
            and n.value.id == name}
    return next((v for v in ns.values() if isinstance(v, type) and issubclass(v, nn.Module) and v is not cls
                 and v.__module__ == cls.__module__ and all(hasattr(v, a) for a in read)), None)
