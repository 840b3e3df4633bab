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
README = ROOT / "README.md"
# The README's table: what users see (bench/users.py), between these two lines.
START, END = "<!-- make measurements: start -->", "<!-- make measurements: end -->"
USERS = ("GPT-2-small file", "one-class file", "cold:", "edit -> diagnostics p50 / p95: samples/, all",
         "edit -> diagnostics p50 / p95: GPT-2", "30 real model files")


def table(rows: list[dict]) -> str:
    met = {True: "yes", False: "**no**", None: "–"}
    lines = ["| figure | target | measured | met | load (1 min) |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['figure']} | {r['target']} | {r['measured']} | {met[r['met']]} | {r.get('load', '?')} |"
              for r in rows]
    return "\n".join(lines)


def render(results: dict, template: str) -> str:
    load = results.get("load") or ["load not recorded"]
    return (template.replace("@@MACHINE@@", results["machine"]).replace("@@TABLE@@", table(results["rows"]))
            .replace("@@LOAD@@", f"{load[0]} at the start, {load[-1]} at the end"))


def readme(results: dict, text: str) -> str:
    if START not in text or END not in text:
        return text
    rows = [r for r in results["rows"] if r["figure"].startswith(USERS)]
    load = results.get("load") or ["load not recorded"]
    block = (f"{START}\nMeasured by `make bench` on {results['machine']}; {load[0]} at the start "
             f"(a shared machine: see [docs/measurements.md](docs/measurements.md)).\n\n{table(rows)}\n{END}")
    return text[: text.index(START)] + block + text[text.index(END) + len(END):]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true", help="only say whether the file is up to date")
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text(encoding="utf-8"))
    wanted = {OUT: render(results, TEMPLATE.read_text(encoding="utf-8")),
              README: readme(results, README.read_text(encoding="utf-8"))}
    stale = [path for path, text in wanted.items() if path.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run `make measurements`", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(wanted[path], encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
