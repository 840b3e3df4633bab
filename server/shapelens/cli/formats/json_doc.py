"""`--output-format json`: one document on stdout, following the contract
(shared/contract/check-json.schema.json). New fields may only be added."""

from __future__ import annotations

import json

from shapelens.cli.formats import Outcome


def document(outcome: Outcome) -> dict:
    paths = sorted(set(outcome.findings) | set(outcome.shapes), key=outcome.display)
    return {"version": 1, "files": [
        {"path": outcome.display(path), "diagnostics": [f.to_json() for f in outcome.findings.get(path, [])],
         "shapes": [s.to_json() for s in outcome.shapes.get(path, [])]}
        for path in paths
    ]}


def render(outcome: Outcome) -> str:
    return json.dumps(document(outcome), indent=2) + "\n"
