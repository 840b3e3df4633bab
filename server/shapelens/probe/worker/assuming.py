"""Probing a class under assumed constructor arguments (assume.py), the last resort when nothing
in the workspace says how it is built.

A finding that exists only because of an assumed value is not the user's error. So when the
probe under the first assumption reports errors, the class is built and probed again under the
second (in a helper probe the worker forks on request, which builds and probes the class alone
after the file's statements; a helper itself probes the second assumption in place and takes the
first's findings back): an error is kept only when the
second probe reports it too, at the same place, and of its fixes only those the second probe
proposes with the same text (a fix that writes an assumed number is right only under that
assumption). What is dropped is said in one `probe-incomplete` note on the class, which also
names the values assumed and the hint that gives the real ones.
"""

from __future__ import annotations

import ast
import re
import time
from typing import Any

from shapelens.analysis.hints import Hint, ProjectHints
from shapelens.probe import protocol
from shapelens.probe.protocol import Finding
from shapelens.probe.worker import pipes
from shapelens.probe.worker.assume import WIDE, assume_args, shown_text, unset_sizes
from shapelens.probe.worker.branches import Branch
from shapelens.probe.worker.construct import build
from shapelens.probe.worker.madeup import unexplained
from shapelens.probe.worker.probing import ASSUMED, probe_class
from shapelens.probe.worker.results import class_name_span
from shapelens.probe.worker.state import State
from shapelens.report.codes import PROBE_INCOMPLETE, is_error


class Assumption:
    """What a class was probed with: the assumed arguments shown, the inputs made up."""

    def __init__(self, shown: dict[str, str], inputs: str | None, dropped: list[int] | None = None) -> None:
        self.shown, self.inputs = shown, inputs
        self.dropped = dropped or []  # lines of the errors the second assumption did not confirm


def _key(f: Finding | dict) -> tuple:
    return (f["code"], f["path"], tuple(f["span"]))


def _fix_texts(f: Finding | dict) -> list[tuple]:
    return _texts(_fix_edits(f))


def _texts(fixes: list[list[protocol.EditText]]) -> list[tuple]:
    """Each fix as its (span, text) pairs, comparable and hashable."""
    return [tuple((tuple(e["span"]), e["new_text"]) for e in fix) for fix in fixes]


def _fix_edits(f: Finding | dict) -> list[list[protocol.EditText]]:
    return [[protocol.edit_text(e["span"], e["new_text"]) for e in fix["edits"]] for fix in f.get("fixes", [])]


def _summary(findings: list[Finding]) -> list[protocol.AssumedError]:
    """The second probe's errors as the first compares them: place, code and fix texts, also of
    the alternatives (the same problem told from another constructor argument)."""
    out = []
    for f in findings:
        if not is_error(f["code"]):
            continue
        for g in [f, *f.get("alts", [])]:
            out.append(protocol.assumed_error(g["code"], g["path"], g["span"], _fix_edits(g)))
    return out


def _seq(project: ProjectHints) -> int:
    return {**ASSUMED, **project.sizes}["T"]


def hint_example(cls: type, names: list[str]) -> str:
    return f"# shapelens: {cls.__name__}({', '.join(f'{m}=...' for m in names)})"


