"""Render docs/measurements.md from bench/results.json (what `make bench` measured) and the
prose in bench/measurements.md.in. `--check` exits 1 when the file is out of date."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "bench" / "measurements.md.in"
RESULTS = ROOT / "bench" / "results.json"
OUT = ROOT / "docs" / "measurements.md"


def table(rows: list[dict]) -> str:
    met = {True: "yes", False: "**no**", None: "–"}
    lines = ["| figure | target | measured | met |", "| --- | --- | --- | --- |"]
    lines += [f"| {r['figure']} | {r['target']} | {r['measured']} | {met[r['met']]} |" for r in rows]
    return "\n".join(lines)


def render(results: dict, template: str) -> str:
    return template.replace("@@MACHINE@@", results["machine"]).replace("@@TABLE@@", table(results["rows"]))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true", help="only say whether the file is up to date")
    args = parser.parse_args()
    text = render(json.loads(RESULTS.read_text(encoding="utf-8")), TEMPLATE.read_text(encoding="utf-8"))
    if args.check:
        if OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT.relative_to(ROOT)} is out of date: run `make measurements`", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
