"""The source text a fix writes for a width: an expression the code already uses, a part of the
argument's own expression, a name in scope holding the value, or the literal. Texts are checked
by evaluating them against the simple values in scope where the layer was built (no calls)."""

from __future__ import annotations

import ast
from typing import Any

from shapelens.probe.worker.origin import snapshot

_SAFE_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Name, ast.Load, ast.Constant, ast.Attribute,
               ast.operator, ast.unaryop, ast.Tuple)


def eval_in(text: str, scope: dict) -> Any:
    """Evaluate a constructor argument's text against simple values only (no calls)."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if not isinstance(node, _SAFE_NODES) or isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            return None
    try:
        return eval(compile(tree, "<fix>", "eval"), {"__builtins__": {}}, dict(scope))  # noqa: S307
    except Exception:  # noqa: BLE001
        return None


def expression_for(value: int, texts: list[str], scope: dict) -> str:
    """The source text to write for `value` where `scope` is: the first of `texts` (expressions
    the code already uses for this width) that evaluates there to `value`, else a name holding
    it, else the literal."""
    return expressions_for(value, texts, scope)[0]


def _is_number(text: str) -> bool:
    return text.strip().lstrip("-").isdigit()


def expressions_for(value: int, texts: list[str], scope: dict, current: str | None = None,
                    limit: int = 4) -> list[str]:
    """Texts that evaluate to `value` in `scope`, best first: an expression the code already uses
    for this width (`embed_dim * 2`), a part of the argument's own expression (`hidden` in
    `hidden * 2`), a name holding the value, and the literal. The probe verifies them in this
    order, so a literal that only fits one layer built in a loop gives way to a name that fits
    every iteration."""
    scope = snapshot(scope)
    found: list[str] = []

    def add(text: str) -> None:
        if text not in found and eval_in(text, scope) == value:
            found.append(text)

    for text in texts:
        if not _is_number(text):
            add(text)
    if current:
        try:
            tree = ast.parse(current.strip(), mode="eval")
        except SyntaxError:
            tree = None
        parts = [n for n in ast.walk(tree) if isinstance(n, (ast.BinOp, ast.Name, ast.Attribute))
                 and n is not tree.body] if tree else []
        for node in sorted(parts, key=lambda n: -(n.end_col_offset - n.col_offset)):
            add(ast.get_source_segment(current.strip(), node) or "")
        # `inner * 6` where `inner * 3` is meant: a name of the argument times another factor
        for node in parts:
            text = ast.get_source_segment(current.strip(), node) or ""
            v = eval_in(text, scope) if isinstance(node, (ast.Name, ast.Attribute)) else None
            if type(v) is int and v > 1 and value % v == 0 and 1 < value // v <= 16:
                add(f"{text} * {value // v}")
    for name, v in scope.items():
        if type(v) is int and v == value and name not in {"self"}:
            add(name)
    for text in texts:
        add(text)
    if str(value) not in found:
        found.append(str(value))
    return found[:limit]
