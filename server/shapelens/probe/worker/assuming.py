"""Probing a class under assumed constructor arguments (assume.py), the last resort when nothing
in the workspace says how it is built.

A finding that exists only because of an assumed value is not the user's error. So when the
probe under the first assumption reports errors, the class is built and probed again under the
second (in a forked copy of the probe, thrown away afterwards): an error is kept only when the
second probe reports it too, at the same place, and of its fixes only those the second probe
proposes with the same text (a fix that writes an assumed number is right only under that
assumption). What is dropped is said in one `probe-incomplete` note on the class, which also
names the values assumed and the hint that gives the real ones.
"""

from __future__ import annotations

import ast
import json
from typing import Any

from shapelens.analysis.hints import Hint, ProjectHints
from shapelens.probe.protocol import Finding
from shapelens.probe.worker import state as probe_state
from shapelens.probe.worker.assume import assume_args, shown_text
from shapelens.probe.worker.construct import build
from shapelens.probe.worker.pipes import in_copy, run_forked
from shapelens.probe.worker.probing import ASSUMED, probe_class
from shapelens.probe.worker.results import class_name_span
from shapelens.probe.worker.state import State
from shapelens.report.codes import PROBE_INCOMPLETE, is_error


class Assumption:
    """What a class was probed with: the assumed arguments shown, the inputs made up."""

    def __init__(self, shown: dict[str, str], inputs: str | None) -> None:
        self.shown, self.inputs = shown, inputs


def _key(f: Finding | dict) -> tuple:
    return (f["code"], f["path"], tuple(f["span"]))


def _fix_texts(f: Finding | dict) -> list[tuple]:
    return [tuple((tuple(e["span"]), e["new_text"]) for e in fix["edits"]) for fix in f.get("fixes", [])]


def _summary(findings: list[Finding]) -> list[dict]:
    """The second probe's errors as the first compares them: place, code and fix texts, also of
    the alternatives (the same problem told from another constructor argument)."""
    out = []
    for f in findings:
        if not is_error(f["code"]):
            continue
        for g in [f, *f.get("alts", [])]:
            out.append({"code": g["code"], "path": g["path"], "span": list(g["span"]), "fixes": _fix_texts(g)})
    return out


def hint_example(cls: type, names: list[str]) -> str:
    return f"# shapelens: {cls.__name__}({', '.join(f'{m}=...' for m in names)})"


def probe_assumed(state: State, cls: type, node: ast.ClassDef, ns: dict, missing: list[str], given: dict[str, Any],
                  hints: dict[int, Hint], project: ProjectHints, path: str, index,
                  deadline: float) -> Assumption | str | None:
    """Build and probe `cls` with the parameters in `missing` assumed. None when some parameter
    fits no rule; why building failed when no assumption builds it."""
    seq = {**ASSUMED, **project.sizes}["T"]
    why = None
    # When the first assumption cannot build the class, try the second first; when a config's
    # attribute no rule knows stops both, try once more with such attributes None (unset options).
    order = ((0, 1, False), (1, 0, False), (0, 1, True))
    for first, second, nones in order:
        if nones and "AttributeError" not in (why or ""):
            break
        mine = assume_args(cls, missing, ns, node, first, seq, nones)
        if mine is None:
            return None
        kwargs, shown = mine
        mark = state.mark()
        instance = build(state, cls, (), {**given, **kwargs}, path, node)
        if instance is None:
            said = [f["message"] for f in state.findings[mark[0]:]]
            why = f"with assumed {shown_text(shown)}: {said[0]}" if said else why
            state.rollback(mark)
            continue
        state.instances[cls] = instance
        inputs = probe_class(state, instance, node, hints, project, path)
        errors = [f for f in state.findings[mark[0]:] if is_error(f["code"])]
        other_shown: dict[str, str] = {}
        dropped: list[Finding] = []
        if errors:
            answer = _second_probe(state, mark, cls, node, ns, missing, given, second, seq, hints, project, path,
                                   deadline, nones)
            other_shown = answer.get("shown", {})
            dropped = _keep_what_holds(state, errors, answer.get("errors", []))
        _note(state, cls, node, index, path, missing, shown, other_shown, dropped)
        return Assumption(shown, inputs)
    return why


