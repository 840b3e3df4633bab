"""Planning outcomes of top-level statements, reused across edits of a file.

Typing inside one `forward` changes one statement; the planner's verdict on every other one is
a function of that statement's text and of what it reads: which of its names are pure, defined,
imported from where, rebound. That is the key. An outcome that needed Jedi (a workspace name,
whose meaning lives in other statements or files) is never stored: it is planned again.
Line numbers are kept relative to the statement, so a statement that only moved is a hit.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Outcome:
    keep: tuple[tuple[int, int], ...]  # (line offset from the statement, column)
    strip: tuple[tuple[int, int], ...]
    skipped: tuple[tuple[int, int, str], ...]
    pure_set: frozenset[str]
    pure_unset: frozenset[str]
    defined_add: frozenset[str]


@dataclass
class StatementCache:
    """One file's outcomes; each plan keeps only the entries it used, so the cache holds the
    statements of the file's latest version and no more."""
    _entries: dict[tuple, Outcome] = field(default_factory=dict)
    _used: dict[tuple, Outcome] = field(default_factory=dict)
    replanned: list[int] = field(default_factory=list)  # lines planned afresh by the latest plan
    reused: int = 0  # statements taken from the cache by the latest plan

    def begin(self) -> None:
        self._used, self.replanned, self.reused = {}, [], 0

    def end(self) -> None:
        self._entries = self._used

    def get(self, key: tuple) -> Outcome | None:
        hit = self._entries.get(key) or self._used.get(key)
        if hit is not None:
            self._used[key] = hit
            self.reused += 1
        return hit

    def put(self, key: tuple, outcome: Outcome) -> None:
        self._used[key] = outcome


def names_read(stmt: ast.stmt) -> frozenset[str]:
    return frozenset(n.id for n in ast.walk(stmt) if isinstance(n, ast.Name))


def affected(stmt: ast.stmt, assigned: set[str]) -> set[str]:
    """The names whose purity the planner sets for this statement (a class or function sets
    only its own name: its body's names are restored after planning it)."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    return assigned


def relative(keys: list[str], line: int) -> tuple[tuple[int, int], ...]:
    out = []
    for key in keys:
        l, c = key.split(":")[:2]
        out.append((int(l) - line, int(c)))
    return tuple(out)


def absolute(pairs: tuple[tuple[int, int], ...], line: int) -> list[str]:
    return [f"{dl + line}:{c}" for dl, c in pairs]
