"""Markdown for hovers and the model summary. Pure: report entries in, text out."""

from __future__ import annotations

import re

from shapelens.report.collapse import fold
from shapelens.report.model import ClassSummary, Finding, ShapeEntry

UNTRUSTED = ("**shapelens**: shapes are unavailable because the workspace is untrusted, so none of its "
             "code is run. Trust the workspace (VS Code: *Manage Workspace Trust*; other editors: the "
             "`trusted` initialization option) to see tensor shapes.")
_EMBEDDING = re.compile(r"^Embedding\((?P<rows>\d+), (?P<cols>\d+)(?P<rest>.*)\)$")


def shape_text(shape: list[int] | None, symbolic: str | list[str] | None = None) -> str:
    """`[B, 32, H/2, W/2]` where dims were assumed, else the numbers."""
    if isinstance(symbolic, list):
        return f"[{', '.join(symbolic)}]"
    if symbolic:
        return symbolic
    return "?" if shape is None else f"[{', '.join(str(d) for d in shape)}]"


def nbytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    size = n / 1024
    for unit in ("KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def assumed_note(symbols: dict[str, int]) -> str | None:
    """`B`, `H`: sizes the probe assumed, with the values they were probed at."""
    if not symbols:
        return None
    names = ", ".join(f"`{n}`" for n in symbols)
    values = ", ".join(f"{n}={v}" for n, v in symbols.items())
    return f"{names}: sizes the probe assumed (probed as {values}); numbers come from the file."


def assumed_args_note(owner: str | None, args: dict[str, str]) -> str | None:
    """The constructor arguments the probe assumed for the class that built this."""
    if not args:
        return None
    values = ", ".join(f"{k}={v}" for k, v in args.items())
    who = f"`{owner}`" if owner else "the class"
    return (f"Nothing in the workspace builds {who}: probed with assumed arguments {values}. "
            f"Hint the real ones with `# shapelens: {owner or 'Model'}(...)` on the class line.")


def tensor_hover(entry: ShapeEntry) -> str:
    lines = [f"**{entry.name}** · `{shape_text(entry.shape, entry.symbolic)}` {entry.dtype or ''}".rstrip()]
    for note in (assumed_note(entry.symbols), assumed_args_note(entry.assumed_by, entry.assumed_args)):
        if note:
            lines += ["", note]
    return "\n".join(lines)


def layer_hover(entry: ShapeEntry) -> str:
    ins = shape_text(entry.input_shape, entry.input_symbolic)
    outs = shape_text(entry.output_shape, entry.output_symbolic)
    lines = [f"**{entry.name}** · `{entry.layer or 'module'}`", "", f"input `{ins}` → output `{outs}`"]
    if entry.params is not None:
        weights = f" · {nbytes(entry.param_bytes)} of weights" if entry.param_bytes is not None else ""
        lines += ["", f"{entry.params:,} parameters{weights}"]
    table = embedding_note(entry)
    if table:
        lines += ["", table]
    for note in (assumed_note(entry.symbols), assumed_args_note(entry.assumed_by, entry.assumed_args)):
        if note:
            lines += ["", note]
    return "\n".join(lines)


def embedding_note(entry: ShapeEntry) -> str | None:
    """nn.Embedding is a lookup table; say what its two numbers mean, on the user's own values."""
    m = _EMBEDDING.match(entry.layer or "")
    if not m:
        return None
    rows, cols = int(m["rows"]), int(m["cols"])
    out = [f"A lookup table of **{rows:,} rows × {cols:,} columns**: weight shape `({rows}, {cols})`.",
           f"- `num_embeddings={rows}` rows: one per index; valid indices are 0..{rows - 1}",
           f"- `embedding_dim={cols}` columns: each index becomes a vector of {cols} numbers"]
    pad = re.search(r"padding_idx=(\d+)", m["rest"])
    if pad:
        out.append(f"- `padding_idx={pad[1]}`: row {pad[1]} stays zero (and is never updated by training)")
    if entry.input_shape is not None:
        out.append(f"\nEach index of the input `{shape_text(entry.input_shape, entry.input_symbolic)}` picks one "
                   f"row, so the output is `{shape_text(entry.output_shape, entry.output_symbolic)}`.")
    return "\n".join(out)


def class_summary(summary: ClassSummary, device: str | None = None) -> str:
    """A torchinfo-like table of the probed model, repeated blocks folded into one row; dims
    the probe made up are shown by their symbols and formulas, as everywhere else."""
    top = next((r for r in summary.rows if r.depth == 0), None)
    lines = [f"**{summary.name}** · {summary.total_params:,} parameters · {nbytes(summary.param_bytes)} of weights"]
    if top is not None:
        lines += ["", f"input `{dims_text(top.input_shape, top.input_symbolic)}` → output "
                      f"`{dims_text(top.output_shape, top.output_symbolic)}`"]
    lines += ["", "| layer | type | input | output | params |", "|:--|:--|:--|:--|--:|"]
    for f in fold([r for r in summary.rows if r.depth > 0]):
        r = f.row
        name = f"{f.name} · {f.label}" if f.count > 1 else f.name
        lines.append(f"| {name} | {r.layer} | {dims_text(r.input_shape, r.input_symbolic)} | "
                     f"{dims_text(r.output_shape, r.output_symbolic)} | {f.params:,} |")
    notes = []
    if (made := assumed_args_note(summary.name, summary.assumed_args)) is not None:
        notes.append(made)
    if summary.assumed:
        notes.append(f"Inputs the probe made up: {summary.assumed}. Numbers come from the file.")
    elif (note := assumed_note(summary.symbols)) is not None:
        notes.append(note)
    if device in (None, "meta"):
        notes.append("Probed on the meta device: shapes only, no parameter memory was allocated.")
    if notes:
        lines += ["", " ".join(notes)]
    return "\n".join(lines)


def dims_text(shape: list[int] | None, symbolic: list[str] | None) -> str:
    """A summary cell: the symbolic dims where some were assumed, else the numbers."""
    return "—" if shape is None and not symbolic else shape_text(shape, symbolic)


def hover_text(target: ShapeEntry | ClassSummary | None, chained: Finding | None = None,
               device: str | None = None) -> str:
    """A hover: the chain of the mismatch under the cursor (if any), then the hovered entry."""
    parts = [chain_table(chained)] if chained is not None and chained.chain else []
    if isinstance(target, ClassSummary):
        parts.append(class_summary(target, device))
    elif target is not None:
        parts.append(layer_hover(target) if target.kind == "layer" else tensor_hover(target))
    return "\n\n---\n\n".join(p for p in parts if p)


def chain_table(finding: Finding) -> str | None:
    """The flow that brought the tensor to the layer that rejects it, one row per step."""
    if not finding.chain:
        return None
    lines = [f"**{finding.message.splitlines()[0]}**", "", "| step | line | shape |", "|:--|--:|:--|"]
    for step in finding.chain:
        where = step.range["start"]["line"] + 1
        place = f"{where}" if step.path is None else f"{step.path.rsplit('/', 1)[-1]}:{where}"
        lines.append(f"| `{step.label}` | {place} | `{step.shape}` |")
    return "\n".join(lines)
