"""Constructor arguments from call sites in other files of the workspace.

When a model file never builds its model (`train.py` does: `model = Net(num_classes=10)`), the
other files' calls say how it is built. They are read, never run: only arguments that come out
as literals once the calling file's names are put in (`NUM_CLASSES = 10`, a test function's
locals, `opt.channels` of its argparse defaults, arithmetic on numbers) are used. The workspace is only searched when the model cannot be built otherwise.
"""

from __future__ import annotations

import ast
import functools
import os

from shapelens.analysis.callsites import fold, module_calls
from shapelens.analysis.files import python_files

MAX_FILES = 400
MAX_BYTES = 512 * 1024


def _files(root: str):
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
        if isinstance(node, ast.ImportFrom) and ((node.module or "").rsplit(".", 1)[-1] == last
                                                 or node.module in packages):
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
    for path in _files(root):
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
        for _, node in calls:
            if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
                continue
            try:
                args = tuple(fold(a) for a in node.args)
                kwargs = {k.arg: fold(k.value) for k in node.keywords if k.arg}
            except (ValueError, TypeError, RecursionError):
                continue
            out.append((args, kwargs))
    return out
