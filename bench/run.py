"""`make bench`: every speed and memory target of shapelens, measured, as a table and JSON.

First what users see (bench/users.py: whole processes side by side, the language server with
default settings, cold start, real model files), then the engine's own figures (warm worker).
Medians of repeated runs on this machine; noisy machines make single timings meaningless, so
targets live here and not in unit tests. `make measurements` renders docs/measurements.md."""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "bench"))

from rawlsp import LspClient, server_cmd  # noqa: E402

import users  # noqa: E402
from shapelens.engine import Engine, ProbeOptions  # noqa: E402

ROWS: list[dict] = []
HALF = {"now": "users"}  # which half of the table `row` is filling
# The users half's figures, for rows of results files written before rows said their half.
USERS_FIGURES = ("GPT-2-small file", "one-class file", "cold:", "edit -> diagnostics", "30 real model files")


def row(figure: str, target: str, measured: str, ok: bool | None) -> None:
    """One figure, with the machine's 1-minute load average when it was measured (the machine
    is shared: a figure means little without it)."""
    load = round(os.getloadavg()[0], 1)
    ROWS.append({"figure": figure, "target": target, "measured": measured, "met": ok, "load": load,
                 "half": HALF["now"]})
    mark = {True: "yes", False: "NO", None: "-"}[ok]
    print(f"  {figure:58s} {target:>18s} {measured:>26s} {mark:>4s}  load {load}", flush=True)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import torch

    return f"{os.cpu_count()} cores, {cpu}, {mem:.0f} GiB RAM, Python {platform.python_version()}, torch {torch.__version__}"


# -- the language server -------------------------------------------------------------------------
def request_latency(client: LspClient, method: str, params: dict, n: int) -> list[float]:
    out = []
    for _ in range(n):
        sent = time.perf_counter()
        got, _, _ = client.request(method, params).result(timeout=30)
        out.append((got - sent) * 1000)
    return out


def bench_lsp(quick: bool) -> None:
    print("language server requests and the 40-module file (warm, debounce 0: the engine's share)")
    client = LspClient(server_cmd(), cwd=str(ROOT))
    client.initialize(str(ROOT), {"debounce": 0})
    edits = 4 if quick else 10
    # Hover and inlay hints, idle and while a probe of the 7B model runs.
    path = ROOT / "samples" / "seed000_ex2_mismatched_embedding.py"
    uri = path.as_uri()
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                             "text": path.read_text()}})
    client.wait_diagnostics(uri, 1)
    hover = {"textDocument": {"uri": uri}, "position": {"line": 12, "character": 10}}
    inlay = {"textDocument": {"uri": uri}, "range": {"start": {"line": 0, "character": 0},
                                                     "end": {"line": 30, "character": 0}}}
    n = 30 if quick else 100
    idle = request_latency(client, "textDocument/hover", hover, n) + request_latency(client, "textDocument/inlayHint", inlay, n)
    big = ROOT / "samples" / "llama_7b.py"
    buri = big.as_uri()
    client.notify("textDocument/didOpen", {"textDocument": {"uri": buri, "languageId": "python", "version": 1,
                                                             "text": big.read_text()}})
    busy = request_latency(client, "textDocument/hover", hover, n) + request_latency(client, "textDocument/inlayHint", inlay, n)
    client.wait_diagnostics(buri, 1, timeout=120)
    row("hover + inlay hints p95, idle", "<= 20 ms", f"{users.pct(idle, 0.95):.1f} ms", users.pct(idle, 0.95) <= 20)
    row("hover + inlay hints p95, while a 7B probe runs", "<= 20 ms", f"{users.pct(busy, 0.95):.1f} ms",
        users.pct(busy, 0.95) <= 20)

    forty = make_forty_module_file()
    furi = forty.as_uri()
    text = forty.read_text()
    sent = time.perf_counter()
    client.notify("textDocument/didOpen", {"textDocument": {"uri": furi, "languageId": "python", "version": 1,
                                                             "text": text}})
    got, _ = client.wait_diagnostics(furi, 1, timeout=120)
    whole = got - sent
    times = []
    for v in range(2, 2 + edits):
        text = text.replace(f"self.act = nn.{'ReLU' if v % 2 else 'GELU'}()  # m20",
                            f"self.act = nn.{'GELU' if v % 2 else 'ReLU'}()  # m20")
        sent = time.perf_counter()
        client.notify("textDocument/didChange", {"textDocument": {"uri": furi, "version": v},
                                                 "contentChanges": [{"text": text}]})
        got, _ = client.wait_diagnostics(furi, v)
        times.append((got - sent) * 1000)
    m = statistics.median(times)
    row("40-module file: whole file first probe", "<= 2 s", f"{whole:.2f} s", whole <= 2)
    row("40-module file: edit one module -> diagnostics (median)", "<= 300 ms", f"{m:.0f} ms", m <= 300)
    client.close()


