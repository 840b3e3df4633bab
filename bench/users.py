"""What users see, measured the way they meet it: whole processes, default settings.

- the CLI's whole process against torchinfo's whole process (import torch + build on CPU +
  summary) and against `python -c "import torch"` (the floor), alternating in one run;
- the language server with default settings (debounce included), for realistic edits;
- cold start: spawn + initialize -> first diagnostics;
- a directory of real model files (from a scratch venv; the row is skipped when it is absent).
"""

from __future__ import annotations

import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))

from rawlsp import LspClient, server_cmd  # noqa: E402

PY = sys.executable
SHAPELENS = [PY, "-m", "shapelens", "check"]


def wall(cmd: list[str], cwd: Path = ROOT, env: dict | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, capture_output=True, timeout=900, env=env)
    return time.perf_counter() - started


def alternate(commands: dict[str, list[str]], rounds: int) -> dict[str, list[float]]:
    """Each command once per round, in turn, so load on a shared machine hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, cmd in commands.items():
            times[name].append(wall(cmd))
    return times


def whole_process(row, rounds: int) -> float:
    """Returns the median `import torch` time (the cold-start target is relative to it)."""
    print(f"whole processes, alternating, {rounds} rounds (medians)")
    gpt2 = ROOT / "bench" / "models" / "gpt2_small.py"
    one = ROOT / "bench" / "models" / "mlp_1m.py"
    times = alternate({
        "torch": [PY, "-c", "import torch"],
        "cli_gpt2": SHAPELENS + [str(gpt2)],
        "torchinfo_gpt2": [PY, str(ROOT / "bench" / "torchinfo_run.py"), str(gpt2)],
        "cli_one": SHAPELENS + [str(one)],
    }, rounds)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    ratio = med["torchinfo_gpt2"] / med["cli_gpt2"]
    row("GPT-2-small file: torchinfo process / `shapelens check` process", ">= 1.5x",
        f"{med['torchinfo_gpt2']:.2f} s / {med['cli_gpt2']:.2f} s = {ratio:.2f}x", ratio >= 1.5)
    floor = med["cli_one"] / med["torch"]
    row("one-class file: `shapelens check` / `python -c 'import torch'`", "<= 1.3x",
        f"{med['cli_one']:.2f} s / {med['torch']:.2f} s = {floor:.2f}x", floor <= 1.3)
    cli_phases(row, gpt2, rounds)
    return med["torch"]


def cli_phases(row, path: Path, rounds: int) -> None:
    """Where the GPT-2 run's time goes (bench/phases.py: SHAPELENS_TIMING=1), seconds since the
    CLI process started: the worker's `import torch` is the floor, the rest should follow it."""
    import phases

    ph = phases.phases(path, rounds)
    spawned, ready = ph.get("client: worker spawned"), ph.get("worker: ready")
    planned = next((t for what, t in ph.items() if what.startswith("plan: end")), None)
    answered = next((t for what, t in ph.items() if what.startswith("client: worker said answer")), None)
    out = ph.get("cli: output written")
    if None in (spawned, ready, planned, answered, out):
        row("GPT-2-small `shapelens check` phases", "-", "no SHAPELENS_TIMING events", None)
        return
    row("GPT-2 check: worker spawned / planned / worker ready / answer / output", "-",
        f"{spawned:.2f} / {planned:.2f} / {ready:.2f} / {answered:.2f} / {out:.2f} s", None)


# -- the language server, default settings ----------------------------------------------------------
def realistic_edits(text: str) -> list[tuple[str, str]]:
    """(kind, new text) pairs, each applied to the text before it: typing inside a forward,
    changing one constructor argument (and back), adding a line at the end."""
    edits: list[tuple[str, str]] = []
    lines = text.splitlines(keepends=True)
    forward = next((i for i, ln in enumerate(lines) if re.match(r"\s+def forward\(", ln)), None)
    if forward is not None:
        indent = re.match(r"\s*", lines[forward + 1]).group(0) if forward + 1 < len(lines) else "        "
        typed = ""
        for ch in "scale = 1.0":  # a new line in forward's body, one keystroke at a time
            typed += ch
            cur = lines[: forward + 1] + [f"{indent}{typed}\n"] + lines[forward + 1:]
            edits.append(("typing inside forward", "".join(cur)))
        lines = lines[: forward + 1] + [f"{indent}{typed}\n"] + lines[forward + 1:]
    arg = re.compile(r"nn\.\w+\([^)\n]*?\b(\d+)\b")  # an integer among a layer's arguments
    for i, ln in enumerate(lines):
        m = arg.search(ln)
        if m:
            for value in (int(m.group(1)) + 1, int(m.group(1))):
                lines[i] = ln[: m.start(1)] + str(value) + ln[m.end(1):]
                edits.append(("constructor argument", "".join(lines)))
            break
    base = "".join(lines)
    for n in range(1, 4):
        edits.append(("line at the end", base + "".join(f"x{k} = {k}\n" for k in range(n))))
    return edits