def probe_assumed(state: State, cls: type, node: ast.ClassDef, ns: dict, missing: list[str], given: dict[str, Any],
                  hints: dict[int, Hint], project: ProjectHints, path: str, index,
                  deadline: float, branch: Branch | None = None) -> Assumption | str | None:
    """Build and probe `cls` with the parameters in `missing` assumed. None when some parameter
    fits no rule; why building failed when no assumption builds it. `branch`: the probe takes a
    constructor branch the first one did not, with these values (in `given` too)."""
    seq = _seq(project)
    why = None
    order = ((0, 1), (1, 0))  # when the first assumption cannot build the class, try the second first
    # Then both again with the counts and widths left None assumed too (`assert exists(depth)`);
    # last, when a config's attribute no rule knows stopped them, with such attributes None
    # (options left unset); then with wide widths (assume.WIDE).
    unset = [n for n in unset_sizes(cls) if n not in missing and n not in given]
    tries = ([(f, s, missing, False) for f, s in order] + [(f, s, missing + unset, False) for f, s in order if unset]
             + [(0, 1, missing, True)] + [(f, s, missing + unset, False) for f, s in WIDE])
    for first, second, missing, nones in tries:
        if nones and "AttributeError" not in (why or ""):
            continue
        mine = assume_args(cls, missing, ns, node, first, seq, nones, project.root)
        if mine is None:
            return None
        kwargs, shown = mine
        mark = state.mark()
        instance = build(state, cls, (), {**given, **kwargs}, path, node)
        zero = zero_width(instance) if instance is not None else None
        if instance is None or zero:
            said = [zero] if zero else [f["message"] for f in state.findings[mark[0]:]]
            why = (f"with assumed {shown_text(shown)}: {said[0]}" if shown else said[0]) if said else why
            state.rollback(mark)
            continue
        state.instances[cls] = instance
        inputs = probe_class(state, instance, node, hints, project, path)
        errors = [f for f in state.findings[mark[0]:] if is_error(f["code"])]
        other_shown: dict[str, str] = {}
        dropped: list[Finding] = []
        disagree: list[tuple[Finding, str, int, int]] = []
        later: list[Finding] = []  # errors the values that agree reach, past the first probe's stop
        # An op's mismatch no declared width explains (no fix) in a branch probe comes from the
        # inputs made up anew for the branch's layers (an Embedding's [B, T] for a timestep the
        # body takes as [B]); under assumed arguments, one that depends on the made-up input
        # size pits an assumed size against a made-up one (guided-diffusion's AttentionPool2d:
        # `spacial_dim ** 2 + 1` positions against a made-up length): neither is the file's.
        made_up = [f for f in errors if branch is not None and unexplained(f)]
        for f in made_up:
            state.drop(f)
            errors.remove(f)
        if errors and missing:  # nothing assumed (a branch's value alone): the errors hold as they are
            answer = _second_probe(state, mark, cls, node, ns, missing, given, second, hints, project, path,
                                   deadline, nones, branch.flips if branch else {})
            other_shown = answer.get("shown", {})
            dropped = _keep_what_holds(state, errors, answer.get("errors", []))
            held = [f for f in errors if f not in dropped and unexplained(f) and "with an assumed" in f["message"]]
            for f in held:  # confirmed, yet between an assumed size and a made-up one
                state.drop(f)
                made_up.append(f)
            left = [f for f in errors if f not in dropped and f not in held]
            if left and branch is None:
                disagree = _disagreeing(state, mark, cls, node, ns, missing, given, first, kwargs, left, hints,
                                        project, path, deadline, nones)
            if disagree:  # probed again with the values that agree, to show the shapes they give
                fitted = {**kwargs, **{name: value for _, name, value, _ in disagree}}
                again = _reprobe(state, mark, cls, node, {**given, **fitted}, [f for f in left if f in state.findings],
                                 hints, project, path, later)
                if again is not None:
                    inputs = again
                    shown = {**shown, **{name: str(value) for _, name, value, _ in disagree}}
        if branch is not None:
            _branch_note(state, cls, node, index, path, branch, shown, other_shown, dropped, errors, made_up)
        else:
            _note(state, cls, node, index, path, missing, shown, other_shown, dropped, made_up, disagree, later)
        return Assumption(shown, inputs, [f["span"][0] for f in dropped + [d[0] for d in disagree]
                                          if f["path"] == path])
    return why


# A width that comes out 0 (`num_feat // squeeze_factor` with too small an assumed `num_feat`) is
# no model anyone writes: the assumption is wrong, not the file, so the next one is tried.
WIDTH_ATTRS = ("in_features", "out_features", "in_channels", "out_channels", "num_features", "embedding_dim",
               "hidden_size", "embed_dim", "num_channels")


