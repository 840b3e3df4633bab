"""`shapelens check`: the report in text (path:line:col: severity[code] message) or JSON."""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from shapelens.analysis.files import python_files
from shapelens.engine import Engine, ProbeOptions, find_root, read_source
from shapelens.probe.client import WorkerClient, WorkerUnavailable
from shapelens.report.fixes import apply_edits, edits_by_path
from shapelens.report.model import Finding, ProbeReport


def collect_files(paths: list[str]) -> list[str]:
    files: list[str] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files += python_files(p)
        else:
            files.append(str(p))
    seen, out = set(), []
    for f in files:
        real = os.path.realpath(f)
        if real not in seen:
            seen.add(real)
            out.append(f)
    return out


def display(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def probe_all(files: list[str], options: ProbeOptions, python: str | None) -> list[ProbeReport]:
    """Every file's report, in order. Planning (Jedi) is single-threaded work, so a larger set of
    files is split into one batch per core, each planned and probed by its own process."""
    jobs = min(os.cpu_count() or 1, len(files) // 2)
    if jobs <= 1:
        return probe_batch(files, options, python)
    batches = [files[i::jobs] for i in range(jobs)]
    context = multiprocessing.get_context("spawn")  # no fork of a process that runs threads
    with ProcessPoolExecutor(jobs, mp_context=context) as pool:
        results = list(pool.map(probe_batch, batches, [options] * jobs, [python] * jobs))
    by_file = {f: r for batch, reports in zip(batches, results) for f, r in zip(batch, reports)}
    return [by_file[f] for f in files]


def probe_batch(files: list[str], options: ProbeOptions, python: str | None) -> list[ProbeReport]:
    worker = WorkerClient(python)
    engines: dict[str, Engine] = {}
    futures = []
    try:
        for f in files:
            root = find_root(f)
            engine = engines.get(root) or engines.setdefault(root, Engine(root, python, options, worker))
            text = read_source(f)
            futures.append(engine.submit(os.path.realpath(f), text)[1])
        return [fut.result() for fut in futures]
    finally:
        worker.close()


def merge(reports: list[ProbeReport]) -> tuple[dict[str, list[Finding]], dict[str, list]]:
    """Findings and shapes by file, each finding once (a file imported by several checked files
    is reported once)."""
    findings: dict[str, list[Finding]] = {r.path: [] for r in reports}
    shapes: dict[str, list] = {r.path: [] for r in reports}
    seen: set[tuple] = set()
    for r in reports:
        for f in r.findings:
            key = (f.path, f.code, json.dumps(f.range, sort_keys=True))
            if key in seen:
                continue
            seen.add(key)
            findings.setdefault(f.path, []).append(f)
        for s in r.shapes:
            if s.path == r.path:
                shapes[r.path].append(s)
    for fs in findings.values():
        fs.sort(key=Finding.sort_key)
    return findings, shapes


def print_text(findings: dict[str, list[Finding]], nfiles: int) -> None:
    counts = {"error": 0, "warning": 0, "information": 0, "hint": 0}
    fixable = 0
    for path in sorted(findings):
        for f in findings[path]:
            s = f.range["start"]
            first, *more = f.message.splitlines() or [""]
            print(f"{display(path)}:{s['line'] + 1}:{s['character'] + 1}: {f.severity}[{f.code}] {first}")
            for line in more:  # the flow that led there: indented, so each finding keeps one first line
                print(f"    {line}")
            counts[f.severity] += 1
            fixable += bool(f.fixes)
    parts = [f"{n} {name}{'s' if n != 1 else ''}" for name, n in
             (("error", counts["error"]), ("warning", counts["warning"]),
              ("note", counts["information"] + counts["hint"])) if n]
    files = f"{nfiles} file{'s' if nfiles != 1 else ''}"
    if parts:
        extra = f" ({fixable} fixable with --fix)" if fixable else ""
        print(f"Found {', '.join(parts)} in {files}{extra}.")
    else:
        print(f"All checks passed: {files}, no shape mismatches.")


def json_document(findings: dict[str, list[Finding]], shapes: dict[str, list]) -> dict:
    return {"version": 1, "files": [
        {"path": display(path), "diagnostics": [f.to_json() for f in findings.get(path, [])],
         "shapes": [s.to_json() for s in shapes.get(path, [])]}
        for path in sorted(set(findings) | set(shapes))
    ]}


def run_check(args) -> int:
    missing = [p for p in args.paths if not os.path.exists(p)]
    if missing:
        print(f"shapelens: error: no such file or directory: {missing[0]}", file=sys.stderr)
        return 2
    if args.timeout <= 0:
        print("shapelens: error: --timeout must be positive", file=sys.stderr)
        return 2
    files = collect_files(args.paths)
    options = ProbeOptions(device=args.device, timeout=args.timeout)
    try:
        reports = probe_all(files, options, args.python)
    except WorkerUnavailable as exc:
        print(f"shapelens: error: {exc}", file=sys.stderr)
        return 2
    findings, shapes = merge(reports)
    if args.fix:
        fixed_files = []
        for path, edits in edits_by_path([f for fs in findings.values() for f in fs]).items():
            text = Path(path).read_text(encoding="utf-8")
            new = apply_edits(text, edits)
            if new != text:
                Path(path).write_text(new, encoding="utf-8")
                fixed_files.append(path)
                print(f"Fixed {len(edits)} issue{'s' if len(edits) != 1 else ''} in {display(path)}",
                      file=sys.stderr if args.format == "json" else sys.stdout)
        if fixed_files:
            reports = probe_all(files, options, args.python)
            findings, shapes = merge(reports)
    if args.format == "json":
        print(json.dumps(json_document(findings, shapes), indent=2))
    else:
        print_text(findings, len(files))
    return 1 if any(f.severity == "error" for fs in findings.values() for f in fs) else 0
