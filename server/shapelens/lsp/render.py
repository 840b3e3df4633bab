"""Markdown for hovers and the model summary. Pure: report entries in, text out."""

from __future__ import annotations

import re

from shapelens.report.model import ClassSummary, ShapeEntry

UNTRUSTED = ("**shapelens**: shapes are unavailable because the workspace is untrusted, so none of its "
             "code is run. Trust the workspace (VS Code: *Manage Workspace Trust*; other editors: the "
             "`trusted` initialization option) to see tensor shapes.")
_EMBEDDING = re.compile(r"^Embedding\((?P<rows>\d+), (?P<cols>\d+)(?P<rest>.*)\)$")


def shape_text(shape: list[int] | None, symbolic: str | None = None) -> str:
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


def assumed_dims(shape: list[int] | None, symbolic: str | None) -> list[tuple[str, int]]:
    """The named dims of a symbolic shape with the sizes the probe used for them."""
    if not shape or not symbolic:
        return []
    names = [t.strip() for t in symbolic.strip("[]").split(",")]
    out: list[tuple[str, int]] = []
    for name, size in zip(names, shape):
        if name and not name.lstrip("-").isdigit() and (name, size) not in out:
            out.append((name, size))
    return out


def _assumed_note(*pairs: list[tuple[str, int]]) -> str | None:
    seen: list[tuple[str, int]] = []
    for group in pairs:
        seen += [p for p in group if p not in seen]
    if not seen:
        return None
    names = ", ".join(f"`{n}`" for n, _ in seen)
    values = ", ".join(f"{n}={v}" for n, v in seen)
    return f"{names}: sizes the probe assumed (probed as {values}); numbers come from the file."


def tensor_hover(entry: ShapeEntry) -> str:
    lines = [f"**{entry.name}** · `{shape_text(entry.shape, entry.symbolic)}` {entry.dtype or ''}".rstrip()]
    note = _assumed_note(assumed_dims(entry.shape, entry.symbolic))
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
    note = _assumed_note(assumed_dims(entry.input_shape, entry.input_symbolic),
                         assumed_dims(entry.output_shape, entry.output_symbolic))
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
    """A torchinfo-like table of the probed model; dims the probe made up are shown by name."""
    names = assumed_names(summary.assumed)

    def dims(shape: list[int] | None) -> str:
        return "—" if shape is None else f"[{', '.join(names.get(d, str(d)) for d in shape)}]"

    top = next((r for r in summary.rows if r.depth == 0), None)
    lines = [f"**{summary.name}** · {summary.total_params:,} parameters · {nbytes(summary.param_bytes)} of weights"]
    if top is not None:
        lines += ["", f"input `{dims(top.input_shape)}` → output `{dims(top.output_shape)}`"]
    lines += ["", "| layer | type | input | output | params |", "|:--|:--|:--|:--|--:|"]
    lines += [f"| {r.name} | {r.layer} | {dims(r.input_shape)} | {dims(r.output_shape)} | {r.params:,} |"
              for r in summary.rows if r.depth > 0]
    notes = []
    if summary.assumed:
        notes.append(f"Inputs the probe made up: {summary.assumed}.")
    if device in (None, "meta"):
        notes.append("Probed on the meta device: shapes only, no parameter memory was allocated.")
    if notes:
        lines += ["", " ".join(notes)]
    return "\n".join(lines)


def assumed_names(assumed: str | None) -> dict[int, str]:
    """"B=17, T=13" -> {17: "B", 13: "T"}: the probe picks sizes no real width is likely to have."""
    out: dict[int, str] = {}
    for part in (assumed or "").split(","):
        name, _, size = part.strip().partition("=")
        if name and size.isdigit():
            out[int(size)] = name
    return out