def zero_width(instance: Any) -> str | None:
    """Which layer of `instance` has a width of 0, or None."""
    for name, module in instance.named_modules() if hasattr(instance, "named_modules") else ():
        for attr in WIDTH_ATTRS:
            if getattr(module, attr, None) == 0:
                return f"`{name or type(instance).__name__}.{attr}` comes out 0"
    return None


def _second_probe(state: State, mark: tuple, cls: type, node: ast.ClassDef, ns: dict, missing: list[str],
                  given: dict[str, Any], variant: int, hints: dict[int, Hint], project: ProjectHints,
                  path: str, deadline: float, nones: bool = False,
                  flips: dict[str, Any] | None = None) -> protocol.AssumedErrors | dict:
    """The errors of `cls` probed under assumption `variant`: by a helper probe ({} when it
    decided nothing), or, in a helper, here. `flips`: values that take a branch, given to both."""
    if not pipes.is_helper():
        seconds = deadline - time.monotonic()
        return pipes.ask(protocol.second_assumption(pipes.next_seq(), seconds, cls.__name__, missing, variant, nones,
                                                    flips or {}), seconds) or {}
    kept = state.findings[mark[0]:]
    state.rollback(mark)  # the first probe's findings would hide the same ones again
    answer = second_errors(state, cls, node, ns, missing, {**given, **(flips or {})}, variant, hints, project, path,
                           nones)
    state.rollback(mark)
    for f in kept:
        state.restore(f)
    return answer or {}


def second_errors(state: State, cls: type, node: ast.ClassDef, ns: dict, missing: list[str], given: dict[str, Any],
                  variant: int, hints: dict[int, Hint], project: ProjectHints,
                  path: str, nones: bool = False) -> protocol.AssumedErrors | None:
    """`cls` built and probed under assumption `variant`: the arguments shown and its errors
    (None when no value fits a parameter)."""
    theirs = assume_args(cls, missing, ns, node, variant, _seq(project), nones, project.root)
    if theirs is None:
        return None
    start = len(state.findings)
    again = build(state, cls, (), {**given, **theirs[0]}, path, node)
    if again is not None:
        probe_class(state, again, node, hints, project, path)
    return protocol.assumed_errors(theirs[1], _summary(state.findings[start:]))


def _reprobe(state: State, mark: tuple, cls: type, node: ast.ClassDef, kwargs: dict[str, Any], kept: list[Finding],
             hints: dict[int, Hint], project: ProjectHints, path: str, later: list[Finding]) -> str | None:
    """`cls` built and probed again in place of the first probe, with `kwargs`; of its errors,
    those at the places of `kept` (the errors both assumptions confirmed) stay. None, with the
    first probe left as it was, when it cannot be built so."""
    before = state.findings[mark[0]:]
    state.rollback(mark)
    instance = build(state, cls, (), kwargs, path, node)
    if instance is None:
        state.rollback(mark)
        for f in before:
            state.restore(f)
        return None
    state.instances[cls] = instance
    inputs = probe_class(state, instance, node, hints, project, path)
    # Kept errors keep only the fixes both assumptions proposed (a fix writing an assumed number
    # is right only under that assumption): the first probe's, already sifted.
    fixes_of: dict[tuple, set] = {}
    for f in kept:
        for g in [f, *f.get("alts", [])]:
            fixes_of.setdefault(_key(g), set()).update(_fix_texts(g))
    places = {_key(f) for f in kept}
    for f in [f for f in state.findings[mark[0]:] if is_error(f["code"])]:
        if _key(f) not in places:  # past where the first probe stopped: no second probe confirms it
            state.drop(f)
            later.append(f)
            continue
        if CONFIRMED not in f["message"]:
            _say_confirmed(f)
        _sift(f, fixes_of)
    return inputs


MAX_REPAIRS = 2  # probes spent per class on telling assumed values that disagree with each other


