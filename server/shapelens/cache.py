"""Per-class probe results, reused while a class's fingerprint is unchanged.

The worker skips probing the classes named in `plan["skip_classes"]` and tags everything it
records with the class whose probe produced it (`owner`); results of classes probed on the
module-level script path (owner None) are never cached. A cached class that moved is re-based
to its new line: its fingerprint proves its text and everything it depends on are unchanged.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

KINDS = ("findings", "tensors", "layers", "classes")


@dataclass
class CachedClass:
    fingerprint: str
    line: int
    end_line: int
    items: dict[str, list[dict]] = field(default_factory=dict)


class ClassCache:
    def __init__(self) -> None:
        self._by_path: dict[str, dict[str, CachedClass]] = {}
        self.hits = 0  # classes reused instead of probed (tests check this)

    def skip(self, path: str, fingerprints: dict[str, tuple[str, int]]) -> dict[str, CachedClass]:
        """The classes whose cached results still hold, as snapshots: another probe of the same
        file may replace the entries before this one's result comes back."""
        cached = self._by_path.get(path, {})
        return {name: copy.deepcopy(cached[name]) for name, (fp, _) in sorted(fingerprints.items())
                if name in cached and cached[name].fingerprint == fp}

    def merge(self, path: str, fingerprints: dict[str, tuple[str, int]], ends: dict[str, int],
              skipped: dict[str, CachedClass], result: dict, store: bool = True) -> dict:
        """Store what this probe produced per class (unless not `store`: a result that is not
        what a full probe would say); add what it skipped from the cache."""
        cached = self._by_path.setdefault(path, {})
        for name in result.get("probed", []) if store else []:
            if name in fingerprints:
                items = {kind: [copy.deepcopy(i) for i in result.get(kind, []) if i.get("owner") == name]
                         for kind in KINDS}
                cached[name] = CachedClass(fingerprints[name][0], fingerprints[name][1], ends.get(name, 0), items)
        for name in list(cached):
            if name not in fingerprints:
                del cached[name]  # the class is gone from the file
        for name, entry in skipped.items():
            self.hits += 1
            delta = fingerprints[name][1] - entry.line
            moved = {kind: [_rebase(item, path, entry.line, entry.end_line, delta) for item in entry.items.get(kind, [])]
                     for kind in KINDS}
            for kind in KINDS:
                result.setdefault(kind, []).extend(copy.deepcopy(moved[kind]))
            current = cached.get(name)
            if current is None or current.fingerprint == entry.fingerprint:
                cached[name] = CachedClass(entry.fingerprint, entry.line + delta, entry.end_line + delta, moved)
        return result


def _rebase(item: dict, path: str, start: int, end: int, delta: int) -> dict:
    if not delta:
        return copy.deepcopy(item)
    item = copy.deepcopy(item)

    def shift(obj):
        if isinstance(obj, dict):
            if isinstance(obj.get("span"), list) and obj.get("path", path) == path and start <= obj["span"][0] <= end:
                obj["span"] = [obj["span"][0] + delta, obj["span"][1], obj["span"][2] + delta, obj["span"][3]]
            for value in obj.values():
                shift(value)
        elif isinstance(obj, list):
            for value in obj:
                shift(value)

    shift(item)
    return item
