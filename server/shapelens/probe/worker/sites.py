"""Constructor arguments from call sites in other files of the workspace.

When a model file never builds its model (`train.py` does: `model = Net(num_classes=10)`), the
other files' calls say how it is built. They are read, never run: only arguments that come out
as literals once the calling file's names are put in (`NUM_CLASSES = 10`, a test function's
locals, `opt.channels` of its argparse defaults, arithmetic on numbers) are used, and an argument
that is itself a call of a model class the probe has already loaded from the workspace, with
such arguments (SAM's `MaskDecoder(transformer=TwoWayTransformer(depth=2, embedding_dim=256,
...), transformer_dim=256)`), is built. An argument that is neither is UNKNOWN: the call still
gives the others, and the probe assumes that one (construct.py). The workspace is only searched
when the model cannot be built otherwise.
"""

from __future__ import annotations

import ast
import functools
import os
import sys
from typing import Any

from torch import nn

from shapelens.analysis.callsites import fold, module_calls
from shapelens.analysis.files import python_files

MAX_FILES = 400
MAX_BYTES = 512 * 1024
UNKNOWN = object()  # an argument the calling file gives but that is no value here


def workspace_files(root: str):
    for seen, path in enumerate(python_files(root), 1):
        if seen > MAX_FILES:
            return
        yield path


def _callers(tree: ast.Module, module: str, cls: str) -> tuple[set[str], set[str]]:
    """Names a file calls the class by: `Net` (from ... import Net [as N], also through a package
    that re-exports it: `from vit_pytorch import ViT` for vit_pytorch/vit.py) and `models.Net`."""
    direct, via = set(), set()  # `*` in direct: a star import binds the class by its own name
    last = module.rsplit(".", 1)[-1]
    packages = {module.rsplit(".", i)[0] for i in range(1, module.count(".") + 1)}
    for node in ast.walk(tree):
        named = node.module or "" if isinstance(node, ast.ImportFrom) else ""
        if isinstance(node, ast.ImportFrom) and (named.rsplit(".", 1)[-1] == last or named in packages or (
                node.level and any(p.endswith("." + named) for p in packages))):  # `from .modeling import X`
            direct |= {a.asname or a.name for a in node.names if a.name in (cls, "*")}
        elif isinstance(node, ast.Import):
            via |= {a.asname or a.name for a in node.names if a.name.rsplit(".", 1)[-1] == last}
    return direct, via


def _callee(cls: str, direct: set[str], via: set[str], node: ast.Call) -> str | None:
    func = node.func
    if (isinstance(func, ast.Name) and (func.id in direct or func.id == cls and "*" in direct)) or (
            isinstance(func, ast.Attribute) and func.attr == cls and isinstance(func.value, ast.Name)
            and func.value.id in via):
        return cls
    return None


def workspace_ctor_args(root: str, target: str, module: str, cls: str) -> list[tuple[tuple, dict]]:
    """(args, kwargs) of each call of `cls` (defined in `module`) elsewhere in the workspace:
    at module level, in `__main__` blocks and in functions (test functions, factories), each
    name put in as the file binds it (callsites.py), argparse defaults included."""
    out: list[tuple[tuple, dict]] = []
    needle = f"{cls}("
    for path in workspace_files(root):
        if os.path.realpath(path) == target:
            continue
        try:
            if os.path.getsize(path) > MAX_BYTES:
                continue
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError):
            continue
        if needle not in text:
            continue
        try:
            tree = ast.parse(text, path)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        direct, via = _callers(tree, module, cls)
        if not direct and not via:
            continue

        try:
            calls = module_calls(tree, functools.partial(_callee, cls, direct, via))
        except RecursionError:
            continue
        imported = _imported_names(tree)
        for _, node in calls:
            if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
                continue
            value = functools.partial(_argument, imported, os.path.realpath(root))
            out.append((tuple(value(a) for a in node.args), {k.arg: value(k.value) for k in node.keywords if k.arg}))
    return out


def _imported_names(tree: ast.Module) -> dict[str, str]:
    """Local name -> imported name of the file's `from ... import` bindings."""
    return {a.asname or a.name: a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}


def _argument(imported: dict[str, str], root: str, node: ast.expr, depth: int = 0) -> Any:
    """A call site's argument as a value, else UNKNOWN."""
    try:
        return fold(node)
    except (ValueError, TypeError, RecursionError):
        pass
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) or depth > 3 \
            or any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
        return UNKNOWN
    cls = _loaded_class(imported.get(node.func.id, node.func.id), root)
    if cls is None:
        return UNKNOWN
    args = [_argument(imported, root, a, depth + 1) for a in node.args]
    kwargs = {k.arg: _argument(imported, root, k.value, depth + 1) for k in node.keywords if k.arg}
    if any(v is UNKNOWN for v in [*args, *kwargs.values()]):
        return UNKNOWN
    try:
        return cls(*args, **kwargs)
    except Exception:  # noqa: BLE001 — the part's constructor rejects what the call gives
        return UNKNOWN


def _loaded_class(name: str, root: str) -> type | None:
    """The model class `name` of a workspace module the probe has loaded already (nothing is
    imported for it); None when there is none, or more than one."""
    found = set()
    for module in list(sys.modules.values()):
        value = getattr(module, name, None)
        if isinstance(value, type) and issubclass(value, nn.Module) and value.__module__ == module.__name__ \
                and os.path.realpath(getattr(module, "__file__", None) or "").startswith(root + os.sep):
            found.add(value)
    return found.pop() if len(found) == 1 else None
