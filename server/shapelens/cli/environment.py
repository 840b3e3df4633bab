"""Before any probing: the interpreter that runs the probe exists and has torch. Either problem is
one line the user can act on, not a worker traceback."""

from __future__ import annotations

import os
import subprocess
import sys

from shapelens.probe.client import WorkerClient

# find_spec, not import: answers in tens of milliseconds instead of torch's seconds.
_HAS_TORCH = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('torch') else 3)"


class EnvironmentProblem(Exception):
    """The message is the whole story (printed after `shapelens: error: `)."""


def resolve_python(python: str | None) -> str:
    if python is None:
        return sys.executable
    import shutil  # here: the default interpreter is resolved before the worker starts (cli.prestart)

    found = shutil.which(python) if os.sep not in python else (python if os.access(python, os.X_OK) else None)
    if found is None or os.path.isdir(found):
        raise EnvironmentProblem(f"--python {python}: no such interpreter")
    return os.path.abspath(found)


def check_torch(python: str, worker: WorkerClient | None = None) -> None:
    """`worker`: one started with `python`; its hello (sent before it imports torch) says where
    torch is, sparing a process. Without one, or when it said nothing, a process is asked."""
    if worker is not None and worker.wait_hello(60).get("torch_version"):
        return
    try:
        done = subprocess.run([python, "-c", _HAS_TORCH], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentProblem(f"cannot run {python}: {exc}") from exc
    if done.returncode == 3:
        raise EnvironmentProblem(f"torch is not installed in {python}: install it there or pass --python PATH")
    if done.returncode != 0:
        last = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["it exited with status "
                                                                                f"{done.returncode}"])[-1]
        raise EnvironmentProblem(f"{python} cannot run the probe: {last}")


def one_line(exc: BaseException) -> str:
    """A worker failure as one line: the last line of its log says what went wrong."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return lines[0] if len(lines) == 1 else f"{lines[0].rstrip(':')}: {lines[-1]}"
