"""Fingerprints of the classes of a file, for caching probe results per module.

A class's fingerprint covers its own source, a hint comment on the line above it, the
module-level definitions it refers to (other classes, functions, constants, imports — followed
transitively, with their positions, since findings may point into them), the statements that
construct it, and the other workspace files the file imports. Moving the class itself up or down
does not change it: cached results are re-based to its new line.
"""

from __future__ import annotations

import ast
import hashlib

from shapelens.analysis.source import assigned_names, flat_body


def _segment(lines: list[str], node: ast.stmt) -> str:
    return "\n".join(lines[node.lineno - 1 : (node.end_lineno or node.lineno)])


def class_fingerprints(text: str, tree: ast.Module, extra: str = "") -> dict[str, tuple[str, int]]:
    """{class name: (fingerprint, first line)} for the file's top-level classes."""
    lines = text.splitlines()
    defs: dict[str, list[ast.stmt]] = {}
    for stmt in flat_body(tree.body):
        for name in assigned_names(stmt) if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                else {stmt.name}:
            defs.setdefault(name, []).append(stmt)
    # Statements that mention a class may construct it (`def ResNet50(): return ResNet(Bottleneck,
    # [3, 4, 6, 3])`): their text and what they refer to are part of what its probe depends on.
    users: dict[str, list[ast.stmt]] = {}
    for stmt in flat_body(tree.body):
        for name in {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}:
            users.setdefault(name, []).append(stmt)

    def referenced(node: ast.AST) -> set[str]:
        return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}

    out: dict[str, tuple[str, int]] = {}
    for cls in (s for s in tree.body if isinstance(s, ast.ClassDef)):
        h = hashlib.sha256(extra.encode())
        h.update(_segment(lines, cls).encode())
        above = lines[cls.lineno - 2] if cls.lineno >= 2 else ""
        if "shapelens:" in above:
            h.update(above.encode())
        seen: set[str] = {cls.name}
        todo = sorted(referenced(cls))
        for user in users.get(cls.name, []):
            if user is not cls:
                h.update(f"use:{user.lineno}:{_segment(lines, user)}".encode())
                todo.extend(sorted(referenced(user)))
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            for dep in defs.get(name, []):
                h.update(f"{dep.lineno}:{_segment(lines, dep)}".encode())
                todo.extend(sorted(referenced(dep) - seen))
        out[cls.name] = (h.hexdigest()[:24], cls.lineno)
    return out
