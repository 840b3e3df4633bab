"""Test helpers that locate things in source text independently of the engine."""

from __future__ import annotations

import textwrap
from pathlib import Path

TORCH_HEAD = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"


def locate(path: Path | str, line_text: str, needle: str, nth: int = 0) -> dict:
    """The LSP range of `needle` inside the (first) line containing `line_text`."""
    lines = Path(path).read_text().splitlines()
    for i, line in enumerate(lines):
        if line_text in line:
            start = line.index(line_text)
            col = start
            for _ in range(nth + 1):
                col = line.index(needle, col if _ == 0 else col + 1)
            return {"start": {"line": i, "character": col}, "end": {"line": i, "character": col + len(needle)}}
    raise AssertionError(f"{line_text!r} not in {path}")


def by_code(report, code: str) -> list:
    return [f for f in report.findings if f.code == code]


def shape_of(report, name: str, kind: str = "tensor", nth: int = 0):
    hits = [s for s in report.shapes if s.name == name and s.kind == kind]
    assert len(hits) > nth, f"no {kind} entry named {name}: {[s.name for s in report.shapes]}"
    return hits[nth]


def probe(workspace, body: str, name: str = "m.py", **options):
    """Check `body` (dedented, after the torch imports) as the workspace file `name`."""
    workspace.write(name, TORCH_HEAD + textwrap.dedent(body))
    return workspace.check(name, **options)


def errors(report) -> list:
    return [f for f in report.findings if f.severity == "error"]
