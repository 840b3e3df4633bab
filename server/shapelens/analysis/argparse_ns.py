"""argparse read statically: `opt = parser.parse_args()` becomes the namespace the file's own
`add_argument(..., type=..., default=...)` calls describe, with no code run.

Scripts keep their widths on the command line (`parser.add_argument("--latent_dim", type=int,
default=100)`) and build their model from `opt.latent_dim`. The parser is never constructed:
the `add_argument` calls on it (and on its argument groups) are read from the source, and the
probe runs `opt = argparse.Namespace(**{...})` with literal values instead of the call.
"""

from __future__ import annotations

import ast
from typing import Any

PARSE_METHODS = ("parse_args", "parse_known_args", "parse_intermixed_args")
GROUP_METHODS = ("add_argument_group", "add_mutually_exclusive_group")


def _literal(node: ast.expr | None, constants: dict[str, Any]) -> tuple[bool, Any]:
    if node is None:
        return False, None
    if isinstance(node, ast.Name) and node.id in constants:
        return True, constants[node.id]
    try:
        return True, ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False, None


def module_constants(tree: ast.Module) -> dict[str, Any]:
    """Names the module binds to a literal (`LATENT = 100`), the last binding winning."""
    out: dict[str, Any] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            ok, value = _literal(stmt.value, {})
            if ok:
                out[stmt.targets[0].id] = value
            else:
                out.pop(stmt.targets[0].id, None)
    return out


def _parse_call(value: ast.expr) -> ast.Call | None:
    """`P.parse_args()`, `P.parse_args([])` or `P.parse_known_args()[0]`: the call, else None."""
    if isinstance(value, ast.Subscript) and isinstance(value.slice, ast.Constant) and value.slice.value == 0:
        value = value.value
    if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
            and value.func.attr in PARSE_METHODS and isinstance(value.func.value, ast.Name)):
        return None
    if value.keywords or len(value.args) > 1:
        return None
    if value.args and not (isinstance(value.args[0], (ast.List, ast.Tuple)) and not value.args[0].elts):
        return None  # real command-line words: not read
    return value


def _scope_nodes(scope: list[ast.stmt]):
    """Every node of a scope, not descending into other functions or classes."""
    stack: list[ast.AST] = list(scope)
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                stack.append(child)


def _dest(call: ast.Call) -> str | None:
    for k in call.keywords:
        if k.arg == "dest" and isinstance(k.value, ast.Constant) and isinstance(k.value.value, str):
            return k.value.value
    flags = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    if not flags:
        return None
    long = [f for f in flags if f.startswith("--")]
    name = (long or flags)[0].lstrip("-").replace("-", "_")
    return name if name.isidentifier() else None


def _value(call: ast.Call, constants: dict[str, Any]) -> tuple[bool, Any]:
    """What the option holds when the command line does not give it; (False, _) when nothing
    does (`default=SUPPRESS`, a required option or positional): the name is then unknown."""
    kw = {k.arg: k.value for k in call.keywords if k.arg}
    default = kw.get("default")
    if isinstance(default, ast.Attribute) and default.attr == "SUPPRESS":
        return False, None
    ok, value = _literal(default, constants)
    action = kw.get("action")
    action_name = action.value if isinstance(action, ast.Constant) else None
    required_kw = kw.get("required")
    required = isinstance(required_kw, ast.Constant) and required_kw.value is True
    positional = not any(isinstance(a, ast.Constant) and str(a.value).startswith("-") for a in call.args)
    nargs = kw.get("nargs")
    if default is None and (required or positional and not (isinstance(nargs, ast.Constant) and nargs.value in ("?", "*"))):
        return False, None  # the command line must give it: unknown, never a made-up None
    if default is None:
        return True, {"store_true": False, "store_false": True}.get(str(action_name))
    if not ok:
        return True, None
    convert = kw.get("type")
    if isinstance(value, str) and isinstance(convert, ast.Name) and convert.id in ("int", "float"):
        try:  # argparse applies `type` to a string default
            value = int(value) if convert.id == "int" else float(value)
        except ValueError:
            value = None
    return True, value


def namespace(parser: str, scope: list[ast.stmt], constants: dict[str, Any]) -> dict[str, Any] | None:
    """The options `parser` (a name bound to `ArgumentParser(...)` in `scope`) defines, with the
    values they take when none is given on the command line."""
    names = {parser}
    is_parser = False
    calls: list[ast.Call] = []
    defaults: dict[str, Any] = {}
    for node in _scope_nodes(scope):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value = node.value
            if node.targets[0].id == parser and isinstance(value, ast.Call) and (
                    ast.unparse(value.func).split(".")[-1] == "ArgumentParser"):
                is_parser = True
            elif (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
                  and value.func.attr in GROUP_METHODS and isinstance(value.func.value, ast.Name)
                  and value.func.value.id in names):
                names.add(node.targets[0].id)
    if not is_parser:
        return None
    for node in _scope_nodes(scope):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id in names):
            if node.func.attr == "add_argument":
                calls.append(node)
            elif node.func.attr == "set_defaults":
                for k in node.keywords:
                    ok, value = _literal(k.value, constants)
                    if k.arg and ok:
                        defaults[k.arg] = value
    out: dict[str, Any] = {}
    for call in sorted(calls, key=lambda c: (c.lineno, c.col_offset)):
        dest = _dest(call)
        if dest is None:
            continue
        keep, value = _value(call, constants)
        if keep:
            out[dest] = value
    out.update(defaults)
    return {k: (v if _round_trips(v) else None) for k, v in out.items()}


def _round_trips(value: Any) -> bool:
    try:
        return ast.literal_eval(repr(value)) == value
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False


def parsed_namespace(value: ast.expr, scope: list[ast.stmt], functions: dict[str, ast.FunctionDef],
                     constants: dict[str, Any]) -> dict[str, Any] | None:
    """The namespace an expression evaluates to when it parses the command line: `P.parse_args()`
    of a parser built in `scope`, or a call of a function of the file (`get_args()`) that builds
    a parser and returns what it parses."""
    call = _parse_call(value)
    if call is not None:
        assert isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name)
        return namespace(call.func.value.id, scope, constants)
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and not value.args and not value.keywords:
        fn = functions.get(value.func.id)
        if fn is None:
            return None
        for node in _scope_nodes(fn.body):
            if isinstance(node, ast.Return) and node.value is not None:
                inner = _parse_call(node.value)
                if inner is not None:
                    return parsed_namespace(node.value, fn.body, {}, constants)
                if isinstance(node.value, ast.Name):  # args = parser.parse_args(); return args
                    for stmt in _scope_nodes(fn.body):
                        if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                                and isinstance(stmt.targets[0], ast.Name) and stmt.targets[0].id == node.value.id):
                            found = parsed_namespace(stmt.value, fn.body, {}, constants)
                            if found is not None:
                                return found
    return None


def namespace_statement(stmt: ast.stmt, tree: ast.Module) -> str | None:
    """The statement the probe runs instead of `opt = parser.parse_args()` (or `args =
    get_args()`) at module level: the namespace, built from literals."""
    if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
        return None
    if not _parse_call(stmt.value) and not isinstance(stmt.value, ast.Call):
        return None
    constants = module_constants(tree)
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    ns = parsed_namespace(stmt.value, tree.body, functions, constants)
    if ns is None:
        return None
    return f"{stmt.targets[0].id} = __import__('argparse').Namespace(**{ns!r})"
