"""Choosing where a mismatch is reported by probing the file as each fix would leave it.

A width that disagrees can be fixed on the layer that takes it or on the layer (or layers) that
made it; only the rest of the model can tell which. Each candidate fix is applied to the source
and the whole probe runs again (in a forked process, so nothing of this probe leaks into it). A
fix is accepted when it removes its error and adds none; among accepted fixes the one that
resolves the most errors wins, and the errors it resolves are told as one finding on it. When
the layer that takes a width and the layer that made it are equally good fixes, the layer that
takes it is fixed (the seed example: `nn.Linear(embed_dim, 256)` fed `embed_dim * 2` features is
reported on its `embed_dim`). Guessing the "odd one out" from how often the file writes each text
was tried and dropped: a deliberate `embed_dim * 2` is exactly as rare as a slip.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from shapelens.report.codes import is_error as code_is_error

Key = tuple[str, int, int]  # (path, line, column) of an error


def apply(sources: dict[str, str], edits: list[dict]) -> dict[str, str]:
    """Apply worker edits (1-based lines, UTF-8 byte columns) to the sources they name."""
    out = dict(sources)
    by_path: dict[str, list[dict]] = {}
    for e in edits:
        by_path.setdefault(e["path"], []).append(e)
    for path, items in by_path.items():
        text = out.get(path)
        if text is None:
            continue
        lines = text.encode("utf-8").split(b"\n")
        for e in sorted(items, key=lambda e: (e["span"][0], e["span"][1]), reverse=True):
            l, c, el, ec = e["span"]
            if l != el or l > len(lines):
                continue
            line = lines[l - 1]
            lines[l - 1] = line[:c] + e["new_text"].encode("utf-8") + line[ec:]
        out[path] = b"\n".join(lines).decode("utf-8")
    return out


def is_error(f: dict) -> bool:
    return code_is_error(f["code"])


def key(f: dict) -> Key:
    return (f["path"], f["span"][0], f["span"][1])


def _unshift(k: Key, edits: list[dict]) -> Key:
    """An error found in the edited text, placed back in the original text's columns."""
    path, line, col = k
    for e in edits:
        l, c, el, ec = e["span"]
        if e["path"] == path and l == line == el and col > c:
            col -= len(e["new_text"].encode("utf-8")) - (ec - c)
    return (path, line, col)


def _candidates(f: dict) -> list[dict]:
    # An alternative may have lost its fixes (one writing an assumed number is dropped): nothing to try.
    return ([f] if f.get("fixes") else []) + [a for a in f.get("alts", []) if a.get("fixes")]


def _strip(f: dict) -> dict:
    return {k: v for k, v in f.items() if k != "alts"}


def needed(findings: list[dict]) -> bool:
    """Whether `choose` would re-probe: an error was offered a fix in more than one place."""
    return any(f.get("alts") for f in findings if is_error(f))


def unverified(findings: list[dict]) -> list[dict]:
    """What `choose` gives when no re-probe decides anything: each error on its own place,
    with its own fixes."""
    return [_strip(f) for f in findings]


def choose(findings: list[dict], rerun: Callable[[dict[str, str] | None, list[dict]], list[dict] | None],
           deadline: float, max_runs: int = 8) -> list[dict]:
    """`rerun(None, edits)` probes the sources with `edits` applied and returns its findings (None
    when it could not finish)."""
    errors = [f for f in findings if is_error(f)]
    if not needed(findings):
        return unverified(findings)
    before = {key(f) for f in errors}
    results: dict[str, set[Key] | None] = {}
    runs = 0

    def after(candidate: dict) -> set[Key] | None:
        nonlocal runs
        edits = candidate["fixes"][0]["edits"]
        sig = repr(sorted((e["path"], tuple(e["span"]), e["new_text"]) for e in edits))
        if sig not in results:
            if runs >= max_runs or time.monotonic() > deadline:
                return None
            runs += 1
            found = rerun(None, edits)
            results[sig] = None if found is None else {_unshift(key(f), edits) for f in found if is_error(f)}
        return results[sig]

    # (resolved errors, candidate, the error it was offered for)
    accepted: list[tuple[set[Key], dict, dict]] = []
    for f in errors:
        for cand in _candidates(f):
            left = after(cand)
            if left is None or not left <= before - {key(f)}:
                continue
            accepted.append((before - left, cand, f))
            if left == set() or cand is f and len(errors) == 1:
                break
    out = [_strip(f) for f in findings if not is_error(f)]
    done: set[Key] = set()
    for resolved, cand, f in sorted(accepted, key=lambda a: -len(a[0])):
        if key(f) in done or resolved & done:
            continue
        chosen = {**_strip(cand), "owner": f.get("owner")}  # the class whose probe found it
        others = [e for e in errors if key(e) in resolved and e is not f and key(e) != key(cand)]
        if others:
            chosen = {**chosen, "related": list(chosen.get("related", [])) + [
                {"path": e["path"], "span": e["span"], "message": f"this fix also resolves: {e['message']}"}
                for e in others]}
        out.append(chosen)
        done |= resolved | {key(f)}
    out += [_strip(f) for f in errors if key(f) not in done]
    return out
