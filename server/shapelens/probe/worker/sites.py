"""Constructor arguments from call sites in other files of the workspace.

When a model file never builds its model (`train.py` does: `model = Net(num_classes=10)`), the
other files' calls say how it is built. They are read, never run: only arguments that are
literals, or names the calling file binds to a literal at module level (`NUM_CLASSES = 10`), are
used. The workspace is only searched when the model cannot be built otherwise.
"""

from __future__ import annotations

import ast
import os

from shapelens.analysis.files import python_files

MAX_FILES = 400
MAX_BYTES = 512 * 1024


def _files(root: str):
    for seen, path in enumerate(python_files(root), 1):
        if seen > MAX_FILES:
            return
        yield path


def _constants(tree: ast.Module) -> dict[str, object]:
    out: dict[str, object] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            try:
                out[stmt.targets[0].id] = ast.literal_eval(stmt.value)
            except (ValueError, SyntaxError, TypeError):
                out.pop(stmt.targets[0].id, None)
    return out


def _value(node: ast.expr, constants: dict[str, object]):
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    return ast.literal_eval(node)


def _callers(tree: ast.Module, module: str, cls: str) -> tuple[set[str], set[str]]:
    """Names a file calls the class by: `Net` (from ... import Net [as N]) and `models.Net`."""
    direct, via = set(), set()
    last = module.rsplit(".", 1)[-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").rsplit(".", 1)[-1] == last:
            direct |= {a.asname or a.name for a in node.names if a.name == cls}
        elif isinstance(node, ast.Import):
            via |= {a.asname or a.name for a in node.names if a.name.rsplit(".", 1)[-1] == last}
    return direct, via


def workspace_ctor_args(root: str, target: str, module: str, cls: str) -> list[tuple[tuple, dict]]:
    """(args, kwargs) of each call of `cls` (defined in `module`) elsewhere in the workspace."""
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
        except (SyntaxError, ValueError):
            continue
        direct, via = _callers(tree, module, cls)
        if not direct and not via:
            continue
        constants = _constants(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if not ((isinstance(func, ast.Name) and func.id in direct) or (
                    isinstance(func, ast.Attribute) and func.attr == cls and isinstance(func.value, ast.Name)
                    and func.value.id in via)):
                continue
            try:
                args = tuple(_value(a, constants) for a in node.args)
                kwargs = {k.arg: _value(k.value, constants) for k in node.keywords if k.arg}
            except (ValueError, SyntaxError, TypeError):
                continue
            if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
                continue
            out.append((args, kwargs))
    return out
