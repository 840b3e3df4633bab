"""Where a whole `shapelens check FILE` process spends its time: the run's SHAPELENS_TIMING=1
events (the CLI's and the worker's, on one clock), medians over a few runs, seconds since the
CLI process started.

    .venv/bin/python bench/phases.py [FILE ...] [--rounds 5] [--python PATH]

Without files: the GPT-2-small file, the one-class file and a sample with a mismatch (whose fix
is verified by helper probes). bench/users.py takes its phase row from `phases()`.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = [ROOT / "bench" / "models" / "gpt2_small.py", ROOT / "bench" / "models" / "mlp_1m.py",
           ROOT / "samples" / "seed000_ex2_mismatched_embedding.py"]
EVENT = re.compile(r"^\s+(?P<t>-?\d+\.\d+)\s+(?P<what>.+)$")
PID = re.compile(r" \(pid \d+\)$")


def events(path: Path, python: str = sys.executable) -> list[tuple[float, str]]:
    """One run's events, in order (the pid a message names is dropped: runs are compared)."""
    done = subprocess.run([python, "-m", "shapelens", "check", str(path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "SHAPELENS_TIMING": "1"})
    return [(float(m["t"]), PID.sub("", m["what"])) for m in map(EVENT.match, done.stderr.splitlines()) if m]


def phases(path: Path, rounds: int, python: str = sys.executable) -> dict[str, float]:
    """Median time of each event that every run had (the first of its name), in order."""
    runs = []
    for _ in range(rounds):
        seen: dict[str, float] = {}
        for t, what in events(path, python):
            seen.setdefault(what, t)
        runs.append(seen)
    common = [what for what in runs[0] if all(what in r for r in runs)]
    return dict(sorted(((w, statistics.median(r[w] for r in runs)) for w in common), key=lambda kv: kv[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--python", default=sys.executable, help="the interpreter whose shapelens runs")
    args = parser.parse_args()
    for path in args.files or DEFAULT:
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} "
              f"(medians of {args.rounds} runs, load {os.getloadavg()[0]:.1f})")
        for what, t in phases(path, args.rounds, args.python).items():
            print(f"  {t:7.3f} s  {what}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