def _disagreeing(state: State, mark: tuple, cls: type, node: ast.ClassDef, ns: dict, missing: list[str],
                 given: dict[str, Any], variant: int, kwargs: dict[str, Any], errors: list[Finding],
                 hints: dict[int, Hint], project: ProjectHints, path: str, deadline: float,
                 nones: bool) -> list[tuple[Finding, str, int, int]]:
    """Errors both assumptions confirm, yet only because two assumed values do not fit each
    other (timm's `Bottleneck(inplanes, planes)` adds its input to `planes * 4` channels, so it
    needs `inplanes == 4 * planes`, which no rule by name knows): the error names an assumed
    value and another size; probed again with that argument set to the other size, it is gone.
    A one-width slip in the file (`dim + 1`) still disagrees then, and stays an error. Each
    returned error is dropped, with the argument and value that made it go away."""
    found: list[tuple[Finding, str, int, int]] = []
    tried = 0
    made_up = set(ASSUMED.values())
    for f in errors:
        head = f["message"].splitlines()[0].split(" (with ")[0]
        sizes = {int(n) for n in re.findall(r"(?<![\w.-])(\d+)\b", head)} - made_up
        for name, value in kwargs.items():
            if type(value) is not int or value not in sizes or tried >= MAX_REPAIRS:
                continue
            for other in sorted(sizes - {value}, reverse=True):
                if other < 8 or tried >= MAX_REPAIRS:
                    continue
                tried += 1
                # The other assumed values as they were (assumed anew, they would shift along).
                kept = {k: v for k, v in kwargs.items() if v is None or type(v) in (int, float, bool, str)}
                rest = [m for m in missing if m not in kept]
                answer = _second_probe(state, mark, cls, node, ns, rest, given, variant, hints, project, path,
                                       deadline, nones, {**kept, name: other})
                if "errors" in answer and not any(_key(g) == _key(f) for g in answer["errors"]):
                    found.append((f, name, other, value))
                    state.drop(f)
                    break
            if found and found[-1][0] is f:
                break
    return found


CONFIRMED = "(with assumed constructor arguments; a second assumption gives the same mismatch)"


def _say_confirmed(f: Finding) -> None:
    head, sep, rest = f["message"].partition("\n")
    f["message"] = f"{head} {CONFIRMED}{sep}{rest}"


def _sift(f: Finding, fixes_of: dict[tuple, set]) -> None:
    """Keep of `f`'s fixes, and of its alternatives, only those `fixes_of` holds for their place."""
    f["fixes"] = [fix for fix, text in zip(f["fixes"], _fix_texts(f)) if text in fixes_of[_key(f)]]
    f["alts"] = [a for a in f.get("alts", []) if _key(a) in fixes_of]
    for a in f["alts"]:
        a["fixes"] = [fix for fix, text in zip(a["fixes"], _fix_texts(a)) if text in fixes_of[_key(a)]]


def _keep_what_holds(state: State, errors: list[Finding], theirs: list[dict]) -> list[Finding]:
    """Drop the errors the second probe did not report, and the fixes it did not propose alike."""
    fixes_of = {}
    for g in theirs:
        fixes_of.setdefault(_key(g), set()).update(_texts(g["fixes"]))
    dropped = []
    for f in errors:
        if _key(f) not in fixes_of:
            dropped.append(f)
            state.drop(f)
            continue
        _say_confirmed(f)
        _sift(f, fixes_of)
    return dropped


