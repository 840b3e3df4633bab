"""Call sites inside factory functions, with the function's locals put in.

`def build(): d = 256; return Decoder(transformer_dim=d, depth=2)` says how `Decoder` is built,
but `d` exists only while `build` runs, which the probe never does. Here the call is rewritten
with each local replaced by the expression that bound it (`Decoder(transformer_dim=256,
depth=2)`): straight-line assignments before the call, parameter defaults, the parameters a
module-level call passes (`model = build(256)`), and `args.width` of an argparse namespace the
function parses. Nothing runs: whether the rewritten call may be evaluated is the planner's
tensor-pure test, the same as for any other statement.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Iterator
from typing import Any

from shapelens.analysis.argparse_ns import module_constants, parsed_namespace
from shapelens.analysis.source import assigned_names, span_key

FACTORY_PREFIX = "call:"  # a ctor site given as call text rather than as a span of the file
MAX_TEXT = 4000  # a rewritten call longer than this is not worth evaluating


class _Inline(ast.NodeTransformer):
    def __init__(self, bound: dict[str, ast.expr], namespaces: dict[str, dict[str, Any]]) -> None:
        self.bound, self.namespaces = bound, namespaces

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if isinstance(node.ctx, ast.Load) and node.id in self.bound:
            return copy.deepcopy(self.bound[node.id])
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if isinstance(node.value, ast.Name) and node.value.id in self.namespaces:
            ns = self.namespaces[node.value.id]
            if node.attr in ns:
                return ast.copy_location(ast.Constant(ns[node.attr]), node)
        return self.generic_visit(node)


def _reads(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


# What a test expects to fail: `with pytest.raises(AssertionError): Net(input_size=64)` builds the
# class wrongly on purpose, so no call under it says how the class is built.
EXPECTS_FAILURE = ("raises", "assertRaises", "assertRaisesRegex", "expectedFailure")


def _expects_failure(stmt: ast.With | ast.AsyncWith) -> bool:
    for item in stmt.items:
        call = item.context_expr
        func = call.func if isinstance(call, ast.Call) else None
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in EXPECTS_FAILURE:
            return True
    return False


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """A function's statements in order, `with`/`try` bodies as if they stood outside, but none
    under a `with` that expects a failure."""
    for stmt in body:
        if isinstance(stmt, (ast.With, ast.AsyncWith)):
            if not _expects_failure(stmt):
                yield from _statements(stmt.body)
        elif isinstance(stmt, ast.Try):
            yield from _statements(stmt.body)
        else:
            yield stmt


def _module_call_args(tree: ast.Module, fn: ast.FunctionDef) -> dict[str, ast.expr]:
    """What the first module-level call of `fn` (`model = build(256, depth=2)`) passes."""
    params = [a.arg for a in fn.args.posonlyargs + fn.args.args]
    for stmt in tree.body:
        for node in ast.walk(stmt) if not isinstance(stmt, (ast.FunctionDef, ast.ClassDef)) else ():
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == fn.name:
                if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
                    continue
                out = dict(zip(params, node.args))
                out.update({k.arg: k.value for k in node.keywords if k.arg})
                return out
    return {}


def ctor_sites(planner, classes: set[str]) -> dict[str, list[str]]:
    """Call sites of the file's own classes whose arguments the worker may evaluate: spans of
    calls whose arguments are tensor-pure as written, then factory functions' calls with their
    locals put in, as call text (`call:...`), when that passes the same test."""
    sites: dict[str, list[str]] = {}
    for node in ast.walk(planner.scan):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in classes:
            if planner.call_args_pure(node):
                sites.setdefault(node.func.id, []).append(span_key(node))
    for cls, call in factory_calls(planner.tree, classes):
        if planner.expr_is_pure(call):
            sites.setdefault(cls, []).append(FACTORY_PREFIX + ast.unparse(call))
    return sites


def factory_calls(tree: ast.Module, classes: set[str]) -> list[tuple[str, ast.Call]]:
    """(class, the call with the enclosing function's locals put in) for each call of one of
    `classes` inside a module-level function. A call that still reads a local nothing bound is
    left out: the name could otherwise be taken for a module-level one."""
    def callee(call: ast.Call) -> str | None:
        return call.func.id if isinstance(call.func, ast.Name) and call.func.id in classes else None

    return [hit for fn in _functions(tree).values() for hit in function_calls(tree, fn, callee)]


def _functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}


def function_calls(tree: ast.Module, fn: ast.FunctionDef, callee) -> list[tuple[str, ast.Call]]:
    """The calls `callee` names (it returns the class name, or None) inside `fn`, locals put in."""
    if not any(isinstance(n, ast.Call) and callee(n) for n in ast.walk(fn)):
        return []
    args = fn.args
    positional = args.posonlyargs + args.args
    defaults = dict(zip([a.arg for a in positional][len(positional) - len(args.defaults):], args.defaults))
    defaults.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None})
    local = {a.arg for a in positional + args.kwonlyargs} | assigned_names(fn) - {fn.name}
    local |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    return scope_calls(tree, fn.body, {**defaults, **_module_call_args(tree, fn)}, local, callee)


def module_calls(tree: ast.Module, callee) -> list[tuple[str, ast.Call]]:
    """The calls `callee` names at module level (a script's `G = Generator(input_shape, opt.n)`),
    module-level names put in; with those of its functions."""
    body = [s for s in tree.body if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    local = set().union(*(assigned_names(s) for s in body)) if body else set()
    out = scope_calls(tree, _flat(body), {}, local, callee)
    for fn in _functions(tree).values():
        out += function_calls(tree, fn, callee)
    return out


def _flat(body: list[ast.stmt]) -> list[ast.stmt]:
    out: list[ast.stmt] = []
    for stmt in body:
        if (isinstance(stmt, ast.If) and isinstance(stmt.test, ast.Compare) and isinstance(stmt.test.left, ast.Name)
                and stmt.test.left.id == "__name__"):
            out += stmt.body
        else:
            out.append(stmt)
    return out


def scope_calls(tree: ast.Module, body: list[ast.stmt], bound: dict[str, ast.expr], local: set[str],
                callee) -> list[tuple[str, ast.Call]]:
    out: list[tuple[str, ast.Call]] = []
    constants = module_constants(tree)
    functions = _functions(tree)
    namespaces: dict[str, dict[str, Any]] = {}
    for stmt in _statements(body):
        inline = _Inline(bound, namespaces)
        for node in ast.walk(stmt):
            if isinstance(node, ast.Call) and (name := callee(node)):
                call = inline.visit(copy.deepcopy(node))
                args = ast.Tuple([*call.args, *(k.value for k in call.keywords)], ast.Load())
                if not (_reads(args) & (local - set(bound))) and len(ast.unparse(call)) <= MAX_TEXT:
                    out.append((name, call))
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            name = stmt.targets[0].id
            ns = parsed_namespace(stmt.value, body, functions, constants)
            if ns is not None:
                namespaces[name] = ns
                bound.pop(name, None)
                continue
            value = inline.visit(copy.deepcopy(stmt.value))
            namespaces.pop(name, None)
            if _reads(value) & (local - set(bound)):
                bound.pop(name, None)
            else:
                bound[name] = value
        else:
            for name in assigned_names(stmt):
                bound.pop(name, None)
                namespaces.pop(name, None)
    return out


def fold(node: ast.expr) -> Any:
    """The value of a literal expression, arithmetic on numbers included (`(3, 64 // 4)`);
    ValueError for anything else. Nothing is evaluated but numbers."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [fold(e) for e in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.Dict) and all(k is not None for k in node.keys):
        return {fold(k): fold(v) for k, v in zip(node.keys, node.values) if k is not None}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
        v = fold(node.operand)
        return -v if isinstance(node.op, ast.USub) else (+v if isinstance(node.op, ast.UAdd) else not v)
    if isinstance(node, ast.BinOp):
        a, b = fold(node.left), fold(node.right)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < 2**40 for v in (a, b)):
            raise ValueError("not small numbers")
        ops = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b,
               ast.FloorDiv: lambda: a // b, ast.Div: lambda: a / b, ast.Mod: lambda: a % b,
               ast.Pow: lambda: a ** b if abs(b) <= 64 else None}
        op = ops.get(type(node.op))
        try:
            value = op() if op else None
        except ZeroDivisionError:
            value = None
        if value is None:
            raise ValueError("not arithmetic")
        return value
    raise ValueError(f"not a literal: {type(node).__name__}")
