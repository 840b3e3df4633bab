"""A config object nobody in the file builds, read off the workspace's command line.

Research code parses its options once (`args = parser.parse_args()` in `run.py`) and hands the
namespace to every model (`Model(configs)` in `models/*.py`), through a registry the probe cannot
follow (`self.model_dict[args.model].Model(args)`). The model reads `configs.seq_len`,
`configs.enc_in`, `configs.freq`, ... and those are the script's options: their defaults are the
values the program runs with when the command line gives none. So a config parameter the probe
must assume is first looked up in the workspace's parsers, read statically (argparse_ns.py: the
`add_argument(..., default=...)` calls, never run): the one whose options cover most of what the
class reads of it gives those attributes their defaults; the rest are assumed by name.
"""

from __future__ import annotations

import ast
import functools
import os

from shapelens.analysis.argparse_ns import module_constants, namespace
from shapelens.probe.worker.sites import MAX_BYTES, workspace_files


def attribute_reads(node: ast.AST | None, name: str) -> set[str]:
    """What the class reads of parameter `name`: `name.attr` anywhere in it."""
    if node is None:
        return set()
    return {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
            and n.value.id == name and isinstance(n.ctx, ast.Load)}


def _parsers(tree: ast.Module) -> list[tuple[str, list[ast.stmt]]]:
    """(name, scope) of each `name = ...ArgumentParser(...)`: at module level (a `__main__` block
    included) or in a function (`def get_args(): parser = ...`)."""
    scopes: list[list[ast.stmt]] = [tree.body]
    scopes += [n.body for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    out = []
    for scope in scopes:
        stack: list[ast.AST] = list(scope)
        while stack:
            node = stack.pop()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                continue
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                    and isinstance(node.value, ast.Call) and ast.unparse(node.value.func).endswith("ArgumentParser"):
                out.append((node.targets[0].id, scope))
            stack.extend(ast.iter_child_nodes(node))
    return out


@functools.cache  # by (path, mtime): a file edited is read again
def _file_namespaces(path: str, mtime: float) -> tuple[dict, ...]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if "add_argument" not in text:
            return ()
        tree = ast.parse(text, path)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError, RecursionError, MemoryError):
        return ()
    constants = module_constants(tree)
    found = []
    for parser, scope in _parsers(tree):
        ns = namespace(parser, scope, constants)
        if ns:
            found.append(ns)
    return tuple(found)


def workspace_options(root: str, reads: set[str]) -> tuple[dict, str] | None:
    """The options of the workspace parser that covers most of `reads` (at least two of them and
    half), with the file's path relative to `root`; None when no parser does."""
    if not root or len(reads) < 2:
        return None
    best: tuple[int, dict, str] | None = None
    for path in workspace_files(root):
        try:
            if os.path.getsize(path) > MAX_BYTES:
                continue
            namespaces = _file_namespaces(path, os.path.getmtime(path))
        except OSError:
            continue
        for ns in namespaces:
            known = {k for k, v in ns.items() if v is not None}
            hits = len(reads & known)
            if hits >= 2 and 2 * hits >= len(reads) and (best is None or hits > best[0]):
                best = (hits, ns, os.path.relpath(path, root))
    return (best[1], best[2]) if best else None