def make_forty_module_file() -> Path:
    parts = ["import torch", "import torch.nn as nn", ""]
    for i in range(40):
        parts.append(textwrap.dedent(f"""
            class M{i}(nn.Module):
                def __init__(self, width=64):
                    super().__init__()
                    self.fc = nn.Linear(width, width)
                    self.act = nn.{'ReLU' if i != 20 else 'GELU'}()  # m{i}

                def forward(self, x):
                    h = self.fc(x)
                    return self.act(h)
        """))
    out = Path(tempfile.mkdtemp(prefix="shapelens-bench-")) / "forty.py"
    out.write_text("\n".join(parts))
    return out


# -- the engine: memory flat in model size, torchinfo side by side -------------------------------
def probe_stats(engine: Engine, path: Path, repeat: int) -> tuple[float, float, dict]:
    engine.check(str(path))
    times, report = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        report = engine.check(str(path))
        times.append(time.perf_counter() - t)
    return statistics.median(times), report.stats.get("peak_rss_kb", 0) / 1024, report


def bench_engine(quick: bool) -> None:
    print("engine (warm worker, meta device)")
    engine = Engine(str(ROOT))
    engine.worker.start()
    repeat = 3 if quick else 7
    small_t, small_mb, _ = probe_stats(engine, ROOT / "bench" / "models" / "mlp_1m.py", repeat)
    big_t, big_mb, report = probe_stats(engine, ROOT / "samples" / "llama_7b.py", repeat)
    params = max((c.total_params for c in report.classes), default=0)
    row("probe time: 1M-param model", "-", f"{small_t * 1000:.0f} ms", None)
    row(f"probe time: 7B-param model ({params / 1e9:.2f} B)", "~ the 1M time", f"{big_t * 1000:.0f} ms", None)
    row("peak worker RSS: 1M-param model", "-", f"{small_mb:.0f} MB", None)
    row("peak worker RSS: 7B-param model", "<= 600 MB", f"{big_mb:.0f} MB", big_mb <= 600)
    row("parameter storage allocated for the 7B model", "0 bytes", f"{report.stats['param_storage_bytes']} bytes",
        report.stats["param_storage_bytes"] == 0)

    print("in-process: torchinfo.summary's call (cpu, real weights) against a warm probe")
    for name in ("gpt2_small", "resnet50_like"):
        path = ROOT / "bench" / "models" / f"{name}.py"
        ours_t, ours_mb, rep = probe_stats(engine, path, repeat)
        runs = [torchinfo_run(path) for _ in range(1 if quick else 3)]
        theirs_t = statistics.median(r["seconds"] for r in runs)
        theirs_mb = max(r["peak_mb"] for r in runs)
        nparams = max((c.total_params for c in rep.classes), default=0)
        speed, mem = theirs_t / ours_t, theirs_mb / ours_mb
        target = nparams > 100e6
        row(f"{name} ({nparams / 1e6:.0f}M): torchinfo.summary call / warm probe", ">= 8x" if target else "-",
            f"{theirs_t:.2f} s / {ours_t * 1000:.0f} ms = {speed:.1f}x", speed >= 8 if target else None)
        row(f"{name}: torchinfo / shapelens peak memory", ">= 3x" if target else "-",
            f"{theirs_mb:.0f} / {ours_mb:.0f} MB = {mem:.1f}x", mem >= 3 if target else None)
    path = ROOT / "bench" / "models" / "llama_13b.py"
    ours_t, ours_mb, rep = probe_stats(engine, path, 1)
    cap = 8
    theirs = torchinfo_run(path, cap_gb=cap)
    nparams = max((c.total_params for c in rep.classes), default=0)
    row(f"13B model ({nparams / 1e9:.1f} B, {nparams * 4 / 2**30:.0f} GiB fp32): torchinfo", "cannot run",
        "fails" if not theirs["ok"] else "ran", not theirs["ok"])
    row("13B model: shapelens answers", "yes", f"{ours_t * 1000:.0f} ms, {ours_mb:.0f} MB",
        not [f for f in rep.findings if f.severity == "error"])
    print(f"    (torchinfo ran under a {cap} GiB address-space cap so the failing run cannot exhaust the "
          f"machine; its weights alone need {nparams * 4 / 2**30:.0f} GiB: {theirs['error']})")
    cuda(engine)
    engine.close()


