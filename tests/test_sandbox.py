"""The probe child's sandbox: what the file's code may not do, even from inside `forward` (which
is allowed to run). Each operation is tried through Python, where the audit hook names it in a
note, and through raw C calls (ctypes), where only the kernel filters stand in the way."""

from __future__ import annotations

import os
import textwrap

import pytest

from helpers import shape_of
from shapelens.probe.worker import landlock, seccomp
from test_containment import forward_file

NO_SECCOMP = seccomp.supported()
NO_LANDLOCK = None if landlock.abi() >= 1 else "the kernel has no Landlock"

def probe(workspace, body: str):
    workspace.write("bad.py", forward_file(body))
    report = workspace.check("bad.py")
    assert shape_of(report, "z").shape == [3, 5]  # the rest of the file is still probed
    return report


@pytest.mark.skipif(NO_SECCOMP is not None, reason=f"no seccomp here: {NO_SECCOMP}")
@pytest.mark.parametrize("name, call", [
    ("os.system", "os.system('touch {marker}')"),
    ("open('{marker}') for writing", "open('{marker}', 'w').write('x')"),
    ("socket.socket", "socket.socket().connect(('127.0.0.1', 9))"),
    ("socket.connect", "socket.socket(socket.AF_UNIX).connect('/run/{marker}')"),
    ("os.fork", "os.fork() or os.kill(os.getpid(), 9)"),
    ("os.kill", "os.kill(1, 0)"),
])
def test_python_level_operations_are_blocked_and_named(workspace, name, call):
    marker = workspace.root / "marker"
    report = probe(workspace, call.format(marker=marker))
    notes = [f for f in report.findings if f.code == "probe-incomplete"]
    assert any(f"blocked {name.format(marker=marker)} at line 9" in f.message for f in notes), notes
    assert all(f.range["start"]["line"] == 8 for f in notes), notes  # forward's line, 0-based
    assert not marker.exists()
    assert "seccomp" in report.stats["sandbox"]


# Raw calls the audit hook never sees: each result is raised as the note's text.
LIBC = "libc = ctypes.CDLL(None, use_errno=True)\n"


@pytest.mark.skipif(NO_SECCOMP is not None, reason=f"no seccomp here: {NO_SECCOMP}")
@pytest.mark.parametrize("what, call", [
    ("execve", "libc.execv(b'/bin/sh', (ctypes.c_char_p * 3)(b'sh', b'-c', None))"),
    ("socket AF_INET", "libc.socket(2, 1, 0)"),
    ("kill init", "libc.kill(1, 0)"),
    ("ptrace", "libc.ptrace(16, os.getppid(), 0, 0)"),
])
def test_the_kernel_filter_refuses_raw_calls(workspace, what, call):
    report = probe(workspace, LIBC + f"rc = {call}\nraise ValueError(f'kernel said {{rc}} errno {{ctypes.get_errno()}}')")
    assert any("kernel said -1 errno 1" in f.message for f in report.findings), (what, report.findings)


@pytest.mark.skipif(NO_LANDLOCK is not None, reason=NO_LANDLOCK or "")
def test_landlock_refuses_raw_writes_outside_the_scratch_folder(workspace):
    target = workspace.root / "written"
    report = probe(workspace, LIBC + f"rc = libc.open({str(target).encode()!r}, 0o1101, 0o644)\n"
                              "raise ValueError(f'kernel said {rc} errno {ctypes.get_errno()}')")
    assert any("kernel said -1 errno 13" in f.message for f in report.findings), report.findings
    assert not target.exists()
    victim = workspace.write("victim.txt", "keep me")
    probe(workspace, LIBC + f"libc.unlink({str(victim).encode()!r})\nlibc.rename({str(victim).encode()!r}, b'/tmp/x')")
    assert victim.read_text() == "keep me"
    assert "landlock" in workspace.check("bad.py").stats["sandbox"]


@pytest.mark.skipif(NO_LANDLOCK is not None, reason=NO_LANDLOCK or "")
def test_the_scratch_folder_is_writable_and_private(workspace):
    report = probe(workspace, """
        import tempfile
        with tempfile.NamedTemporaryFile("w") as f:
            f.write("scratch")
        raise ValueError(f"scratch ok in {os.path.dirname(f.name)}")
    """)
    assert any("scratch ok in" in f.message and "shapelens-probe-" in f.message for f in report.findings), \
        [f.message for f in report.findings]


def test_a_fix_is_still_verified_inside_the_sandbox(workspace):
    """Choosing where a fix goes re-probes the file in forked copies: they still run."""
    from conftest import SAMPLES

    workspace.write("m.py", (SAMPLES / "seed000_ex2_mismatched_embedding.py").read_text())
    report = workspace.check("m.py")
    assert [f.code for f in report.findings] == ["feature-mismatch"]
    assert report.findings[0].fixes


# Raw process creation from the first probe child: fork (57), clone with SIGCHLD and without
# CLONE_THREAD, i.e. a new process (56), and clone3 (435, refused as missing so the C library
# falls back to clone). Syscall numbers of x86_64, the one architecture with a filter table.
FORKS = {"fork": ("libc.syscall(57)", 1), "clone": ("libc.syscall(56, 17, 0, 0, 0, 0)", 1),
         "clone3": ("libc.syscall(435, 0, 88)", 38)}


@pytest.mark.skipif(NO_SECCOMP is not None, reason=f"no seccomp here: {NO_SECCOMP}")
@pytest.mark.parametrize("what", sorted(FORKS))
def test_the_kernel_refuses_fork_in_the_first_probe_child(workspace, worker, what):
    from support.procs import descendants

    call, refused = FORKS[what]
    marker = workspace.root / f"forked-{what}"
    body = LIBC + textwrap.dedent(f"""
        rc = {call}
        if rc == 0:  # a new process: it says so where the sandbox lets it, then ends
            open({str(marker)!r}, "w").write("x")
            libc._exit(0)
        err = ctypes.get_errno()
        raise OSError(err, f"{what} returned {{rc}}: {{os.strerror(err)}}")
    """)
    report = probe(workspace, body)
    notes = [f for f in report.findings if f.code == "probe-incomplete"]
    assert any(f"{what} returned -1: {os.strerror(refused)}" in f.message for f in notes), notes
    assert not marker.exists()
    assert "seccomp" in report.stats["sandbox"]
    assert not descendants(worker.pid), "a process outlived its probe"
