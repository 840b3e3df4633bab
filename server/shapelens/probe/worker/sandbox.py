"""What a probe child gives up before it runs any user code (docs/security.md).

Order matters: first every inherited descriptor but the result pipe goes (the worker's protocol
streams, sibling probes' pipes), so user code can neither forge the worker's answers nor read
another probe's; the child asks to die with the worker; then, on Linux, Landlock (file changes
only in the probe's scratch folder, no TCP, signals scoped) and a seccomp filter (no exec, no
fork, no sockets but AF_UNIX, no ptrace, no signals to others); last the audit hook that names
what it blocks. The worker parent stays unfiltered: the child restricts itself right after the
fork, so no extra process per probe is needed, and what a filter forbids stays forbidden for
everything the child starts.

Fork: every probe child's kernel filter refuses fork, vfork and clone without CLONE_THREAD
(threads stay: torch's pool) before any of the file's code runs, so that code cannot start a
process, through ctypes or otherwise. The probes a child needs run for it (a fix's re-probe, a
second assumption of constructor arguments) it asks the worker parent for over its channel; the
parent, which runs no user code, forks each as a fresh sandboxed probe child (worker/children.py).
"""

from __future__ import annotations

import os
import shutil
import tempfile

from shapelens.probe import protocol
from shapelens.probe.worker import audit, landlock, reaper, seccomp
from shapelens.report.codes import PROBE_INCOMPLETE

FD_LIMIT = 1 << 20
ROOT: list[str] = []  # the worker's scratch root; each probe child gets a folder in it


def enabled() -> bool:
    return os.environ.get("SHAPELENS_SANDBOX", "on").lower() not in ("off", "0", "false")


def prepare() -> None:
    """In the worker, before any fork: the scratch root, and the C library loaded once."""
    if not ROOT:
        ROOT.append(tempfile.mkdtemp(prefix="shapelens-probe-"))
    if seccomp.supported() is None:
        landlock.libc()


def scratch_of(pid: int) -> str:
    return os.path.join(ROOT[0] if ROOT else tempfile.gettempdir(), str(pid))


def discard(pid: int) -> None:
    """Remove a finished probe's scratch folder (in the worker)."""
    shutil.rmtree(scratch_of(pid), ignore_errors=True)


def close_inherited(keep: int) -> None:
    """Close every descriptor above stderr except `keep` (close_range where the OS has it)."""
    os.closerange(3, keep)
    os.closerange(keep + 1, FD_LIMIT)
    os.set_inheritable(keep, False)  # close-on-exec, should anything ever exec


def enter(result_fd: int, files: set[str]) -> str:
    """Confine this freshly forked probe child; `result_fd` (its channel) is its one way out. Returns what is
    enforced, for the probe's stats (`seccomp+landlock`, `audit only: ...`)."""
    close_inherited(result_fd)
    reaper.die_with_parent()
    if not enabled():
        return "off (SHAPELENS_SANDBOX=off)"
    scratch = scratch_of(os.getpid())
    os.makedirs(scratch, exist_ok=True)
    os.environ["TMPDIR"] = tempfile.tempdir = scratch
    layers, missing = [], []
    why_not = landlock.restrict(scratch)
    (missing if why_not else layers).append(why_not or "landlock")
    why_not = seccomp.install(allow_fork=False, files=bool(why_not))
    (missing if why_not else layers).append(why_not or "seccomp")
    audit.install(files, scratch)
    layers.append("audit")
    return "+".join(layers) + (f" (not enforced: {'; '.join(missing)})" if missing else "")


def add_notes(findings: list) -> None:
    """One probe-incomplete note per operation the audit hook blocked, unless the error it raised
    was already reported on that line."""
    said = {(f["path"], f["span"][0]) for f in findings if "blocked " in f.get("message", "")}
    for path, line, message in audit.notes():
        if (path, line) not in said:
            findings.append(protocol.finding(PROBE_INCOMPLETE, path, (line, 0, line, 10_000), message))
