"""What crosses the process boundary between the probe worker and the editor side.

Torch-free: the worker builds these messages and the editor side (report/build.py, the engine's
cache) reads them, both through this module. Spans are the worker's: (line, col, end_line,
end_col), 1-based lines and UTF-8 byte columns, as lists once they are JSON. One constructor
per message, so a message's keys are written once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, NotRequired, TypedDict

from shapelens.report.codes import code as known_code

SpanList = list[int]


def _plain(value: Any) -> Any:
    """A number of the user's code that JSON does not know: numpy's int64 (`nn.Linear(np.prod(shape),
    ...)` records one as in_features), a 0-d tensor; anything else as its text."""
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError, RuntimeError):
            pass
    return str(value)


def _plain_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k if isinstance(k, (str, int, float, bool)) or k is None else _plain(k): _plain_keys(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_keys(v) for v in value]
    return value


def dumps(msg: Any) -> str:
    """A message as one line of JSON, the worker's numbers made plain (as keys too)."""
    try:
        return json.dumps(msg, default=_plain)
    except TypeError:  # a key JSON does not take: a width of the user's numpy code
        return json.dumps(_plain_keys(msg), default=_plain)


class Edit(TypedDict):
    path: str
    span: SpanList
    new_text: str


class Fix(TypedDict):
    title: str
    edits: list[Edit]


class Related(TypedDict):
    path: str
    span: SpanList
    message: str


class ChainStep(TypedDict):
    """A step of the flow that brought a tensor to the layer rejecting it (the last step)."""

    label: str  # `input_ids`, `self.embedding`, `view`
    shape: str  # `[1, 10, 128]`; the last step: `expects 128`
    path: str
    span: SpanList


class Finding(TypedDict):
    code: str
    path: str
    span: SpanList
    message: str
    related: list[Related]
    fixes: list[Fix]
    owner: str | None  # the class whose probe found it (None: module-level code)
    chain: NotRequired[list[ChainStep]]
    # Worker-internal, stripped before the result leaves the worker: the same problem told from
    # other constructor arguments, and whether other input sizes could make it go away.
    alts: NotRequired[list[Finding]]
    fixed_size: NotRequired[bool]


class TensorShape(TypedDict):
    path: str
    span: SpanList
    name: str
    shape: list[int]
    symbolic: str | None  # `[B, 32, H/2, W/2]` where dims were assumed
    dtype: str
    owner: str | None
    symbols: NotRequired[dict[str, int]]  # the assumed sizes the dims use, as probed ({"H": 32})


class LayerShape(TypedDict):
    path: str
    span: SpanList
    name: str
    input_shape: list[int] | None
    output_shape: list[int] | None
    input_symbolic: list[str] | None  # each dim as hovers show it, where dims were assumed
    output_symbolic: list[str] | None
    layer: str
    params: int
    param_bytes: int
    owner: str | None
    symbols: NotRequired[dict[str, int]]


class SummaryRow(TypedDict):
    name: str
    layer: str
    depth: int
    input_shape: list[int] | None
    output_shape: list[int] | None
    params: int
    input_symbolic: NotRequired[list[str] | None]
    output_symbolic: NotRequired[list[str] | None]
    signature: NotRequired[str | None]  # equal for submodules built alike: repeated blocks fold


class ClassShape(TypedDict):
    path: str
    span: SpanList
    name: str
    rows: list[SummaryRow]
    total_params: int
    param_bytes: int
    assumed: str | None
    owner: str | None
    symbols: NotRequired[dict[str, int]]
    # Constructor arguments the probe assumed, nothing in the workspace giving them ({"dim": "64"}).
    assumed_args: NotRequired[dict[str, str]]


class Result(TypedDict):
    findings: list[Finding]
    tensors: list[TensorShape]
    layers: list[LayerShape]
    classes: list[ClassShape]
    probed: NotRequired[list[str]]  # the classes this probe covered (the engine's per-class cache)
    stats: dict[str, Any]


INTERNAL_KEYS = ("alts", "fixed_size")


def edit(path: str, span: Sequence[int], new_text: str) -> Edit:
    return {"path": path, "span": list(span), "new_text": new_text}


def fix(title: str, edits: list[Edit]) -> Fix:
    return {"title": title, "edits": edits}


def change(param: str, path: str, span: Sequence[int], text: str) -> Fix:
    """The commonest fix: write `text` as the constructor argument `param`."""
    return fix(f"Change {param} to {text}", [edit(path, span, text)])


def related(path: str, span: Sequence[int], message: str) -> Related:
    return {"path": path, "span": list(span), "message": message}


def finding(code: str, path: str, span: Sequence[int], message: str, related: Iterable[Related] = (),
            fixes: Iterable[Fix] = (), owner: str | None = None) -> Finding:
    known_code(code)  # an unknown code is a bug: fail here, not as a wrong severity later
    return {"code": code, "path": path, "span": list(span), "message": message, "related": list(related),
            "fixes": list(fixes), "owner": owner}


def public(f: Finding) -> Finding:
    """A finding without the worker-internal keys."""
    return {k: v for k, v in f.items() if k not in INTERNAL_KEYS}  # type: ignore[return-value]


def chain_step(label: str, shape: str, path: str, span: Sequence[int]) -> ChainStep:
    return {"label": label, "shape": shape, "path": path, "span": list(span)}


def tensor_shape(path: str, span: Sequence[int], name: str, shape: list[int], symbolic: str | None, dtype: str,
                 owner: str | None, symbols: dict[str, int] | None = None) -> TensorShape:
    return {"path": path, "span": list(span), "name": name, "shape": shape, "symbolic": symbolic, "dtype": dtype,
            "owner": owner, "symbols": symbols or {}}