def edit_latencies(client: LspClient, path: Path, breakdown: list[dict] | None = None) -> dict[str, list[float]]:
    """Milliseconds from each edit to its first diagnostics, by kind of edit; `breakdown` gets
    the server's stats of each edit's probe (shapelens/probeStats) with the latency added."""
    uri = path.as_uri()
    text = path.read_text()
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                             "text": text}})
    client.wait_diagnostics(uri, 1, timeout=120)
    out: dict[str, list[float]] = {}
    version = 1
    for kind, new in realistic_edits(text):
        version += 1
        sent = time.perf_counter()
        client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                                 "contentChanges": [{"text": new}]})
        got, _ = client.wait_diagnostics(uri, version, timeout=60)
        out.setdefault(kind, []).append((got - sent) * 1000)
        if breakdown is not None:
            _, stats, _ = client.request("shapelens/probeStats", {"textDocument": {"uri": uri}}).result(timeout=30)
            breakdown.append({**(stats or {}), "file": path.name, "kind": kind, "latency_ms": (got - sent) * 1000})
        time.sleep(0.05)  # a typist's pause between keystrokes, after the squiggles came back
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    return out


def warm_up(client: LspClient, path: Path, idle_s: float = 5.0) -> None:
    """Open and close one file, then leave the server idle: the worker loads torch's lazily
    imported parts while nothing runs (its warm-up), as it has long done by the time a user
    edits. Without this the first file's first edits pay that warm-up."""
    uri = path.as_uri()
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                             "text": path.read_text()}})
    client.wait_diagnostics(uri, 1, timeout=120)
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    time.sleep(idle_s)


def where_time_went(breakdown: list[dict]) -> None:
    """Medians and 95th percentiles of each part of an edit's latency (the server's own figures)."""
    def part(name: str, get) -> None:
        values = [v for v in (get(b) for b in breakdown) if v is not None]
        if values:
            print(f"    {name:<38} p50 {statistics.median(values):6.0f}   p95 {pct(values, 0.95):6.0f} ms")
    timing = [("plan", "planning (ast + Jedi, statement cache)"), ("worker", "worker round trip"),
              ("probe", "  of it: probing"), ("verify", "  of it: fix re-probes"), ("report", "building the report")]
    part("wait before probing (adaptive debounce)", lambda b: b.get("delay_ms"))
    for key, name in timing:
        part(name, lambda b, key=key: (b.get("timing_ms") or {}).get(key))
    part("probe CPU time (the child's own)", lambda b: b.get("cpu_ms"))
    part("edit -> diagnostics", lambda b: b.get("latency_ms"))
    unverified = sum(1 for b in breakdown if b.get("unverified"))
    print(f"    {unverified} of {len(breakdown)} edits published before their fix re-probes (then refined)")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def cold_start(row, torch_s: float, rounds: int) -> None:
    path = ROOT / "samples" / "seed000_ex2_mismatched_embedding.py"
    colds = []
    for _ in range(rounds):
        started = time.perf_counter()
        client = LspClient(server_cmd(), cwd=str(ROOT))
        client.initialize(str(ROOT), {})
        uri = path.as_uri()
        client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                                 "text": path.read_text()}})
        got, _ = client.wait_diagnostics(uri, 1, timeout=120)
        colds.append(got - started)
        client.close()
    cold, target = statistics.median(colds), 1.5 * torch_s + 1
    row("cold: spawn + initialize -> first diagnostics (default settings)", f"<= {target:.2f} s",
        f"{cold:.2f} s", cold <= target)
    print(f"    (target: 1.5 x import torch ({torch_s:.2f} s, this run) + 1 s)")


