"""`make realworld`: shapelens on real, unmodified model files nobody here wrote.

The corpus lies outside this repository (docs/realworld.md says how to build it): files of public
repositories materialised under `--corpus` with the sibling files they import, and modelling files
of packages installed from PyPI, probed where pip put them (`site-packages/...` lines of
bench/realworld_files.txt). Nothing of them is copied here and no file of the corpus is written:
mutants and fixes are probed as text.

The shapelens measured is the one `sys.executable` imports, so another checkout measures its own
tree with `path/to/.venv/bin/python bench/realworld.py`; the probe worker runs in `--python` (the
corpus environment, where transformers & co. are installed).

Per file: layer constructors (calls of torch.nn layer classes, containers aside), how many got a
shape, errors on the unmodified file (each one is a false error until inspected), one-width mutants
(tests/mutants.py's generator, a sample per file) caught by an error on the mutated line, and how
many of those errors carry a fix that gives back the clean file's errors. There is no oracle that
runs these models, so a mutant that breaks nothing counts as missed: the figure is a lower bound.
"""

from __future__ import annotations

import argparse
import ast
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))

CONTAINERS = {"Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict", "Module"}


@dataclass
class FileResult:
    file: str
    layers: int = 0
    shaped: int = 0
    errors: list[str] = field(default_factory=list)
    mutants: int = 0
    caught: int = 0
    fixed: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    unshaped: list[str] = field(default_factory=list)
    silent: list[str] = field(default_factory=list)  # unshaped, and no probe-incomplete note says why
    missed: list[str] = field(default_factory=list)  # each missed mutant, and what the probe said instead


def torch_layer_names() -> set[str]:
    import torch.nn as nn

    return {n for n, v in vars(nn).items() if isinstance(v, type) and issubclass(v, nn.Module)} - CONTAINERS


