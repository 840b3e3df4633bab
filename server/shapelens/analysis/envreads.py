"""Module-level reads of the environment, as the probe sees them: nothing is set.

Libraries choose defaults from the environment at import time (timm's `if 'TIMM_FUSED_ATTN' in
os.environ: ... else: _USE_FUSED_ATTN = 1`, `DEBUG = os.environ.get("DEBUG", "0")`). The planner
does not run `os` code, so such a statement used to be skipped and every name it binds unknown.
Read as an empty environment instead, the test is a constant and the default is the value: a
probe then depends on the file, not on the variables of whoever runs the editor, and the branch
that reads the variable never runs (its statements need not be tensor-pure).
"""

from __future__ import annotations

import ast
from typing import Any

_UNSET = object()


def _is_environ(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" and isinstance(node.value, ast.Name) \
        and node.value.id == "os"


def _read(node: ast.expr) -> Any:
    """The value `os.environ.get("K", d)` / `os.getenv("K", d)` has with nothing set (`d`, or
    None); _UNSET when `node` is no such read."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and not node.keywords
            and 1 <= len(node.args) <= 2):
        return _UNSET
    args = [a.value for a in node.args if isinstance(a, ast.Constant)]
    f = node.func
    if len(args) != len(node.args) or not isinstance(args[0], str) or not (
            (f.attr == "get" and _is_environ(f.value))
            or (f.attr == "getenv" and isinstance(f.value, ast.Name) and f.value.id == "os")):
        return _UNSET
    return args[1] if len(args) == 2 else None


def _value(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("int", "float", "bool", "str") \
            and len(node.args) == 1 and not node.keywords:
        inner = _value(node.args[0])  # `int(os.environ.get("K", "1"))`
        if inner is _UNSET or inner is None:
            return _UNSET
        try:
            return {"int": int, "float": float, "bool": bool, "str": str}[node.func.id](inner)
        except (TypeError, ValueError):
            return _UNSET
    return _read(node)


def env_test(test: ast.expr) -> bool | None:
    """The truth of an `if` test that only reads the environment, with nothing set; None when
    the test is anything else."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = env_test(test.operand)
        return None if inner is None else not inner
    if isinstance(test, ast.BoolOp):
        parts = [env_test(v) for v in test.values]
        if any(p is None for p in parts):
            return None
        return all(parts) if isinstance(test.op, ast.And) else any(parts)
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, op, right = test.left, test.ops[0], test.comparators[0]
        if isinstance(op, (ast.In, ast.NotIn)) and isinstance(left, ast.Constant) and isinstance(left.value, str) \
                and _is_environ(right):
            return isinstance(op, ast.NotIn)
        if isinstance(op, (ast.Eq, ast.NotEq)) and isinstance(right, ast.Constant) \
                and (value := _value(left)) is not _UNSET and _read_in(left):
            return (value == right.value) == isinstance(op, ast.Eq)
        return None
    value = _read(test)
    return None if value is _UNSET else bool(value)


def _read_in(node: ast.expr) -> bool:
    return any(isinstance(n, ast.expr) and _read(n) is not _UNSET for n in ast.walk(node))


def env_default(stmt: ast.stmt) -> str | None:
    """`NAME = os.environ.get("K", "0")` (maybe under `int(...)`) as the statement the probe runs
    instead, `NAME = '0'`; None for any other statement."""
    if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
            and _read_in(stmt.value)):
        return None
    value = _value(stmt.value)
    if value is _UNSET:
        return None
    return f"{stmt.targets[0].id} = {value!r}"
