"""Worker results (ast spans) -> ProbeReport (LSP ranges)."""

from __future__ import annotations

from shapelens.probe import protocol
from shapelens.report.model import (
    ChainStep,
    ClassSummary,
    Finding,
    Fix,
    ProbeReport,
    Related,
    ShapeEntry,
    SummaryRow,
    TextEdit,
)
from shapelens.report.positions import LineIndex


class Ranges:
    def __init__(self, sources: dict[str, str]) -> None:
        self.sources = sources
        self._idx: dict[str, LineIndex] = {}

    def __call__(self, path: str, span) -> dict:
        if path not in self._idx:
            self._idx[path] = LineIndex(self.sources.get(path, ""))
        return self._idx[path].to_range(span)


def finding_from(raw: protocol.Finding, ranges: Ranges) -> Finding:
    path = raw["path"]
    return Finding.of(
        code=raw["code"],
        path=path,
        range=ranges(path, raw["span"]),
        message=raw["message"],
        related=[Related(ranges(r["path"], r["span"]), r["message"], r["path"] if r["path"] != path else None)
                 for r in raw.get("related", [])],
        fixes=[Fix(f["title"], [TextEdit(ranges(e["path"], e["span"]), e["new_text"]) for e in f["edits"]],
                   f["edits"][0]["path"] if f["edits"] and f["edits"][0]["path"] != path else None)
               for f in raw.get("fixes", [])],
        chain=[ChainStep(c["label"], c["shape"], ranges(c["path"], c["span"]), c["path"] if c["path"] != path else None)
               for c in raw.get("chain", [])],
    )


def build_report(path: str, sources: dict[str, str], response: dict) -> ProbeReport:
    ranges = Ranges(sources)
    report = ProbeReport(path)
    if not response.get("ok"):
        at = response.get("at")
        where_path, line = (at[0], at[1]) if at else (path, 1)
        text = response.get("error") or "the probe failed"
        if response.get("crashed") == "timeout" or (at and len(at) > 2 and at[2] == "timeout"):
            text = "the probe timed out here; shapes after this point are unknown (an endless loop?)"
        elif response.get("crashed"):
            text = f"the probe crashed here ({response['crashed']}); shapes after this point are unknown"
        elif response.get("trace"):
            text = f"internal probe error: {text}"
        report.findings.append(Finding.note(where_path, ranges(where_path, (line, 0, line, 10_000)), text))
        _clip(report, sources)
        return report
    result = response["result"]
    assumed = {c["name"]: c["assumed_args"] for c in result["classes"] if c.get("assumed_args")}
    report.findings = sorted((finding_from(f, ranges) for f in result["findings"]), key=Finding.sort_key)
    for t in result["tensors"]:
        report.shapes.append(ShapeEntry(t["path"], ranges(t["path"], t["span"]), t["name"], "tensor",
                                        shape=t["shape"], symbolic=t["symbolic"], dtype=t["dtype"],
                                        symbols=t.get("symbols") or {}, assumed_by=_assumed_owner(t, assumed),
                                        assumed_args=assumed.get(t.get("owner") or "", {})))
    for layer in result["layers"]:
        report.shapes.append(ShapeEntry(
            layer["path"], ranges(layer["path"], layer["span"]), layer["name"], "layer",
            input_shape=layer["input_shape"], output_shape=layer["output_shape"], layer=layer["layer"],
            params=layer["params"], param_bytes=layer["param_bytes"], input_symbolic=_dims(layer["input_symbolic"]),
            output_symbolic=_dims(layer["output_symbolic"]), symbols=layer.get("symbols") or {},
            assumed_by=_assumed_owner(layer, assumed), assumed_args=assumed.get(layer.get("owner") or "", {})))
    report.shapes.sort(key=lambda s: (s.path, s.range["start"]["line"], s.range["start"]["character"]))
    for c in result["classes"]:
        report.classes.append(ClassSummary(
            c["path"], ranges(c["path"], c["span"]), c["name"],
            [SummaryRow(r["name"], r["layer"], r["depth"], r["input_shape"], r["output_shape"], r["params"],
                        _dims(r.get("input_symbolic")), _dims(r.get("output_symbolic")), r.get("signature"))
             for r in c["rows"]], c["total_params"], c["param_bytes"], c["assumed"], c.get("symbols") or {},
            c.get("assumed_args") or {}))
    report.stats = result.get("stats", {})
    _clip(report, sources)
    return report


def _assumed_owner(entry: dict, assumed: dict[str, dict[str, str]]) -> str | None:
    owner = entry.get("owner")
    return owner if owner in assumed else None


def _dims(value) -> list[str] | None:
    """Symbolic dims as a list of texts (a worker of an older version sends one string)."""
    if isinstance(value, str):
        return [d.strip() for d in value.strip("[]").split(",")]
    return list(value) if value else None


def _clip(report: ProbeReport, sources: dict[str, str]) -> None:
    """Keep ranges inside their lines (a timeout at a line is reported on the whole line)."""
    for f in report.findings:
        lines = sources.get(f.path, "").splitlines() or [""]
        for pos in (f.range["start"], f.range["end"]):
            pos["line"] = min(pos["line"], len(lines) - 1)
            pos["character"] = min(pos["character"], len(lines[pos["line"]].encode("utf-16-le")) // 2)