def layer_calls(tree: ast.Module, layers: set[str]) -> list[tuple[ast.Call, int]]:
    """Each call of a torch.nn layer class, with the first line (0-based) of its statement."""
    nn_aliases = {"nn"}
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "torch":
            nn_aliases |= {a.asname or a.name for a in node.names if a.name == "nn"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("torch.nn"):
            imported |= {a.asname or a.name for a in node.names if a.name in layers}
        elif isinstance(node, ast.Import):
            nn_aliases |= {a.asname for a in node.names if a.name == "torch.nn" and a.asname}
    out = []

    def visit(node: ast.AST, stmt_line: int) -> None:
        if isinstance(node, ast.stmt):
            stmt_line = node.lineno - 1
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr in layers:
                base = ast.unparse(f.value)
                if base in nn_aliases or base == "torch.nn":
                    out.append((node, stmt_line))
            elif isinstance(f, ast.Name) and f.id in imported:
                out.append((node, stmt_line))
        for child in ast.iter_child_nodes(node):
            visit(child, stmt_line)

    visit(tree, 0)
    return out


def owner_spans(tree: ast.Module) -> list[tuple[int, int]]:
    """0-based line spans of the classes and functions a layer can be built in, innermost last."""
    return [(n.lineno - 1, n.end_lineno - 1) for n in ast.walk(tree)  # type: ignore[operator]
            if isinstance(n, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)]


def explained(stmt_line: int, end_line: int, spans: list[tuple[int, int]], noted: set[int]) -> bool:
    """A note on the layer's statement, or anywhere in the class (or function) that builds it —
    its line, its signature, the failing statement — says why the layer has no shape."""
    if any(stmt_line <= n <= end_line for n in noted):
        return True
    owners = [(a, b) for a, b in spans if a <= stmt_line <= b]
    return any(a <= n <= b for a, b in owners for n in noted)


def errors_of(report, path: str) -> list:
    return [f for f in report.findings if f.severity == "error"]


def describe(f) -> str:
    return f"{Path(f.path).name}:{f.range['start']['line'] + 1} {f.code}: {f.message[:200]}"


def measure(engine, label: str, path: Path, text: str, layers: set[str], n_mutants: int,
            timeout: float) -> FileResult:
    from mutants import mutants_of, width_table
    from shapelens.engine import ProbeOptions
    from shapelens.report.fixes import apply_edits

    options = ProbeOptions(timeout=timeout)
    res = FileResult(label)
    started = time.perf_counter()
    report = engine.submit(str(path), text, options)[1].result()
    res.seconds = time.perf_counter() - started
    real = str(path.resolve())
    shaped_lines = {s.range["start"]["line"] for s in report.shapes if s.kind == "layer" and s.path == real
                    and s.input_shape is not None and s.output_shape is not None}
    tree = ast.parse(text)
    calls = layer_calls(tree, layers)
    spans = owner_spans(tree)
    noted = {f.range["start"]["line"] for f in report.findings if f.code == "probe-incomplete" and f.path == real}
    res.layers = len(calls)
    for call, stmt_line in calls:
        end = call.end_lineno - 1  # type: ignore[operator]
        if any(stmt_line <= line <= end for line in shaped_lines):
            res.shaped += 1
            continue
        res.unshaped.append(f"{call.lineno}:{ast.unparse(call.func)}")
        if not explained(stmt_line, end, spans, noted):
            res.silent.append(f"{call.lineno}:{ast.unparse(call.func)}")
    clean = errors_of(report, real)
    res.errors = [describe(f) for f in clean]
    res.notes = [describe(f) for f in report.findings if f.severity != "error"][:6]
    clean_keys = sorted((f.path, f.range["start"]["line"], f.code) for f in clean)

    every = mutants_of(path, width_table()) if n_mutants else []  # reads the file, never writes it
    if n_mutants > 0 and len(every) > n_mutants:  # an even spread over the file
        step = len(every) / n_mutants
        every = [every[int(i * step)] for i in range(n_mutants)]
    res.mutants = len(every)
    futures = [engine.submit(str(path), m.text, options)[1] for m in every]
    fixes = []
    for m, fut in zip(every, futures):
        rep = fut.result()
        on_line = [f for f in errors_of(rep, real) if f.path == real and f.range["start"]["line"] == m.line - 1]
        if not on_line:
            res.missed.append(f"{m.label()}: {_instead(rep, real, m.line - 1, shaped_lines, clean_keys)}")
            continue
        res.caught += 1
        fix = next((x for f in on_line for x in f.fixes if (x.path or f.path) == real), None)
        if fix is not None:
            fixes.append(engine.submit(str(path), apply_edits(m.text, fix.edits), options)[1])
    for fut in fixes:
        after = sorted((f.path, f.range["start"]["line"], f.code) for f in errors_of(fut.result(), real))
        res.fixed += after == clean_keys
    return res


def _instead(report, real: str, line: int, shaped_lines: set[int], clean_keys: list) -> str:
    """Why a mutant was missed: its layer had no shape, or the error it caused lands elsewhere, or
    nothing the probe checks disagrees with the new width."""
    new = [f for f in errors_of(report, real) if (f.path, f.range["start"]["line"], f.code) not in clean_keys]
    if new:
        f = new[0]
        return f"error elsewhere ({Path(f.path).name}:{f.range['start']['line'] + 1} {f.code})"
    if line not in shaped_lines:
        return "layer unshaped"
    return "no error"


def corpus_files(listing: Path, corpus: Path, site: Path) -> list[tuple[str, Path, Path]]:
    """(line, file, workspace root) per line of the listing. A repository is its own workspace; an
    installed package's file has its own folder as the workspace, so the package around it
    is what pip installed."""
    out = []
    for line in listing.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("site-packages/"):
            path = site / line.removeprefix("site-packages/")
            out.append((line, path, path.parent))
        else:
            out.append((line, corpus / line, corpus / line.split("/", 1)[0]))
    return out


def site_packages(python: str) -> Path:
    import subprocess

    out = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def table(results: list[FileResult]) -> list[str]:
    lines = ["| file | layers | shaped | unshaped, no note | false errors | mutants caught at the line "
             "| fixes that round-trip | s |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        lines.append(f"| {r.file} | {r.layers} | {r.shaped} | {len(r.silent)} | {len(r.errors)} "
                     f"| {r.caught} / {r.mutants} | {r.fixed} / {r.caught} | {r.seconds:.1f} |")
    layers = sum(r.layers for r in results)
    shaped = sum(r.shaped for r in results)
    mut = sum(r.mutants for r in results)
    caught = sum(r.caught for r in results)
    fixed = sum(r.fixed for r in results)
    secs = [r.seconds for r in results] or [0.0]
    lines.append(f"| **{len(results)} files** ({sum(r.shaped > 0 for r in results)} with a shape) | {layers} "
                 f"| {shaped} ({100 * shaped / max(layers, 1):.0f} %) | {sum(len(r.silent) for r in results)} "
                 f"| {sum(len(r.errors) for r in results)} "
                 f"| {caught} / {mut} ({100 * caught / max(mut, 1):.0f} %) | {fixed} / {caught} "
                 f"| median {statistics.median(secs):.1f}, max {max(secs):.1f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default="/work/scratch/corpus/bin/python",
                    help="the probe worker's interpreter (the corpus environment)")
    ap.add_argument("--corpus", default="/work/scratch/realworld", type=Path)
    ap.add_argument("--files", default=BENCH / "realworld_files.txt", type=Path)
    ap.add_argument("--mutants", default=4, type=int, help="mutants per file (0: none, -1: all)")
    ap.add_argument("--timeout", default=20.0, type=float, help="seconds per probe")
    ap.add_argument("--only", default="", help="only files whose path contains this")
    ap.add_argument("--json", type=Path, help="write the per-file results here")
    args = ap.parse_args(argv)

    from shapelens.engine import Engine

    python = args.python if Path(args.python).exists() else sys.executable
    site = site_packages(python)
    files = [f for f in corpus_files(args.files, args.corpus.resolve(), site) if args.only in f[0]]
    layers = torch_layer_names()
    results: list[FileResult] = []
    engines: dict[Path, Engine] = {}
    print(f"shapelens from {Path(sys.modules['shapelens.engine'].__file__).parents[1]}, worker in {python}",
          flush=True)
    try:
        for label, path, root in files:
            if not path.is_file():
                print(f"missing: {path} (build the corpus: docs/realworld.md)", flush=True)
                continue
            if root not in engines:
                for old in engines.values():
                    old.close()
                engines = {root: Engine(str(root), python)}
            r = measure(engines[root], label, path, path.read_text(), layers, args.mutants, args.timeout)
            results.append(r)
            print(f"{r.file}: {r.shaped}/{r.layers} shaped, {len(r.errors)} errors, "
                  f"{r.caught}/{r.mutants} caught, {r.fixed} fixed, {r.seconds:.1f} s", flush=True)
    finally:
        for e in engines.values():
            e.close()
    print("\n".join(["", *table(results), ""]))
    for r in results:
        for e in r.errors:
            print(f"error (inspect): {e}")
    for r in results:
        if r.layers and r.shaped < r.layers:
            print(f"\n{r.file}: {r.layers - r.shaped} of {r.layers} layers without a shape "
                  f"({', '.join(r.unshaped[:6])}{' ...' if len(r.unshaped) > 6 else ''})")
            for n in r.notes[:4]:
                print(f"    note: {n}")
            if r.silent:
                print(f"    SILENT (no note says why): {', '.join(r.silent[:6])}{' ...' if len(r.silent) > 6 else ''}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
