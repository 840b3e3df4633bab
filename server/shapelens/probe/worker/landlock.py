"""Landlock for the probe child (Linux 5.13+), with ctypes: where files may change, and, from
ABI 4 and 6, TCP connections and signals.

Reads are not restricted (imports, torch's libraries, the user's data files). Every right that
changes the file system is restricted to the probe's private scratch folder, plus writing to the
device files a probe needs (/dev/null, and /dev/nvidia* for `--device cuda`). TCP bind/connect
get no rule, so none is allowed (ABI 4); signals and abstract UNIX sockets are scoped to the
probe's own domain (ABI 6).
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys

SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1

EXECUTE, WRITE_FILE = 1 << 0, 1 << 1
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR, MAKE_REG = 1 << 4, 1 << 5, 1 << 6, 1 << 7, 1 << 8
MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE = 1 << 13, 1 << 14  # ABI 2, ABI 3
NET_BIND_TCP, NET_CONNECT_TCP = 1, 2  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1, 2  # ABI 6
FILE_RIGHTS = EXECUTE | WRITE_FILE | TRUNCATE  # the rights a rule on a single file may carry


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


PR_SET_NO_NEW_PRIVS = 38
_LIBC: list = []


def libc():
    """The C library, loaded once (in the worker, before it forks: find_library would run a
    subprocess, and CDLL(None) is this process's own symbols, libc included)."""
    if not _LIBC:
        lib = ctypes.CDLL(None, use_errno=True)
        lib.syscall.restype = ctypes.c_long
        _LIBC.append(lib)
    return _LIBC[0]


def no_new_privs() -> bool:
    """No exec can gain privileges from now on (what seccomp and Landlock require)."""
    return libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0


def abi() -> int:
    """The kernel's Landlock ABI version (0: none, or not Linux)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        version = libc().syscall(SYS_CREATE_RULESET, None, 0, CREATE_RULESET_VERSION)
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


def writable_devices() -> list[str]:
    return ["/dev/null"] + sorted(glob.glob("/dev/nvidia*"))


def restrict(scratch: str) -> str | None:
    """Confine this thread (and what it starts later). Returns why not, or None. Needs
    no_new_privs set first (the seccomp step does it)."""
    version = abi()
    if version < 1:
        return "the kernel has no Landlock"
    lib = libc()
    if not no_new_privs():
        return "prctl(NO_NEW_PRIVS) failed"
    fs = EXECUTE | WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_CHAR | MAKE_DIR | MAKE_REG | MAKE_SOCK \
        | MAKE_FIFO | MAKE_BLOCK | MAKE_SYM
    if version >= 2:
        fs |= REFER
    if version >= 3:
        fs |= TRUNCATE
    attr = _RulesetAttr(fs, NET_BIND_TCP | NET_CONNECT_TCP if version >= 4 else 0,
                        SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if version >= 6 else 0)
    size = 8 if version < 4 else 16 if version < 6 else 24
    ruleset = lib.syscall(SYS_CREATE_RULESET, ctypes.byref(attr), size, 0)
    if ruleset < 0:
        return f"landlock_create_ruleset failed: {os.strerror(ctypes.get_errno())}"
    try:
        for path, rights in [(scratch, fs & ~EXECUTE)] + [(d, (WRITE_FILE | TRUNCATE) & fs)
                                                           for d in writable_devices()]:
            if not os.path.isdir(path):
                rights &= FILE_RIGHTS
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                rule = _PathBeneath(rights, fd)
                if lib.syscall(SYS_ADD_RULE, int(ruleset), RULE_PATH_BENEATH, ctypes.byref(rule), 0) != 0:
                    return f"landlock_add_rule({path}) failed: {os.strerror(ctypes.get_errno())}"
            finally:
                os.close(fd)
        if lib.syscall(SYS_RESTRICT_SELF, int(ruleset), 0) != 0:
            return f"landlock_restrict_self failed: {os.strerror(ctypes.get_errno())}"
    finally:
        os.close(int(ruleset))
    return None
