"""Source positions and the statement flattening both processes must agree on.

Positions here are `ast` positions: 1-based lines, UTF-8 byte columns, end exclusive. They are
converted to LSP ranges (0-based, UTF-16) only when a report is built.
"""

from __future__ import annotations

import ast
import threading
from collections import deque
from typing import Any, TypeAlias

Span: TypeAlias = tuple[int, int, int, int]  # (line, col, end_line, end_col)


_PARSE_LOCK = threading.Lock()


def parse(text: str, filename: str = "<unknown>") -> ast.Module:
    """`ast.parse`, one thread at a time: CPython 3.11's parser is not thread-safe ("AST
    constructor recursion depth mismatch" when two threads parse at once), and the language
    server plans documents on worker threads."""
    with _PARSE_LOCK:
        return ast.parse(text, filename, "exec")


def parse_expression(text: str) -> ast.expr:
    """One expression (`parse`'s lock and its thread-safety reason apply)."""
    with _PARSE_LOCK:
        return ast.parse(text, "<unknown>", "eval").body


def span(node: ast.AST) -> Span:
    """A located node's (line, col, end_line, end_col); every statement and expression has them."""
    at: Any = node
    return (at.lineno, at.col_offset, at.end_lineno or at.lineno, at.end_col_offset or 0)


def stmt_key(node: ast.stmt | ast.expr) -> str:
    """Identifies a statement (or a decorator) across the editor process and the worker."""
    return f"{node.lineno}:{node.col_offset}"


def span_key(node: ast.AST) -> str:
    """A node's whole span as the plan writes it (`line:col:end_line:end_col`)."""
    return ":".join(str(v) for v in span(node))


def parse_span_key(key: str) -> Span:
    line, col, end_line, end_col = (int(v) for v in key.split(":"))
    return (line, col, end_line, end_col)


def is_main_guard(stmt: ast.stmt) -> bool:
    if not isinstance(stmt, ast.If):
        return False
    test = stmt.test
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and len(test.comparators) == 1
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == "__main__"
    )


def flat_body(body: list[ast.stmt], main: bool = True) -> list[ast.stmt]:
    """Top-level statements as the probe sees them.

    A statement inside `try:` (or `with ...:`) is analysed as if it stood outside: seed 000's
    example 2 wraps its faulty call in try/except and the bug must still be reported. The
    except handlers and the context managers themselves never run. The body of
    `if __name__ == "__main__":` is flattened the same way for the file being probed (`main`),
    where scripts build their model and a test input; its statements go through the same
    tensor-pure test as any other. An imported file's `__main__` block is dropped whole, as
    Python drops it. Other compound statements stay single units (the planner skips them).
    """
    out: list[ast.stmt] = []
    for stmt in body:
        if isinstance(stmt, (ast.Try, ast.TryStar)):
            out += flat_body(stmt.body, main) + flat_body(stmt.orelse, main) + flat_body(stmt.finalbody, main)
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            out += flat_body(stmt.body, main)
        elif isinstance(stmt, ast.If) and is_main_guard(stmt):
            if main:
                out += flat_body(stmt.body, main)
        else:
            out.append(stmt)
    return out


def assigned_names(stmt: ast.AST, imports: bool = True, declared: bool = False) -> set[str]:
    """Every plain name a statement (or anything nested in it) binds. `imports`: with the names
    imports bind; `declared`: with function parameters and `global`/`nonlocal` names too."""
    names: set[str] = set()
    for node in ast.walk(stmt):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif imports and isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.add((alias.asname or alias.name).split(".")[0])
        elif declared and isinstance(node, ast.arg):
            names.add(node.arg)
        elif declared and isinstance(node, (ast.Global, ast.Nonlocal)):
            names.update(node.names)
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            names.add(node.name)
    return names


def walk_statements(tree: ast.AST):
    """The statements of a tree (with except handlers and match cases), in `ast.walk`'s order,
    without descending into expressions: imports found in a file with a 2 MB literal cost
    nothing for the literal."""
    queue = deque([tree])
    while queue:
        node = queue.popleft()
        queue.extend(c for c in ast.iter_child_nodes(node) if isinstance(c, (ast.stmt, ast.excepthandler, ast.match_case)))
        yield node


def dotted_name(node: ast.AST) -> str | None:
    """`torch.nn.Linear` for an Attribute chain of Names, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def bound_here(stmt: ast.stmt) -> set[str]:
    """The names a statement binds in its own scope, without walking a long value."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, ast.Assign):
        return set().union(*(assigned_names(t) for t in stmt.targets))
    if isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
        return assigned_names(stmt.target)
    return assigned_names(stmt)