def torchinfo_run(path: Path, cap_gb: float = 0) -> dict:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "torchinfo_run.py"), str(path), str(cap_gb)],
                         capture_output=True, text=True, timeout=900)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        return {"ok": False, "error": (out.stderr.strip().splitlines() or ["killed"])[-1], "seconds": float("nan"),
                "peak_mb": float("nan")}
    return json.loads(lines[-1])


def cuda(engine: Engine) -> None:
    ok = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
                        capture_output=True, text=True).stdout.strip() == "True"
    if not ok:
        row("--device cuda: seed 000 example 2", "-", "skipped: no GPU", None)
        return
    path = ROOT / "samples" / "seed000_ex2_mismatched_embedding.py"
    t = time.perf_counter()
    report = engine.check(str(path), options=ProbeOptions(device="cuda"))
    row("--device cuda: seed 000 example 2", "-", f"{(time.perf_counter() - t) * 1000:.0f} ms on {report.stats['device']}",
        report.stats["device"] == "cuda")


def bench_cli() -> None:
    print("CLI on a directory")
    target = ROOT / "tests" / "corpus" if (ROOT / "tests" / "corpus").is_dir() else ROOT / "samples"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "shapelens", "check", str(target), "--format", "json"],
                   capture_output=True, cwd=ROOT)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    files = len(list(target.rglob("*.py")))
    row(f"`shapelens check` on {files} files: CPU time / wall time", f"~ {os.cpu_count()} (cores)",
        f"{cpu:.1f} s / {wall:.1f} s = {cpu / wall:.2f}", cpu / wall > 1.2 if (os.cpu_count() or 1) > 1 else None)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} cores"


def half_of(r: dict) -> str:
    return r.get("half") or ("users" if r["figure"].startswith(USERS_FIGURES) else "engine")


def merged(out: Path, only: str) -> list[dict]:
    """`--only` measures one half: the other half's rows of the last run are kept (each row
    carries its own load), so `make measurements` still renders the whole table."""
    try:
        old = json.loads(out.read_text(encoding="utf-8")).get("rows", [])
    except (OSError, ValueError):
        old = []
    kept = [{**r, "half": half_of(r)} for r in old if half_of(r) != only]
    return ROWS + kept if only == "users" else kept + ROWS


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results.json"))
    parser.add_argument("--corpus", default=os.environ.get("SHAPELENS_BENCH_CORPUS"),
                        help="a folder of real model files (default $SHAPELENS_BENCH_CORPUS)")
    parser.add_argument("--corpus-python", default=os.environ.get("SHAPELENS_BENCH_CORPUS_PYTHON"),
                        help="the interpreter those files need (default $SHAPELENS_BENCH_CORPUS_PYTHON)")
    parser.add_argument("--only", choices=("users", "engine"), default=None, help="one half of the table")
    args = parser.parse_args()
    mach = machine()
    loads = [load()]
    print(f"machine: {mach}\n{loads[0]}\n")
    print(f"  {'figure':58s} {'target':>18s} {'measured':>26s} {'met':>4s}")
    if args.only in (None, "users"):
        torch_s = users.whole_process(row, 3 if args.quick else 5)
        users.cold_start(row, torch_s, 2 if args.quick else 3)
        users.lsp_default(row, args.quick)
        users.real_corpus(row, args.corpus, args.corpus_python)
    if args.only in (None, "engine"):
        HALF["now"] = "engine"
        bench_lsp(args.quick)
        bench_engine(args.quick)
        bench_cli()
    loads.append(load())
    print(f"\n{loads[1]}")
    rows = ROWS if args.only is None else merged(Path(args.out), args.only)
    Path(args.out).write_text(json.dumps({"machine": mach, "load": loads, "rows": rows}, indent=2) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
