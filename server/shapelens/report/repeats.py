"""Repeated blocks of a model table, collapsed: twelve identical transformer blocks read as one
`Block × 12` row. Pure, and generic over the row type, so every front end (the editor's model
view, the CLI's summary) collapses the same way.

A row with depth d owns the rows after it that are deeper than d (its subtree). Consecutive
siblings whose subtrees look alike (same type, shapes and parameter counts, names equal up to
the sibling's own index) form one run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar


class TreeRow(Protocol):
    name: str  # dotted path inside the model, e.g. "blocks.3.attn"
    depth: int


R = TypeVar("R", bound=TreeRow)
_INDEX = re.compile(r"(?:^|\.)(\d+)$")


@dataclass
class Node(Generic[R]):
    """One row and the rows it contains."""

    row: R
    children: list[Node[R]] = field(default_factory=list)


@dataclass
class Run(Generic[R]):
    """`count` consecutive siblings that look alike; `members` are all of them, first first."""

    members: list[Node[R]]
    children: list[Run[R]] = field(default_factory=list)  # the first member's, collapsed too

    @property
    def count(self) -> int:
        return len(self.members)

    @property
    def first(self) -> Node[R]:
        return self.members[0]


def tree(rows: Sequence[R]) -> list[Node[R]]:
    """Rows in pre-order with depths -> a forest. A depth that jumps by more than one still nests
    under the nearest shallower row."""
    roots: list[Node[R]] = []
    stack: list[Node[R]] = []
    for row in rows:
        node = Node(row)
        while stack and stack[-1].row.depth >= row.depth:
            stack.pop()
        (stack[-1].children if stack else roots).append(node)
        stack.append(node)
    return roots


def relative_name(name: str, base: str) -> str:
    return name[len(base) + 1:] if name.startswith(base + ".") else name


def signature(node: Node[R], key: Callable[[R], Hashable]) -> Hashable:
    """What must match for two siblings to count as repeats: the row's own key and, recursively,
    its children's keys, with names taken relative to the node (so blocks.0.attn ~ blocks.1.attn)."""
    base = node.row.name

    def walk(n: Node[R]) -> tuple:
        return (relative_name(n.row.name, base), key(n.row), tuple(walk(c) for c in n.children))

    return (key(node.row), tuple(walk(c) for c in node.children))


def _indexed_siblings(a: str, b: str) -> bool:
    """blocks.0 and blocks.1 (or 0 and 1 in a bare Sequential): same prefix, numeric last part."""
    ma, mb = _INDEX.search(a), _INDEX.search(b)
    return ma is not None and mb is not None and a[:ma.start(1)] == b[:mb.start(1)]


def collapse(nodes: Sequence[Node[R]], key: Callable[[R], Hashable]) -> list[Run[R]]:
    """Groups consecutive look-alike indexed siblings into runs, at every level."""
    runs: list[Run[R]] = []
    for node in nodes:
        last = runs[-1] if runs else None
        if (last is not None and _indexed_siblings(last.members[-1].row.name, node.row.name)
                and signature(last.first, key) == signature(node, key)):
            last.members.append(node)
        else:
            runs.append(Run([node], collapse(node.children, key)))
    return runs


def collapse_rows(rows: Sequence[R], key: Callable[[R], Hashable]) -> list[Run[R]]:
    return collapse(tree(rows), key)
