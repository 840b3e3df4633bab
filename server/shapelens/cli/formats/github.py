"""`--output-format github`: GitHub Actions workflow commands, one per finding, which the runner
turns into annotations on the pull request's diff:

    ::error file=model.py,line=9,col=33,endLine=9,endColumn=42,title=shapelens (feature-mismatch)::message

Lines and columns are 1-based, the end column exclusive as GitHub counts it. In a notebook they
count inside the cell, and the title names the cell (GitHub cannot point into a cell). Values are escaped
as the runner expects (%, CR, LF; also : and , in properties)."""

from __future__ import annotations

from shapelens.cli.formats import Outcome

LEVEL = {"error": "error", "warning": "warning", "information": "notice", "hint": "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render(outcome: Outcome) -> str:
    out = []
    for f in outcome.all_findings():
        s, e = f.range["start"], f.range["end"]
        props = {"file": outcome.display(f.path), "line": s["line"] + 1, "col": s["character"] + 1,
                 "endLine": e["line"] + 1, "endColumn": e["character"] + 1,
                 "title": f"shapelens ({f.code})" + (f" in cell {f.cell}" if f.cell is not None else "")}
        joined = ",".join(f"{k}={escape_property(str(v))}" for k, v in props.items())
        out.append(f"::{LEVEL[f.severity]} {joined}::{escape_data(f.message)}\n")
    return "".join(out)
