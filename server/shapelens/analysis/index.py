"""An index over one file's syntax tree: calls by exact span, their assignment targets, and the
source text of arguments. The worker uses it to turn a runtime construction site (an exact call
span from `co_positions`) into the ranges a finding points at."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import cached_property

from shapelens.analysis.source import Span, parse, span


@dataclass(frozen=True)
class ArgSite:
    span: Span
    text: str


@dataclass
class CallSite:
    call: ast.Call
    target: ast.expr | None  # `self.linear` in `self.linear = nn.Linear(...)`
    statement: ast.stmt | None


@dataclass
class SourceIndex:
    path: str
    text: str
    tree: ast.Module = field(init=False)

    def __post_init__(self) -> None:
        self.tree = parse(self.text, self.path)
        self._lines = self.text.splitlines(keepends=True)
        # UTF-8 bytes per line, because ast columns are byte offsets.
        self._blines = [line.encode("utf-8") for line in self._lines]

    def segment(self, s: Span) -> str:
        line, col, end_line, end_col = s
        if line == end_line:
            return self._blines[line - 1][col:end_col].decode("utf-8", "replace")
        parts = [self._blines[line - 1][col:]]
        parts += self._blines[line : end_line - 1]
        parts.append(self._blines[end_line - 1][:end_col])
        return b"".join(parts).decode("utf-8", "replace")

    @cached_property
    def calls(self) -> dict[Span, CallSite]:
        sites: dict[Span, CallSite] = {}
        parents: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(self.tree):
            for child in ast.iter_child_nodes(node):
                parents[child] = node
        for node in ast.walk(self.tree):
            if not isinstance(node, ast.Call):
                continue
            parent = parents.get(node)
            target = None
            if isinstance(parent, (ast.Assign, ast.AnnAssign)) and parent.value is node:
                targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
                if len(targets) == 1 and isinstance(targets[0], (ast.Name, ast.Attribute)):
                    target = targets[0]
            stmt = parent
            while stmt is not None and not isinstance(stmt, ast.stmt):
                stmt = parents.get(stmt)
            sites[span(node)] = CallSite(node, target, stmt)
        return sites

    def call_at(self, s: Span) -> CallSite | None:
        return self.calls.get(s)

    def bind_args(self, call: ast.Call, params: list[str]) -> dict[str, ArgSite]:
        """Map a call's literal arguments onto parameter names (in declaration order)."""
        bound: dict[str, ArgSite] = {}
        for i, arg in enumerate(call.args):
            if isinstance(arg, ast.Starred):
                break
            if i < len(params):
                bound[params[i]] = ArgSite(span(arg), self.segment(span(arg)))
        for kw in call.keywords:
            if kw.arg is not None:
                bound[kw.arg] = ArgSite(span(kw.value), self.segment(span(kw.value)))
        return bound

    def literal_element(self, call: ast.Call, value: int) -> Span | None:
        """The span of the literal `value` inside the first argument of `torch.tensor([...])`."""
        if not call.args:
            return None
        for node in ast.walk(call.args[0]):
            if isinstance(node, ast.Constant) and node.value == value and not isinstance(node.value, bool):
                return span(node)
            if (
                isinstance(node, ast.UnaryOp)
                and isinstance(node.op, ast.USub)
                and isinstance(node.operand, ast.Constant)
                and node.operand.value == -value
            ):
                return span(node)
        return None

    def class_def(self, name: str, line: int | None = None) -> ast.ClassDef | None:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ClassDef) and node.name == name and (line is None or node.lineno == line):
                return node
        return None


def method_def(cls: ast.ClassDef, name: str) -> ast.FunctionDef | None:
    for stmt in cls.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name == name:
            return stmt  # type: ignore[return-value]
    return None


def source_order_calls(node: ast.AST):
    """Calls in the order a reader meets them (outer call before its arguments' calls)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Call):
            yield child
        yield from source_order_calls(child)
