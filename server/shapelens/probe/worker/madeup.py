"""Mismatches that only the made-up inputs make: an op between made-up sizes (an Embedding's
[B, T] labels where the body takes them as [B]) that no declared width explains, or a shape
unpacked into more names than the guessed rank has. The guess of
the input, not the file, is what disagrees, so it is said in a note on the class, not as an error."""

from __future__ import annotations

import ast
import re

from shapelens.analysis.hints import Hint, ProjectHints
from shapelens.analysis.index import method_def
from shapelens.probe.protocol import Finding
from shapelens.probe.worker.results import class_name_span
from shapelens.probe.worker.state import State
from shapelens.report.codes import PROBE_INCOMPLETE, SHAPE_ERROR


def unexplained(f: Finding) -> bool:
    """An op's mismatch without a fix on any declared width, its alternatives' included."""
    return f["code"] == SHAPE_ERROR and not f.get("fixes") and not any(a.get("fixes") for a in f.get("alts", []))


def made_up_only(f: Finding, made_up: dict[str, int]) -> bool:
    """Unexplained, and naming every made-up size (the batch against the length: `[17, 13]`
    labels where `[17]` was meant). A mismatch of one made-up size against a width (`q(x) @ k(x)`:
    inner dims 64 and 13) is the file's, and stays an error. So is none that only a made-up batch
    makes: a model written for one sample at a time (`x.view(1, 1, -1)`)."""
    first = f["message"].splitlines()[0]
    return batch_of_one(first) or unexplained(f) and (
        all(re.search(rf"\b{n}\b", first) for n in made_up.values()) or _unpacked(first))


def batch_of_one(message: str) -> bool:
    """`view to [1, 1, 5]: `x` [B, T, 5] has ...`: a fixed shape asked of a made-up batch; or a
    width the made-up batch is part of (`receives `output` [1, 1, 100 * B * T]`): no layer's width
    includes the batch, so the model reshapes its input for one sample at a time."""
    fixed = re.match(r"(view|reshape) to \[([-\d, ]*)\]: `[^`]*` \[([^\]]*)\]", message)
    if fixed is not None and re.search(r"\bB\b", fixed.group(3)):
        return True
    width = re.search(r"receives `[^`]*` \[([^\]]*)\] with \d+ features", message)
    return width is not None and bool(re.search(r"\bB\b", width.group(1).split(",")[-1]))


def _unpacked(message: str) -> bool:
    """`b, n, c = x.shape` on an input whose rank was guessed (from its first layer, an
    nn.Linear that takes any rank): the guess, not the file, has too few dims."""
    return bool(re.match(r"(not enough|too many) values to unpack \(expected \d+", message))


def hinted(node: ast.ClassDef, hints: dict[int, Hint], project: ProjectHints, cls: type) -> bool:
    """The user said what forward takes: then nothing about its inputs was made up."""
    fwd = method_def(node, "forward")
    lines = {node.lineno, fwd.lineno if fwd is not None else node.lineno}
    return project.for_class(cls.__module__, cls.__name__) is not None or any(ln in hints for ln in lines)


def tell_made_up(state: State, f: Finding, path: str, node: ast.ClassDef, made_up: dict[str, int]) -> None:
    state.drop(f)
    index = state.index(path)
    if index is None:
        return
    made = "inputs whose rank this probe guessed" if _unpacked(f["message"]) else \
        f"inputs made up for this probe (batch {made_up['B']}, length {made_up['T']})"
    state.finding(PROBE_INCOMPLETE, path, class_name_span(index, node),
                  f"on {made}, line "
                  f"{f['span'][0]} reports `{f['message'].splitlines()[0]}`; no declared width explains it, "
                  "so it is not reported as an error: hint the real inputs on the def line "
                  "(`# shapelens: x=float[...]`)")
