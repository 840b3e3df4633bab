"""Choosing where a mismatch is reported by probing the file as each fix would leave it.

A width that disagrees can be fixed on the layer that takes it or on the layer (or layers) that
made it; only the rest of the model can tell which. Each candidate fix is applied to the source
and the whole probe runs again (in a forked process, so nothing of this probe leaks into it). A
fix is accepted when it removes its error and adds none; among accepted fixes the one that
resolves the most errors wins, and the errors it resolves are told as one finding on it. When
the layer that takes a width and the layer that made it are equally good fixes (the one layer
pair disagrees) in a class probed with assumed arguments (nothing says how it is built, so
nothing says which end is meant), the odd one out is taken for the slip: the fix that replaces an expression the
file writes rarely with one it writes often (`(dim) * 2` -> `dim` where every other layer says
`dim`) wins, so the finding lands on the argument that differs from the rest.
"""

from __future__ import annotations

import re
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


def _uses(text: str, source: str) -> int:
    """How often the file writes `text` as a whole expression (not inside a longer name or call)."""
    text = text.strip()
    if not text:
        return 0
    return len(re.findall(rf"(?<![\w.]){re.escape(text)}(?![\w(])", source))


def _old_text(source: str, span: list[int]) -> str:
    lines = source.encode("utf-8").split(b"\n")
    l, c, el, ec = span
    if l != el or l > len(lines):
        return ""
    return lines[l - 1][c:ec].decode("utf-8", "replace")


def uniformity(candidate: dict, sources: dict[str, str]) -> int:
    """How much more common the fix leaves the texts it edits: the uses of each new text in its
    file less the uses of the text it replaces. A number for a number says nothing (`32` and `64`
    are written for unrelated things all over a file): 0."""
    score = 0
    for e in candidate["fixes"][0]["edits"]:
        source = sources.get(e["path"])
        if source is None:
            continue
        old = _old_text(source, e["span"])
        if _is_number(old) and _is_number(e["new_text"]):
            continue
        score += _uses(e["new_text"], source) - _uses(old, source)
    return score


def needed(findings: list[dict]) -> bool:
    """Whether `choose` would re-probe: an error was offered a fix in more than one place."""
    return any(f.get("alts") for f in findings if is_error(f))


def unverified(findings: list[dict]) -> list[dict]:
    """What `choose` gives when no re-probe decides anything: each error on its own place,
    with its own fixes."""
    return [_strip(f) for f in findings]


def _is_number(text: str) -> bool:
    return text.strip().lstrip("-").isdigit()


def choose(findings: list[dict], rerun: Callable[[dict[str, str] | None, list[dict]], list[dict] | None],
           deadline: float, max_runs: int = 8, sources: dict[str, str] | None = None,
           assumed: set[str] | frozenset[str] = frozenset()) -> list[dict]:
    """`rerun(None, edits)` probes the sources with `edits` applied and returns its findings (None
    when it could not finish). `sources`: the files as probed, for the tie between equally good
    fixes (uniformity), which decides only in the classes probed with assumed arguments
    (`assumed`): where the file builds the model itself, the layer that takes the width keeps the
    finding (`nn.Linear(embed_dim, embed_dim * 2)` then `nn.Linear(embed_dim, 256)`: the second is
    told)."""
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
    def score(cand: dict, f: dict) -> int:
        return uniformity(cand, sources or {}) if f.get("owner") in assumed else 0

    for f in errors:
        # Only where the tie-break can decide must both ends be re-probed; elsewhere the first
        # fix that resolves everything (the taking layer's own, tried first) is kept at once.
        ties = f.get("owner") in assumed
        # The likeliest fix is re-probed first: when time runs out before the rest, it is the one kept.
        for cand in sorted(_candidates(f), key=lambda c: -score(c, f)):
            left = after(cand)
            if left is None or not left <= before - {key(f)}:
                continue
            accepted.append((before - left, cand, f))
            if not ties and (left == set() or cand is f and len(errors) == 1):
                break
        if any(resolved == before for resolved, _, g in accepted if g is f):
            break  # one error's fixes resolve them all: the others' are the same fixes again
    out = [_strip(f) for f in findings if not is_error(f)]
    done: set[Key] = set()
    # Most errors resolved first; on a tie, the fix that makes the file more uniform (sorted is stable).
    ranked = sorted(accepted, key=lambda a: (-len(a[0]), -score(a[1], a[2])))
    for resolved, cand, f in ranked:
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
