"""`try: from causal_conv1d import causal_conv1d_fn` / `except ImportError: causal_conv1d_fn = None`:
the file says what it does without the package. Where the import fails, the handler runs (and
the rest of the `try` body does not), as Python runs it, instead of a stand-in that makes the
later `if causal_conv1d_fn is not None:` take the package's path. Only handlers of plain
assignments of constants (`X = None`, `HAS_X = False`, `pass`) run: nothing the plan has not
seen."""

from __future__ import annotations

import ast
from dataclasses import dataclass

from shapelens.analysis.source import flat_body, stmt_key

_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


@dataclass(frozen=True)
class Fallback:
    handler: list[ast.stmt]
    skipped: frozenset[str]  # the statements of the `try` body after the import: Python skips them


def import_fallbacks(tree: ast.Module) -> dict[str, Fallback]:
    """Each import in a top-level `try` whose handler takes an import error -> its fallback. The
    nearest `try` around an import decides (inner ones come later and overwrite); one whose
    handler does more than assign constants gives none."""
    out: dict[str, Fallback | None] = {}
    for node in flat_body_tries(tree.body):
        handler = next((h for h in node.handlers if _catches_import_error(h)), None)
        plain = handler is not None and all(_plain(s) for s in handler.body)
        body = flat_body(node.body)
        orelse = [stmt_key(s) for s in flat_body(node.orelse)]  # `else:` runs only when nothing failed
        for i, stmt in enumerate(body):
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                out[stmt_key(stmt)] = Fallback(handler.body, frozenset([*(stmt_key(s) for s in body[i + 1:]),
                                                                         *orelse])) if plain and handler else None
    return {k: v for k, v in out.items() if v is not None}


def flat_body_tries(body: list[ast.stmt]) -> list[ast.Try]:
    out: list[ast.Try] = []
    for stmt in body:
        if isinstance(stmt, ast.Try):
            out.append(stmt)
            out += flat_body_tries(stmt.body)
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            out += flat_body_tries(stmt.body)
    return out


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(t, ast.Name) and t.id in _IMPORT_ERRORS for t in types)


def _plain(stmt: ast.stmt) -> bool:
    """`X = None`, `a, b = None, None`, `HAS_X = False`, `pass`."""
    if isinstance(stmt, ast.Pass):
        return True
    if isinstance(stmt, ast.Assign):
        targets_ok = all(isinstance(n, ast.Name) or isinstance(n, ast.Tuple) and all(isinstance(e, ast.Name)
                                                                                  for e in n.elts)
                         for n in stmt.targets)
        value = stmt.value.elts if isinstance(stmt.value, ast.Tuple) else [stmt.value]
        return targets_ok and all(isinstance(v, ast.Constant) for v in value)
    return False


def run_fallback(fallback: Fallback, path: str, ns: dict) -> None:
    exec(compile(ast.Module(list(fallback.handler), []), path, "exec"), ns)  # noqa: S102 — constants only