def _note(state: State, cls: type, node: ast.ClassDef, index, path: str, missing: list[str], shown: dict[str, str],
          other: dict[str, str], dropped: list[Finding], made_up: list[Finding],
          disagree: list[tuple[Finding, str, int, int]], later: list[Finding]) -> None:
    text = (f"nothing in the workspace builds `{cls.__name__}`: probed with assumed arguments {shown_text(shown)}; "
            f"add `{hint_example(cls, missing)}` on the class line for the real values") + _made_up_text(made_up)
    if dropped:
        first = dropped[0]
        more = f" and {len(dropped) - 1} more" if len(dropped) > 1 else ""
        second = f" ({shown_text(other)})" if other else ""
        said = first["message"].splitlines()[0].split(" (with an assumed")[0]
        text += (f". With these values line {first['span'][0]} gives `{said}`{more}, which a second "
                 f"assumption{second} does not confirm: not reported as an error")
    for f, name, value, old in disagree:
        said = f["message"].splitlines()[0].split(" (with an assumed")[0]
        text += (f". With {name}={old}, line {f['span'][0]} gives `{said}`; {name}={value} fits the other values, "
                 f"so that is what was probed (assumed values that disagree with each other are not the file's "
                 f"error)")
    for f in later[:1]:
        text += (f". With those values line {f['span'][0]} then reports `{f['message'].splitlines()[0]}` (not as an "
                 f"error: no second assumption confirms it; hint the real values to check it)")
    state.finding(PROBE_INCOMPLETE, path, class_name_span(index, node), text)


def _made_up_text(made_up: list[Finding]) -> str:
    if not made_up:
        return ""
    first = made_up[0]
    return (f". With these values, on inputs made up for this probe, line {first['span'][0]} reports (not as an "
            f"error; hint the real inputs on the def line): {first['message'].splitlines()[0]}")


def _branch_note(state: State, cls: type, node: ast.ClassDef, index, path: str, branch: Branch,
                 shown: dict[str, str], other: dict[str, str], dropped: list[Finding], errors: list[Finding],
                 made_up: list[Finding]) -> None:
    """Said on the class line: which values took which branch, and what they alone found."""
    values = ", ".join(f"{k}={v!r}" for k, v in branch.flips.items()) or ", ".join(
        f"{k}={shown.get(k, 'a value')}" for k in branch.fill)
    text = f"also probed with {values} to take {branch.taken}, a branch the first probe did not take"
    if shown:
        text += f" (other arguments assumed: {shown_text(shown)})"
    if dropped:
        second = f" ({shown_text(other)})" if other else ""
        said = dropped[0]["message"].splitlines()[0]
        text += (f". With these values line {dropped[0]['span'][0]} gives `{said}`, which a second "
                 f"assumption{second} does not confirm: not reported as an error")
    text += _made_up_text(made_up)
    for f in errors:
        if f not in dropped:
            for g in [f, *f.get("alts", [])]:  # the alternative the fix check may choose says it too
                head, sep, rest = g["message"].partition("\n")
                g["message"] = f"{head} (with {values}){sep}{rest}"
    _say(state, path, class_name_span(index, node), text)


def untold(state: State, mark: tuple, index, node: ast.ClassDef, path: str, branch: Branch, why: str) -> None:
    """The errors a branch probe found with values that are not the class's own (the workspace
    builds it otherwise; an option left None given one): said on the class line, not reported."""
    errors = [f for f in state.findings[mark[0]:] if is_error(f["code"])]
    for f in errors:
        state.drop(f)
    if errors:
        values = ", ".join([*(f"{k}={v!r}" for k, v in branch.flips.items()), *branch.given])
        _say(state, path, class_name_span(index, node),
             f"with {values}, line {errors[0]['span'][0]} gives `{errors[0]['message'].splitlines()[0]}`: not "
             f"reported as an error, {why}")


def _say(state: State, path: str, where, text: str) -> None:
    """`text` as the note on `where`, or added to the note already there."""
    if state.finding(PROBE_INCOMPLETE, path, where, text) is None:
        same = next(f for f in state.findings if f["code"] == PROBE_INCOMPLETE and f["path"] == path
                    and tuple(f["span"]) == tuple(where))
        same["message"] += "\n" + text


def outermost_first(pending: list[tuple[type, ast.ClassDef, list[str]]]) -> list[tuple[type, ast.ClassDef, list[str]]]:
    """The classes no other pending class names in its body first, each group in file order
    reversed (as the probe goes)."""
    used = set()
    for _, node, _ in pending:
        used |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id != node.name}
    return sorted(pending, key=lambda p: p[0].__name__ in used)