def lsp_default(row, quick: bool, python: str | None = None) -> None:
    """`python`: the interpreter whose `shapelens serve` is measured (another checkout's venv,
    for a before/after in one run)."""
    print("language server, default settings (debounce 300 ms, adaptive), realistic edits, "
          f"load average {os.getloadavg()[0]:.2f}")
    client = LspClient([python, *server_cmd()[1:]] if python else server_cmd(), cwd=str(ROOT))
    client.initialize(str(ROOT), {})
    samples = sorted((ROOT / "samples").glob("*.py"))
    if quick:
        samples = samples[:4]
    samples = [p for p in samples if p.name != "llama_7b.py"] + [ROOT / "samples" / "llama_7b.py"]
    warm_up(client, samples[0])
    times: dict[str, list[float]] = {}
    breakdown: list[dict] = []
    for path in samples:
        for kind, ts in edit_latencies(client, path, breakdown).items():
            times.setdefault(kind, []).extend(ts)
    gpt_breakdown: list[dict] = []
    gpt = edit_latencies(client, ROOT / "bench" / "models" / "gpt2_small.py", gpt_breakdown)
    client.close()
    print(f"    where the time went, samples/ (load average now {os.getloadavg()[0]:.2f}):")
    where_time_went(breakdown)
    print("    where the time went, GPT-2 file:")
    where_time_went(gpt_breakdown)
    debounce = 300
    every = [t for ts in times.values() for t in ts]
    for label, values in [("samples/, all edits", every), *((f"samples/, {k}", v) for k, v in times.items()),
                          ("GPT-2 file, all edits", [t for ts in gpt.values() for t in ts])]:
        p50, p95 = statistics.median(values), pct(values, 0.95)
        ok = p50 <= debounce + 100 and p95 <= debounce + 250
        row(f"edit -> diagnostics p50 / p95: {label} ({len(values)})", "<= 400 / 550 ms",
            f"{p50:.0f} / {p95:.0f} ms", ok)


# -- real model files -----------------------------------------------------------------------------
def corpus_files(folder: Path, count: int) -> list[Path]:
    """Model files: `modeling_*.py` (transformers' layout) or any .py, in a stable order."""
    found = sorted(folder.rglob("modeling_*.py")) or sorted(folder.rglob("*.py"))
    found = [p for p in found if "flax" not in p.name and "tf_" not in p.name]
    step = max(1, len(found) // count)
    return found[::step][:count]


def real_corpus(row, corpus: str | None, python: str | None, count: int = 30) -> None:
    """`shapelens check` on `count` model files of an installed package, read where pip put them
    (nothing of them is copied here). Wall time per file is the target; on a shared machine the
    CPU time of the whole process tree, divided by the cores, says what an idle machine takes."""
    cores = os.cpu_count() or 1
    if not corpus or not Path(corpus).is_dir():
        row(f"{count} real model files: wall time per file, {cores} cores", "<= 1.5 s",
            "skipped: no corpus", None)
        print("    (give --corpus a folder of model files, e.g. transformers/models in a scratch venv's "
              "site-packages, and --corpus-python that venv's python)")
        return
    files = corpus_files(Path(corpus), count)
    cmd = SHAPELENS + (["--python", python] if python else []) + ["--format", "json"] + [str(f) for f in files]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    ran = out.returncode in (0, 1)
    per = seconds / len(files)
    row(f"{len(files)} real model files: wall time per file, {cores} cores", "<= 1.5 s",
        f"{seconds:.1f} s / {len(files)} = {per:.2f} s", per <= 1.5 if ran else False)
    idle = cpu / cores / len(files)
    row(f"{len(files)} real model files: CPU time per file / {cores} cores (idle-machine estimate)", "<= 1.5 s",
        f"{cpu:.1f} s / {len(files)} / {cores} = {idle:.2f} s", idle <= 1.5 if ran else False)
    print(f"    (from {corpus}; exit status {out.returncode})")


if __name__ == "__main__":  # the language-server rows alone: `python bench/users.py [--quick] [--python PY]`
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--python", help="the interpreter whose `shapelens serve` to measure")
    args = parser.parse_args()
    lsp_default(lambda figure, target, measured, ok: print(f"  {figure:58s} {target:>18s} {measured:>20s}  "
                                                           f"load {os.getloadavg()[0]:.1f}"), args.quick, args.python)
