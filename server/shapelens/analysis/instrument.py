"""Rewrites the statements the probe runs so that each assignment reports its value.

After every assignment in a function body (and after each tensor-pure module-level assignment)
the rewrite adds `__shapelens_rec__(line, col, end_line, end_col, "name", name)`; at the start of
`forward` it records the parameters. Inserted nodes carry the assignment's own line, so
tracebacks still point at the user's lines.
"""

from __future__ import annotations

import ast

from shapelens.analysis.source import span

REC = "__shapelens_rec__"


def _rec(target: ast.expr, at: ast.stmt) -> ast.stmt:
    l, c, el, ec = span(target)
    name = target.id if isinstance(target, ast.Name) else getattr(target, "arg", "?")
    call = ast.Call(
        func=ast.Name(REC, ast.Load()),
        args=[ast.Constant(l), ast.Constant(c), ast.Constant(el), ast.Constant(ec), ast.Constant(name),
              ast.Name(name, ast.Load())],
        keywords=[],
    )
    stmt = ast.Expr(call)
    ast.copy_location(stmt, at)
    stmt.end_lineno, stmt.end_col_offset = at.end_lineno, at.end_col_offset
    for node in ast.walk(stmt):
        ast.copy_location(node, stmt)
        node.end_lineno, node.end_col_offset = stmt.end_lineno, stmt.end_col_offset  # type: ignore[attr-defined]
    return stmt


def _targets(stmt: ast.stmt) -> list[ast.Name]:
    if isinstance(stmt, ast.Assign):
        roots: list[ast.expr] = list(stmt.targets)
    elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)) and getattr(stmt, "value", None) is not None:
        roots = [stmt.target]
    else:
        return []
    names: list[ast.Name] = []
    for root in roots:
        for node in ast.walk(root):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.append(node)
    return names


def instrument_block(stmts: list[ast.stmt], in_function: bool = False) -> list[ast.stmt]:
    out: list[ast.stmt] = []
    for stmt in stmts:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = instrument_block(stmt.body, in_function=True)
            if stmt.name == "forward":
                params = [a for a in stmt.args.posonlyargs + stmt.args.args + stmt.args.kwonlyargs if a.arg != "self"]
                body = [_rec(_arg_as_name(a), stmt) for a in params] + body
            stmt.body = body
        elif isinstance(stmt, ast.ClassDef):
            stmt.body = [s if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                         else instrument_block([s])[0] for s in stmt.body]
        else:
            for field in ("body", "orelse", "finalbody"):
                block = getattr(stmt, field, None)
                if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                    setattr(stmt, field, instrument_block(block, in_function))
            for handler in getattr(stmt, "handlers", []) or []:
                handler.body = instrument_block(handler.body, in_function)
            if isinstance(stmt, ast.Match):
                for case in stmt.cases:
                    case.body = instrument_block(case.body, in_function)
        out.append(stmt)
        out += [_rec(t, stmt) for t in _targets(stmt)]
    return out


def _arg_as_name(arg: ast.arg) -> ast.Name:
    name = ast.Name(arg.arg, ast.Store())
    ast.copy_location(name, arg)
    name.end_lineno = arg.lineno
    name.end_col_offset = arg.col_offset + len(arg.arg.encode("utf-8"))
    return name
