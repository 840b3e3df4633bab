"""A PEP 578 audit hook in the probe child: the sandbox's second layer, and the one that can say
what was blocked and where.

The kernel filters (seccomp, Landlock) refuse a forbidden call with a bare EPERM. This hook sees
the Python-level operation first (`os.system`, `subprocess.Popen`, `open(..., "w")`,
`socket.connect`, `os.fork`...), refuses it with a PermissionError that names it, and records it
with the line of the file's code that asked, so the probe reports `blocked os.system at line 6`
even when the code catches the error. It is not a boundary by itself (ctypes can issue any
syscall, and Python code can reach this module): the kernel filters are. It also blocks on
macOS and Windows, where no kernel filter is installed.
"""

from __future__ import annotations

import os
import sys

WRITE_MODES = set("wax+")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# Event -> what the refusal says the file's code tried.
PROCESS = ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "subprocess.Popen",
           "pty.spawn", "os.startfile")
FILES = ("os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.link", "os.symlink", "os.truncate", "os.chmod",
         "os.chown", "shutil.rmtree", "shutil.move", "shutil.copyfile", "os.mknod", "os.utime")
NETWORK = ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo")
SIGNALS = ("os.kill", "os.killpg", "signal.pthread_kill")


class Auditor:
    def __init__(self, files: set[str], scratch: str) -> None:
        self.files, self.scratch = files, scratch.rstrip("/") + "/"
        self.blocked: list[tuple[str, str, int]] = []  # (operation, path, line) in the file's code
        self.watched = set(PROCESS + FILES + NETWORK + SIGNALS + ("open", "socket.__new__"))

    def __call__(self, event: str, args: tuple) -> None:
        if event not in self.watched:
            return
        name = self._forbidden(event, args)
        if name is None:
            return
        where = self._where()
        if where:
            self.blocked.append((name, *where))
        raise PermissionError(f"blocked {name}" + (f" at line {where[1]}" if where else "")
                              + ": the probe runs the file's code in a sandbox (no processes, file changes, "
                              "network or signals)")

    def _forbidden(self, event: str, args: tuple) -> str | None:
        if event == "open":
            path, mode, flags = (list(args) + [None, None, None])[:3]
            if isinstance(path, int) or not self._writes(mode, flags):
                return None
            real = os.path.realpath(os.fsdecode(path)) if isinstance(path, (str, bytes, os.PathLike)) else ""
            if self._inside(real) or real == "/dev/null" or real.startswith("/dev/nvidia"):
                return None
            return f"open({os.fsdecode(path)!r}) for writing" if real else "open for writing"
        if event == "socket.__new__":
            family = args[1] if len(args) > 1 else None
            return None if family in (getattr(__import__("socket"), "AF_UNIX", 1), -1) else "socket.socket"
        if event in SIGNALS:
            pid = args[0] if args else None
            if event == "signal.pthread_kill" or pid in (0, os.getpid()):
                return None
            return event
        if event in FILES:
            paths = [os.path.realpath(os.fsdecode(a)) for a in args if isinstance(a, (str, bytes, os.PathLike))]
            if paths and all(self._inside(p) for p in paths):
                return None  # the probe's own scratch folder
        return event

    def _inside(self, real: str) -> bool:
        return real == self.scratch[:-1] or real.startswith(self.scratch)

    @staticmethod
    def _writes(mode, flags) -> bool:
        if isinstance(mode, str) and WRITE_MODES & set(mode):
            return True
        return isinstance(flags, int) and flags & WRITE_FLAGS != 0

    def _where(self) -> tuple[str, int] | None:
        frame = sys._getframe(2)
        while frame is not None:
            if frame.f_code.co_filename in self.files:
                return frame.f_code.co_filename, frame.f_lineno
            frame = frame.f_back
        return None


AUDITOR: Auditor | None = None


def install(files: set[str], scratch: str) -> Auditor:
    """Add the hook (for the rest of this process's life: audit hooks cannot be removed)."""
    global AUDITOR
    AUDITOR = Auditor(files, scratch)
    sys.addaudithook(AUDITOR)
    return AUDITOR


def notes() -> list[tuple[str, int, str]]:
    """(path, line, message) for each distinct operation blocked, in order."""
    if AUDITOR is None:
        return []
    seen: set[tuple[str, str, int]] = set()
    out = []
    for name, path, line in AUDITOR.blocked:
        if (name, path, line) not in seen:
            seen.add((name, path, line))
            out.append((path, line, f"blocked {name} at line {line}: the probe runs the file's code in a sandbox "
                                    "(no processes, file changes, network or signals); shapes after it may be "
                                    "unknown"))
    return out
