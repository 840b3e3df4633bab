"""`shapelens check`: collect files, probe them, apply config and suppressions, fix, render.

Each step lives in its own module (files, sources, probing, writing, formats); this one only
orders them and decides the exit status: 0 clean, 1 errors (or a --diff with changes), 2 usage
or environment."""

from __future__ import annotations

import dataclasses
import json
import os
import sys

from shapelens import timing
from shapelens.cli import environment, prestart
from shapelens.cli.files import WalkOptions, collect_files
from shapelens.cli.formats import Outcome, render
from shapelens.cli.formats.text import statistics, statistics_table, use_colour
from shapelens.cli.probing import probe_all
from shapelens.cli.progress import Progress
from shapelens.cli.sources import SourceFile, decode, read_file
from shapelens.cli.writing import fix_file, fix_notebook, unified_diff, write_atomically
from shapelens.config import Config, load_config
from shapelens.engine import ProbeOptions, find_root
from shapelens.notebook.program import Program, localize, localize_shape
from shapelens.probe.client import WorkerClient, WorkerUnavailable
from shapelens.report.fixes import edits_by_path
from shapelens.report.model import Finding, ProbeReport
from shapelens.report.policy import Policy

STDIN_DEFAULT = "stdin.py"  # the name a file read from stdin is probed under without --stdin-filename


class UsageError(Exception):
    pass


class Configs:
    """[tool.shapelens] by project root, with the command line's overrides; each config's
    warnings are printed once, to stderr."""

    def __init__(self, args) -> None:
        self.args = args
        self._by_root: dict[str, Config] = {}

    def __call__(self, path: str) -> Config:
        root = find_root(path)
        if root not in self._by_root:
            cfg = load_config(root)
            for warning in cfg.warnings:
                print(f"shapelens: warning: {warning}", file=sys.stderr)
            a = self.args
            if a.show_unused_ignores is not None:
                cfg.show_unused_ignores = a.show_unused_ignores
            if a.respect_gitignore is not None:
                cfg.respect_gitignore = a.respect_gitignore
            if a.select is not None:
                cfg.select = frozenset(a.select)
            if a.ignore:
                cfg.ignore = cfg.ignore | frozenset(a.ignore)
            self._by_root[root] = cfg
        return self._by_root[root]