def _second_probe(state: State, mark: tuple, cls: type, node: ast.ClassDef, ns: dict, missing: list[str],
                  given: dict[str, Any], variant: int, seq: int, hints: dict[int, Hint], project: ProjectHints,
                  path: str, deadline: float, nones: bool = False) -> dict:
    """The errors of `cls` probed under assumption `variant`, in a forked copy of this probe."""
    def work() -> bytes:
        probe_state.on_progress = None
        theirs = assume_args(cls, missing, ns, node, variant, seq, nones)
        if theirs is None:
            return b""
        state.rollback(mark)  # the first probe's findings would hide the same ones again
        start = len(state.findings)
        again = build(state, cls, (), {**given, **theirs[0]}, path, node)
        if again is not None:
            probe_class(state, again, node, hints, project, path)
        return json.dumps({"shown": theirs[1], "errors": _summary(state.findings[start:])}).encode()

    if in_copy():  # a re-probe copy may not fork again: probe here, then put the first findings back
        kept = state.findings[mark[0]:]
        try:
            answer = json.loads(work() or b"{}")
        except ValueError:
            answer = {}
        state.rollback(mark)
        for f in kept:
            state.restore(f)
        return answer
    try:
        return json.loads(run_forked(work, deadline) or b"{}")
    except ValueError:
        return {}


def _keep_what_holds(state: State, errors: list[Finding], theirs: list[dict]) -> list[Finding]:
    """Drop the errors the second probe did not report, and the fixes it did not propose alike."""
    fixes_of = {}
    for g in theirs:
        fixes_of.setdefault(_key(g), set()).update(tuple((tuple(s), t) for s, t in fix) for fix in g["fixes"])
    dropped = []
    for f in errors:
        if _key(f) not in fixes_of:
            dropped.append(f)
            state.drop(f)
            continue
        head, sep, rest = f["message"].partition("\n")
        f["message"] = f"{head} (with assumed constructor arguments; a second assumption gives the same mismatch){sep}{rest}"
        f["fixes"] = [fix for fix, text in zip(f["fixes"], _fix_texts(f)) if text in fixes_of[_key(f)]]
        f["alts"] = [a for a in f.get("alts", []) if _key(a) in fixes_of]
        for a in f["alts"]:
            a["fixes"] = [fix for fix, text in zip(a["fixes"], _fix_texts(a)) if text in fixes_of[_key(a)]]
    return dropped


def _note(state: State, cls: type, node: ast.ClassDef, index, path: str, missing: list[str], shown: dict[str, str],
          other: dict[str, str], dropped: list[Finding]) -> None:
    text = (f"nothing in the workspace builds `{cls.__name__}`: probed with assumed arguments {shown_text(shown)}; "
            f"add `{hint_example(cls, missing)}` on the class line for the real values")
    if dropped:
        first = dropped[0]
        more = f" and {len(dropped) - 1} more" if len(dropped) > 1 else ""
        second = f" ({shown_text(other)})" if other else ""
        said = first["message"].splitlines()[0].split(" (with an assumed")[0]
        text += (f". With these values line {first['span'][0]} gives `{said}`{more}, which a second "
                 f"assumption{second} does not confirm: not reported as an error")
    state.finding(PROBE_INCOMPLETE, path, class_name_span(index, node), text)


def outermost_first(pending: list[tuple[type, ast.ClassDef, list[str]]]) -> list[tuple[type, ast.ClassDef, list[str]]]:
    """The classes no other pending class names in its body first, each group in file order
    reversed (as the probe goes)."""
    used = set()
    for _, node, _ in pending:
        used |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id != node.name}
    return sorted(pending, key=lambda p: p[0].__name__ in used)
