"""The order the planner takes the workspace files a file imports in: what the target needs
first, what it only drags along after.

A library's package `__init__.py` re-exports everything it has (`timm/layers/__init__.py` imports
eighty modules, `timm/models/__init__.py` every model file), so a plain breadth-first walk spends
the file limit on model files the target never names and leaves out the two it imports a name
from. A package `__init__` asked for some names gets the imports that bind those names planned
first (with those of any regular module); its other imports wait until nothing needed is left,
and are planned while the limit lasts. Python runs the whole `__init__` all the same: an import
of a file left out fails alone, as one statement, and the names the target asked for are there.
"""

from __future__ import annotations

import os
import re
from collections import deque
from functools import lru_cache

from shapelens.analysis.imports import Dep

Wanted = frozenset[str] | None  # None: any name


_DEFINED = re.compile(r"^(?:(?:async\s+)?def|class)\s+(\w+)|^(\w+)\s*(?::[^=\n]*)?=[^=]", re.M)
_ALL = re.compile(r"^__all__\s*(?::[^=\n]*)?=\s*[\[(]([^\])]*)[\])]", re.M)
_STAR = re.compile(r"^\s*from\s+\S+\s+import\s+\*", re.M)


@lru_cache(maxsize=1024)
def star_exports(path: str) -> frozenset[str] | None:
    """The names `from <path's module> import *` binds, read off its top-level lines without
    parsing (a package re-exports a hundred large files this way): `__all__` when it has one,
    else its top-level defs, classes and assignments. None when that cannot be told (it
    star-imports in turn, or it cannot be read)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError):
        return None
    if (m := _ALL.search(text)) is not None:
        return frozenset(re.findall(r"[\"']([A-Za-z_]\w*)[\"']", m.group(1)))
    if _STAR.search(text):
        return None
    return frozenset(a or b for a, b in _DEFINED.findall(text) if not (a or b).startswith("_"))


def _union(a: Wanted, b: Wanted) -> Wanted:
    return None if a is None or b is None else a | b


class PlanQueue:
    def __init__(self, target: str) -> None:
        self.needed: deque[str] = deque([target])
        self.optional: deque[str] = deque()
        self.wanted: dict[str, Wanted] = {target: None}
        self.seen: set[str] = set()
        self.held: dict[str, list[Dep]] = {}  # a planned `__init__`'s imports not needed so far
        self.bound: dict[str, set[str]] = {}  # the names an `__init__`'s imports bind, all of them

    def pop(self) -> str | None:
        for q in (self.needed, self.optional):
            while q:
                path = q.popleft()
                if path not in self.seen:
                    self.seen.add(path)
                    return path
        return None

    def planned(self, path: str, deps: list[Dep]) -> None:
        """`path` was planned; queue what it imports."""
        self._split(path, deps)

    def _split(self, path: str, deps: list[Dep]) -> None:
        wanted = self.wanted.get(path)
        selective = wanted is not None and os.path.basename(path) == "__init__.py"
        if selective:  # a name the `__init__` defines itself (`class A(Base)`) may need any of its imports
            if path not in self.bound:  # asked again later, only the held imports come back: keep the first count
                self.bound[path] = set().union(*(d.binds or star_exports(d.path) or ()
                                                 for d in deps if d.wanted is None or d.binds))
            selective = not (wanted - self.bound[path])  # type: ignore[operator]
        held: list[Dep] = []
        for dep in deps:
            if selective and not _binds_wanted(dep, wanted):  # type: ignore[arg-type]
                held.append(dep)
                self._ask(dep, self.optional)
            else:
                self._ask(dep, self.needed)
        self.held[path] = held

    def _ask(self, dep: Dep, queue: deque[str]) -> None:
        before = self.wanted.get(dep.path, frozenset())
        now = _union(before, dep.wanted)
        self.wanted[dep.path] = now
        if dep.path not in self.seen:
            queue.append(dep.path)
        elif now != before and dep.path in self.held:
            self._split(dep.path, self.held[dep.path])  # asked for more: what binds it is needed now


def _binds_wanted(dep: Dep, wanted: frozenset[str]) -> bool:
    if dep.binds is not None:
        return bool(dep.binds & wanted)
    if dep.wanted is not None:
        return True  # a package on the way: Python imports it whatever is asked
    exports = star_exports(dep.path)  # `from .x import *`
    return exports is None or bool(exports & wanted)
