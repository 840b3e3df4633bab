"""ProbeReport and its parts. Ranges are LSP ranges as plain dicts
({"start": {"line", "character"}, "end": {...}}, 0-based, UTF-16, end exclusive), so the JSON
contract, the CLI and the language server share one representation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shapelens.report.codes import PROBE_INCOMPLETE, severity

Range = dict[str, dict[str, int]]
START: Range = {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}


@dataclass
class TextEdit:
    range: Range
    new_text: str
    cell: int | None = None  # in a notebook: the 1-based cell the range is in (counting every cell)

    def to_json(self) -> dict:
        out: dict[str, Any] = {"range": self.range, "newText": self.new_text}
        if self.cell is not None:
            out["cell"] = self.cell
        return out


@dataclass
class Fix:
    title: str
    edits: list[TextEdit]
    path: str | None = None  # the file the edits apply to, when not the finding's own

    def to_json(self) -> dict:
        out: dict[str, Any] = {"title": self.title, "edits": [e.to_json() for e in self.edits]}
        if self.path:
            out["path"] = self.path
        return out

    @classmethod
    def from_json(cls, data: dict) -> Fix:
        return cls(data["title"], [TextEdit(e["range"], e["newText"]) for e in data["edits"]], data.get("path"))


@dataclass
class Related:
    range: Range
    message: str
    path: str | None = None
    cell: int | None = None

    def to_json(self) -> dict:
        out: dict[str, Any] = {"range": self.range, "message": self.message}
        if self.path:
            out["path"] = self.path
        if self.cell is not None:
            out["cell"] = self.cell
        return out


@dataclass
class ChainStep:
    """One step of the flow that brought a tensor to the layer that rejects it: where the tensor
    was made (an input, a layer's call, a view/flatten/cat/permute) and the shape it had then.
    The last step is the consumer: its `shape` says what it expects."""

    label: str  # `input_ids`, `self.embedding`, `view`
    shape: str  # `[1, 10, 128]`; for the consumer: `expects 128`
    range: Range
    path: str | None = None  # when not the finding's own file
    cell: int | None = None

    def to_json(self) -> dict:
        out: dict[str, Any] = {"label": self.label, "shape": self.shape, "range": self.range}
        if self.path:
            out["path"] = self.path
        if self.cell is not None:
            out["cell"] = self.cell
        return out


@dataclass
class Finding:
    path: str
    range: Range
    code: str
    severity: str
    message: str
    related: list[Related] = field(default_factory=list)
    fixes: list[Fix] = field(default_factory=list)
    chain: list[ChainStep] = field(default_factory=list)
    cell: int | None = None  # in a notebook: the 1-based cell `range` is in (counting every cell)

    def to_json(self) -> dict:
        out: dict[str, Any] = {
            "range": self.range,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "related": [r.to_json() for r in self.related],
            "fixes": [f.to_json() for f in self.fixes],
        }
        if self.chain:
            out["chain"] = [c.to_json() for c in self.chain]
        if self.cell is not None:
            out["cell"] = self.cell
        return out

    @classmethod
    def of(cls, code: str, path: str, range: Range, message: str, related: list[Related] | None = None,
           fixes: list[Fix] | None = None, chain: list[ChainStep] | None = None) -> Finding:
        """A finding whose severity is its code's (an unknown code raises codes.UnknownCode)."""
        return cls(path, range, code, severity(code), message, related or [], fixes or [], chain or [])

    @classmethod
    def note(cls, path: str, range: Range, message: str) -> Finding:
        """A probe-incomplete note: something the probe could not decide."""
        return cls.of(PROBE_INCOMPLETE, path, range, message)

    def sort_key(self) -> tuple:
        s = self.range["start"]
        return (self.path, self.cell or 0, s["line"], s["character"], self.code)


@dataclass
class ShapeEntry:
    path: str
    range: Range
    name: str
    kind: str  # "layer" | "tensor"
    shape: list[int] | None = None
    symbolic: str | None = None
    dtype: str | None = None
    input_shape: list[int] | None = None
    output_shape: list[int] | None = None
    # Layer details for hovers: constructor as torch prints it, parameter count, weight bytes.
    layer: str | None = None
    params: int | None = None
    param_bytes: int | None = None
    # Layer entries: each dim as the hover shows it (`["B", "32", "H/2", "W/2"]`); None when no
    # dim was assumed.
    input_symbolic: list[str] | None = None
    output_symbolic: list[str] | None = None
    # The assumed sizes these dims use, with the values they were probed at ({"H": 32}).
    symbols: dict[str, int] = field(default_factory=dict)
    cell: int | None = None  # in a notebook: the 1-based cell `range` is in
    # Built by a class probed with assumed constructor arguments: that class and its arguments.
    assumed_by: str | None = None
    assumed_args: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        out: dict[str, Any] = {"range": self.range, "name": self.name, "kind": self.kind}
        if self.kind == "tensor":
            out.update(shape=self.shape, symbolic=self.symbolic, dtype=self.dtype)
        else:
            out.update(input_shape=self.input_shape, output_shape=self.output_shape,
                       layer=self.layer, params=self.params, input_symbolic=self.input_symbolic,
                       output_symbolic=self.output_symbolic)
        if self.symbols:
            out["symbols"] = dict(self.symbols)
        if self.cell is not None:
            out["cell"] = self.cell
        if self.assumed_args:
            out["assumed_args"] = dict(self.assumed_args)
        return out


@dataclass
class SummaryRow:
    name: str  # attribute path inside the model, e.g. "blocks.0.attn"
    layer: str
    depth: int
    input_shape: list[int] | None
    output_shape: list[int] | None
    params: int
    input_symbolic: list[str] | None = None
    output_symbolic: list[str] | None = None
    # Equal for submodules built alike (same class, same arguments): repeated blocks collapse.
    signature: str | None = None


@dataclass
class ClassSummary:
    path: str
    range: Range  # the class name in `class Foo(nn.Module):`
    name: str
    rows: list[SummaryRow]
    total_params: int
    param_bytes: int
    assumed: str | None = None
    symbols: dict[str, int] = field(default_factory=dict)  # assumed sizes used by the rows' dims
    # Constructor arguments the probe assumed, nothing in the workspace building the class.
    assumed_args: dict[str, str] = field(default_factory=dict)


@dataclass
class ProbeReport:
    path: str
    findings: list[Finding] = field(default_factory=list)
    shapes: list[ShapeEntry] = field(default_factory=list)
    classes: list[ClassSummary] = field(default_factory=list)
    elapsed_ms: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def note_only(cls, path: str, message: str, range: Range | None = None) -> ProbeReport:
        """A report that only says why there is nothing else (at the file's start by default)."""
        return cls(path, [Finding.note(path, range or START, message)])

    def findings_for(self, path: str) -> list[Finding]:
        return [f for f in self.findings if f.path == path]

    @property
    def error_count(self) -> int:
        return sum(1 for f in self.findings if f.severity == "error")
