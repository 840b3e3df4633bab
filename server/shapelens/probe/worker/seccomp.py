"""A seccomp-bpf filter for the probe child, built with ctypes (Linux x86_64).

Why ctypes and not libseccomp's binding (`pyseccomp`): the filter is about forty instructions, the
worker runs in the user's interpreter where we cannot install packages, and libseccomp is not on
every machine; a missing dependency would silently mean no sandbox. The price is a syscall table
per architecture: only x86_64 has one here, elsewhere `install` says it cannot enforce.

Denied calls fail with EPERM (never kill: the probe must live to say what was blocked):
execve/execveat always; fork/vfork/clone without CLONE_THREAD unless `allow_fork` (threads stay
allowed: torch's thread pool); clone3 gets ENOSYS, so the C library falls back to clone, whose
flags the filter can read; ptrace and process_vm_*; signals to any process but this one; sockets
other than AF_UNIX, and connect/bind/listen/accept/sendmsg and addressed sendto; io_uring (it can
perform calls seccomp never sees), mount, namespaces, bpf, module loading. Without Landlock
(`files=True`) it also refuses creating, truncating, renaming, linking and deleting files and
write-only opens (an O_RDWR open stays allowed: GPU device files need it).
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
import sys

from shapelens.probe.worker import landlock

AUDIT_ARCH_X86_64 = 0xC000003E
X32_BIT = 0x40000000
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1
SYS_SECCOMP = 317
CLONE_THREAD = 0x10000
AF_UNIX = 1
O_WRITE_INTENT = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND

# x86_64 syscall numbers.
NR = {
    "open": 2, "socket": 41, "connect": 42, "accept": 43, "sendto": 44, "sendmsg": 46, "bind": 49, "listen": 50,
    "clone": 56, "fork": 57, "vfork": 58, "execve": 59, "kill": 62, "truncate": 76, "rename": 82, "mkdir": 83,
    "rmdir": 84, "creat": 85, "link": 86, "unlink": 87, "symlink": 88, "chmod": 90, "chown": 92, "lchown": 94,
    "ptrace": 101, "rt_sigqueueinfo": 129, "mknod": 133, "pivot_root": 155, "chroot": 161, "mount": 165,
    "umount2": 166, "init_module": 175, "delete_module": 176, "tkill": 200, "tgkill": 234, "openat": 257,
    "mkdirat": 258, "mknodat": 259, "fchownat": 260, "unlinkat": 263, "renameat": 264, "linkat": 265,
    "symlinkat": 266, "fchmodat": 268, "unshare": 272, "accept4": 288, "rt_tgsigqueueinfo": 297,
    "sendmmsg": 307, "setns": 308, "process_vm_readv": 310, "process_vm_writev": 311, "finit_module": 313,
    "renameat2": 316, "bpf": 321, "execveat": 322, "pidfd_send_signal": 424, "io_uring_setup": 425,
    "clone3": 435, "openat2": 437,
}
ALWAYS_DENIED = ("execve", "execveat", "ptrace", "process_vm_readv", "process_vm_writev", "tkill",
                 "pidfd_send_signal", "connect", "bind", "listen", "accept", "accept4", "sendmsg", "sendmmsg",
                 "io_uring_setup", "mount", "umount2", "pivot_root", "chroot", "setns", "unshare", "bpf",
                 "init_module", "finit_module", "delete_module")
FILE_CHANGES = ("creat", "truncate", "rename", "renameat", "renameat2", "mkdir", "mkdirat", "rmdir", "link",
                "linkat", "symlink", "symlinkat", "unlink", "unlinkat", "mknod", "mknodat", "chmod", "fchmodat",
                "chown", "lchown", "fchownat")


def _stmt(code: int, k: int) -> bytes:
    return struct.pack("HBBI", code, 0, 0, k & 0xFFFFFFFF)


def _jump(code: int, k: int, jt: int, jf: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k & 0xFFFFFFFF)


LD_W_ABS = 0x20
JEQ_K = 0x15
JGE_K = 0x35
JSET_K = 0x45
RET_K = 0x06


def _arg_low(i: int) -> bytes:
    return _stmt(LD_W_ABS, 16 + 8 * i)


def _arg_high(i: int) -> bytes:
    return _stmt(LD_W_ABS, 16 + 8 * i + 4)


def _errno(code: int = errno.EPERM) -> bytes:
    return _stmt(RET_K, RET_ERRNO | code)


ALLOW = _stmt(RET_K, RET_ALLOW)


def program(pid: int, allow_fork: bool, files: bool) -> list[bytes]:
    """The filter's instructions. Each rule is `if nr == X: <body ending in a return>`, so a
    rule that does not match leaves the syscall number in the accumulator for the next."""
    rules: list[tuple[str, list[bytes]]] = []
    for name in ALWAYS_DENIED:
        rules.append((name, [_errno()]))
    rules.append(("clone3", [_errno(errno.ENOSYS)]))
    rules.append(("clone", [_arg_low(0), _jump(JSET_K, CLONE_THREAD, 1 if not allow_fork else 0, 0)]
                  + ([ALLOW] if allow_fork else [_errno(), ALLOW])))
    for name in ("fork", "vfork"):
        rules.append((name, [ALLOW if allow_fork else _errno()]))
    own_pid = [_arg_low(0), _jump(JEQ_K, pid, 0, 1), ALLOW, _errno()]  # kill(pid) etc. to itself only
    for name in ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"):
        rules.append((name, own_pid))
    rules.append(("socket", [_arg_low(0), _jump(JEQ_K, AF_UNIX, 0, 1), ALLOW, _errno()]))
    # send() is sendto() with no address: allowed; an address (arg 4) is a new destination.
    rules.append(("sendto", [_arg_low(4), _jump(JEQ_K, 0, 0, 3), _arg_high(4), _jump(JEQ_K, 0, 0, 1), ALLOW,
                             _errno()]))
    if files:
        for name in FILE_CHANGES:
            rules.append((name, [_errno()]))
        for name, flags_arg in (("open", 1), ("openat", 2)):
            rules.append((name, [_arg_low(flags_arg), _jump(JSET_K, O_WRITE_INTENT, 0, 1), _errno(), ALLOW]))
        rules.append(("openat2", [_errno(errno.ENOSYS)]))  # its flags sit behind a pointer; openat is used
    prog = [_stmt(LD_W_ABS, 4), _jump(JEQ_K, AUDIT_ARCH_X86_64, 1, 0), _errno(),  # another ABI: refused
            _stmt(LD_W_ABS, 0), _jump(JGE_K, X32_BIT, 0, 1), _errno()]
    for name, body in rules:
        assert len(body) < 256
        prog.append(_jump(JEQ_K, NR[name], 0, len(body)))
        prog.extend(body)
    prog.append(ALLOW)
    return prog


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def supported() -> str | None:
    """Why this machine cannot have the filter, or None."""
    if not sys.platform.startswith("linux"):
        return "seccomp is Linux-only"
    if platform.machine() not in ("x86_64", "AMD64"):
        return f"no seccomp syscall table for {platform.machine()}"
    return None


def install(allow_fork: bool, files: bool) -> str | None:
    """Filter this process (and every thread and child it makes from now on). Returns why it
    could not, or None. Cannot be undone: that is the point."""
    why = supported()
    if why:
        return why
    libc = landlock.libc()
    code = b"".join(program(os.getpid(), allow_fork, files))
    buf = ctypes.create_string_buffer(code, len(code))
    prog = _SockFprog(len(code) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if not landlock.no_new_privs():
        return f"prctl(NO_NEW_PRIVS) failed: {os.strerror(ctypes.get_errno())}"
    if libc.syscall(SYS_SECCOMP, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, ctypes.byref(prog)) != 0:
        return f"seccomp failed: {os.strerror(ctypes.get_errno())}"
    return None
