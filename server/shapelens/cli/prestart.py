"""The probe worker of a `shapelens check` run, started first thing.

The worker's `import torch` is the longest step of a run; planning (the planner's modules and
Jedi take a few hundred ms to import, before any file is read) needs no torch. So the worker is
spawned from the command line as given, before the rest of the CLI is even imported, and the two
overlap. The command line is only glanced at here; `run_check` parses it properly and drops this
worker when the guess was wrong (another interpreter, nothing to probe, a usage error).
"""

from __future__ import annotations

from shapelens import timing
from shapelens.cli import environment
from shapelens.probe.client import WorkerClient, WorkerUnavailable


def python_arg(argv: list[str]) -> str | None:
    """The `--python` given (None when none is), as argparse would read it."""
    found = None
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--python" and i + 1 < len(argv):
            found = argv[i + 1]
        elif arg.startswith("--python="):
            found = arg.partition("=")[2]
    return found


def start(argv: list[str]) -> WorkerClient | None:
    """A started worker for `shapelens check ...`, None for anything else (help, another
    command, an interpreter that does not exist: the proper parse then says so)."""
    if not argv or argv[0] != "check" or any(a in ("-h", "--help") for a in argv[1:]):
        return None
    python = python_arg(argv)
    try:
        resolved = environment.resolve_python(python)
    except environment.EnvironmentProblem:
        return None
    worker = WorkerClient(resolved if python else None)
    try:
        worker.start(wait=False)
    except WorkerUnavailable:
        return None
    timing.mark("cli: worker started early")
    return worker


def fits(worker: WorkerClient | None, python: str) -> WorkerClient | None:
    """The early worker when it runs `python`, the interpreter the run settled on; else None
    (and it is closed)."""
    if worker is None:
        return None
    if worker.python == python:
        return worker
    worker.close(wait=False)
    return None