def layer_shape(path: str, span: Sequence[int], name: str, input_shape: list[int] | None,
                output_shape: list[int] | None, input_symbolic: list[str] | None, output_symbolic: list[str] | None,
                layer: str, params: int, param_bytes: int, owner: str | None,
                symbols: dict[str, int] | None = None) -> LayerShape:
    return {"path": path, "span": list(span), "name": name, "input_shape": input_shape, "output_shape": output_shape,
            "input_symbolic": input_symbolic, "output_symbolic": output_symbolic, "layer": layer, "params": params,
            "param_bytes": param_bytes, "owner": owner, "symbols": symbols or {}}


def summary_row(name: str, layer: str, depth: int, input_shape: list[int] | None, output_shape: list[int] | None,
                params: int, input_symbolic: list[str] | None = None, output_symbolic: list[str] | None = None,
                signature: str | None = None) -> SummaryRow:
    return {"name": name, "layer": layer, "depth": depth, "input_shape": input_shape, "output_shape": output_shape,
            "params": params, "input_symbolic": input_symbolic, "output_symbolic": output_symbolic,
            "signature": signature}


def class_shape(path: str, span: Sequence[int], name: str, rows: list[SummaryRow], total_params: int,
                param_bytes: int, assumed: str | None, owner: str | None,
                symbols: dict[str, int] | None = None, assumed_args: dict[str, str] | None = None) -> ClassShape:
    return {"path": path, "span": list(span), "name": name, "rows": rows, "total_params": total_params,
            "param_bytes": param_bytes, "assumed": assumed, "owner": owner, "symbols": symbols or {},
            "assumed_args": assumed_args or {}}


def result(findings: list[Finding], tensors: list[TensorShape], layers: list[LayerShape],
           classes: list[ClassShape], stats: dict[str, Any], probed: list[str] | None = None) -> Result:
    out: Result = {"findings": [public(f) for f in findings], "tensors": tensors, "layers": layers,
                   "classes": classes, "stats": stats}
    if probed is not None:
        out["probed"] = probed
    return out


# -- torch's names (the planner's table; shapelens.probe.torchnames) ----------------------------------
class Hello(TypedDict):
    """The worker's first line, before it imports torch: where torch is (the table's cache key)."""
    event: str  # "hello"
    torch_origin: str
    torch_version: str


class TorchNames(TypedDict):
    version: str
    path: str
    names: dict[str, list[str]]  # public dotted name -> [canonical name, kind]


def hello(torch_origin: str, torch_version: str) -> Hello:
    return {"event": "hello", "torch_origin": torch_origin, "torch_version": torch_version}


def torch_names(version: str, path: str, names: dict[str, list[str]]) -> TorchNames:
    return {"version": version, "path": path, "names": names}


# -- a probe's requests to the worker (a probe child may not fork: the worker forks its helpers) -------
class Reprobe(TypedDict):
    """Probe the file again with `edits` applied (choosing among fixes, worker/verify.py)."""
    op: str  # "reprobe"
    seq: int  # echoed by the answer: a late answer to an abandoned request is not taken for the next
    seconds: float  # what the asking probe can still wait
    edits: list[Edit]


class SecondAssumption(TypedDict):
    """Probe class `cls` alone under assumption `variant` of its `missing` arguments (assuming.py)."""
    op: str  # "assume"
    seq: int
    seconds: float
    cls: str
    missing: list[str]
    variant: int
    nones: bool  # a config's attributes no rule knows are None (options left unset)
    flips: NotRequired[dict[str, bool | int | float | str | None]]  # values that take a constructor branch


class FoundAt(TypedDict):
    """A re-probe's finding, as much of it as choosing a fix compares."""
    code: str
    path: str
    span: SpanList


class EditText(TypedDict):
    span: SpanList
    new_text: str


class AssumedError(TypedDict):
    """An error of the second assumption's probe: where, and the texts of its fixes."""
    code: str
    path: str
    span: SpanList
    fixes: list[list[EditText]]


class AssumedErrors(TypedDict):
    shown: dict[str, str]  # the arguments the second assumption gave
    errors: list[AssumedError]


class Answer(TypedDict):
    """A helper probe's answer (helper -> worker -> the asking probe); null when it decided nothing."""
    seq: int
    answer: list[FoundAt] | AssumedErrors | None


# The answer each request expects.
ANSWERS: dict[str, Any] = {"reprobe": list[FoundAt] | None, "assume": AssumedErrors | None}


def reprobe(seq: int, seconds: float, edits: list[Edit]) -> Reprobe:
    return {"op": "reprobe", "seq": seq, "seconds": seconds, "edits": edits}


def second_assumption(seq: int, seconds: float, cls: str, missing: list[str], variant: int,
                      nones: bool = False, flips: dict[str, Any] | None = None) -> SecondAssumption:
    return {"op": "assume", "seq": seq, "seconds": seconds, "cls": cls, "missing": missing, "variant": variant,
            "nones": nones, "flips": flips or {}}


def found_at(code: str, path: str, span: Sequence[int]) -> FoundAt:
    return {"code": code, "path": path, "span": list(span)}


def edit_text(span: Sequence[int], new_text: str) -> EditText:
    return {"span": list(span), "new_text": new_text}


def assumed_error(code: str, path: str, span: Sequence[int], fixes: list[list[EditText]]) -> AssumedError:
    return {"code": code, "path": path, "span": list(span), "fixes": fixes}


def assumed_errors(shown: dict[str, str], errors: list[AssumedError]) -> AssumedErrors:
    return {"shown": shown, "errors": errors}


def answer(seq: int, value: list[FoundAt] | AssumedErrors | None) -> Answer:
    return {"seq": seq, "answer": value}