def display(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def decode_finding(src: SourceFile) -> Finding:
    line, col = src.problem_at
    rng = {"start": {"line": line, "character": col}, "end": {"line": line, "character": col + 1}}
    return Finding.of(src.problem_code, os.path.realpath(src.path), rng, f"{src.problem} (the file was not probed)")


def merge(reports: list[ProbeReport]) -> tuple[dict[str, list[Finding]], dict[str, list]]:
    """Findings and shapes by file, each finding once (a file imported by several checked files
    is reported once)."""
    findings: dict[str, list[Finding]] = {r.path: [] for r in reports}
    shapes: dict[str, list] = {r.path: [] for r in reports}
    seen: set[tuple] = set()
    for r in reports:
        for f in r.findings:
            key = (f.path, f.code, json.dumps(f.range, sort_keys=True))
            if key not in seen:
                seen.add(key)
                findings.setdefault(f.path, []).append(f)
        shapes[r.path] += [s for s in r.shapes if s.path == r.path]
    return findings, shapes


class Run:
    """One `shapelens check`: the sources it read, how to probe them, and the policy."""

    def __init__(self, args, python: str | None, configs: Configs, sources: list[SourceFile],
                 worker: WorkerClient | None = None) -> None:
        self.args, self.python, self.configs = args, python, configs
        self.worker = worker  # started early (cli.prestart), for every probe of the run
        self.options = ProbeOptions(device=args.device, timeout=args.timeout)
        self.sources = {os.path.realpath(s.path): s for s in sources}
        self.shown = {os.path.realpath(s.path): s.path for s in sources}
        if args.stdin:
            self.shown = {real: args.stdin_filename or "-" for real in self.shown}

    def display(self, path: str) -> str:
        return display(self.shown.get(path, path))

    def source(self, path: str) -> SourceFile | None:
        if path not in self.sources:
            try:
                self.sources[path] = read_file(path)
            except OSError:
                return None
        return self.sources[path]

    def text_of(self, path: str) -> str | None:
        src = self.source(path)
        return src.text if src else None

    def program_of(self, path: str) -> Program | None:
        src = self.source(path)
        return src.notebook.program if src and src.notebook else None

    def cells_of(self, path: str) -> list[str] | None:
        program = self.program_of(path)
        return [c.source for c in program.cells] if program else None

    def check(self) -> Outcome:
        good = [s for s in self.sources.values() if not s.problem]
        progress = Progress(len(good), sys.stderr, lambda p: self.display(os.path.realpath(p)))
        try:
            reports = probe_all([(s.path, s.text) for s in good], self.options, self.python,
                                progress.event if progress.enabled else None, self.worker)
        finally:
            progress.close()
        reports += [ProbeReport(os.path.realpath(s.path), [decode_finding(s)])
                    for s in self.sources.values() if s.problem]
        findings, shapes = merge(reports)
        policy = Policy(self.configs, self.text_of)
        for path in list(findings):
            kept = policy.filter(findings[path])  # first: it marks the suppressions used
            # unused ignores only of the files checked, not of files they import
            kept += policy.unused(path) if path in self.shown else []
            program = self.program_of(path)  # a notebook: findings move into their cells after the policy
            findings[path] = sorted([localize(f, program) for f in kept] if program else kept, key=Finding.sort_key)
        for path, entries in shapes.items():
            program = self.program_of(path)
            if program is not None:
                shapes[path] = [e for e in (localize_shape(s, program) for s in entries) if e is not None]
        return Outcome(list(self.shown), findings, shapes, self.display, self.text_of, self.cells_of,
                       colour=use_colour(sys.stdout))

    def fix(self, outcome: Outcome) -> tuple[int, dict[str, tuple[str, str]]]:
        """Apply (or, with --diff, only compute) every preferred fix; returns how many findings
        were fixed and (text before, text after) by path. With stdin only the stdin file is
        fixed, and the result is printed rather than written."""
        fixed, changes = 0, {}
        all_findings = [f for fs in outcome.findings.values() for f in fs]
        for path, edits in edits_by_path(all_findings).items():
            src = self.source(path)
            if src is None or (self.args.stdin and path not in self.shown):
                continue
            result = fix_notebook(src, edits) if src.notebook else fix_file(src, [(e.range, e.new_text) for e in edits])
            if result.refused:
                print(f"shapelens: warning: not fixing {self.display(path)}: {result.refused}", file=sys.stderr)
                continue
            if result.new_text is None:
                continue
            count = sum(1 for f in all_findings if f.fixes and (f.fixes[0].path or f.path) == path)
            fixed += count
            changes[path] = (src.original, result.new_text)
            if self.args.diff:
                continue
            assert result.data is not None  # a result with new text always has its bytes
            if not self.args.stdin:
                write_atomically(path, result.data)
                where = sys.stdout if self.args.output_format in ("text", "concise") else sys.stderr
                print(f"Fixed {count} issue{'s' * (count != 1)} in {self.display(path)}", file=where)
            self.sources[path] = decode(src.path, result.data)
        return fixed, changes


def read_inputs(args, configs: Configs) -> list[SourceFile]:
    if args.stdin:
        return [decode(args.stdin_filename or STDIN_DEFAULT, sys.stdin.buffer.read())]
    files = collect_files(args.paths or ["."], configs, WalkOptions(force_exclude=args.force_exclude))
    return [read_file(f) for f in files]


def validate(args) -> None:
    args.stdin = args.paths == ["-"] or (not args.paths and args.stdin_filename is not None)
    if "-" in args.paths and not args.stdin:
        raise UsageError("`-` (standard input) cannot be combined with other paths")
    missing = [p for p in args.paths if p != "-" and not os.path.exists(p)]
    if missing:
        raise UsageError(f"no such file or directory: {missing[0]}")
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    if args.statistics and args.output_format not in ("text", "concise", "json"):
        raise UsageError(f"--statistics works with text, concise or json output, not {args.output_format}")


def run_check(args, early: WorkerClient | None = None) -> int:
    """`early`: a worker cli.prestart started from the command line, used when it fits."""
    try:
        validate(args)
        python = environment.resolve_python(args.python)
    except (UsageError, environment.EnvironmentProblem) as exc:
        if early is not None:
            early.close(wait=False)
        print(f"shapelens: error: {exc}", file=sys.stderr)
        return 2
    worker = prestart.fits(early, python)
    configs = Configs(args)
    try:
        sources = read_inputs(args, configs)
        if any(not s.problem for s in sources):
            environment.check_torch(python, worker)
        # None keeps Jedi in-process for the default interpreter (an explicit one costs a subprocess)
        run = Run(args, python if args.python else None, configs, sources, worker)
        outcome = run.check()
        fixed, changes = (run.fix(outcome) if args.fix or args.diff else (0, {}))
        if fixed and not args.diff:
            outcome = run.check()
            outcome.fixed = fixed
    except environment.EnvironmentProblem as exc:
        print(f"shapelens: error: {exc}", file=sys.stderr)
        return 2
    except WorkerUnavailable as exc:
        print(f"shapelens: error: the probe worker could not start with {python}: {environment.one_line(exc)}",
              file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"shapelens: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if worker is not None:
            worker.close(wait=False)  # it exits while the output is written
    return report(args, run, outcome, fixed, changes)


def report(args, run: Run, outcome: Outcome, fixed: int, changes: dict[str, tuple[str, str]]) -> int:
    out = sys.stdout
    if args.diff:
        for path, (before, after) in sorted(changes.items(), key=lambda kv: run.display(kv[0])):
            out.write(unified_diff(run.display(path), before, after))
        print(f"Would fix {fixed} issue{'s' * (fixed != 1)} in {len(changes)} file{'s' * (len(changes) != 1)}."
              if changes else "No fixes to apply.", file=sys.stderr)
        return 0 if args.exit_zero else int(bool(changes))
    if args.stdin and args.fix:  # the fixed file goes to stdout (as ruff does); the report to stderr
        src = next(iter(run.sources.values()))
        sys.stdout.buffer.write(src.raw)
        sys.stdout.flush()
        out = sys.stderr
    if args.statistics:
        out.write(json.dumps(statistics(outcome), indent=2) + "\n" if args.output_format == "json"
                  else statistics_table(outcome))
    else:
        out.write(render(args.output_format, dataclasses.replace(outcome, colour=outcome.colour and out is sys.stdout)))
    out.flush()
    timing.mark("cli: output written")
    errors = any(f.severity == "error" for f in outcome.all_findings())
    return 0 if args.exit_zero or not errors else 1
