"""One submission's own corner of the grader's jail (this module runs *inside* the jail).

The grader starts one bubblewrap jail per job (:mod:`bncourse.grading.jail`) holding a warm
fork server.  For each submission the server forks a child that, before any student code
exists in it, calls :func:`private_namespaces` and the mount helpers here, then forks the
process that runs the submission as the first process of a new PID namespace, and that
process calls :func:`lock_down`.  So two submissions never share:

* a **filesystem view**: a fresh size-capped ``tmpfs`` on ``/tmp``, ``/dev/shm`` and
  ``/out`` (its results), ``/dev`` read-only, ``/proc`` hidden under an empty read-only
  ``tmpfs``; everything else is the jail's read-only view (Python, the libraries, the
  student build of the package);
* a **process namespace**: its own PID namespace (when its first process ends, the kernel
  ends every process it started) and its own user, network, IPC and UTS namespaces;
* **capabilities**: none after :func:`lock_down` (so no mount can be undone), no new
  privileges, and a seccomp filter (x86-64) refusing the system calls a NumPy exercise
  never needs: tracing, other processes' memory, mounting, new namespaces, kernel keyrings,
  BPF, io_uring, and sockets other than ``AF_UNIX``.

The calls go to the C library through :mod:`ctypes` (Python 3.11 has no ``os.unshare``).
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct

__all__ = [
    "SECCOMP_DENIED",
    "hide",
    "lock_down",
    "mount_tmpfs",
    "new_pid_namespace",
    "private_namespaces",
    "remount_read_only",
    "seccomp_available",
]

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
_NEW_NAMESPACES = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | 0x02000000

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 32, 4096, 1024, 2048, 1 << 21
MS_REC, MS_PRIVATE = 0x4000, 1 << 18
_ST_RELATIME = 4096

PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_SET_SECCOMP = 38, 24, 22
SECCOMP_MODE_FILTER = 2

_libc = ctypes.CDLL(None, use_errno=True)


def _call(what: str, result: int) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def private_namespaces() -> None:
    """Move this process into new user, mount, network, IPC and UTS namespaces.

    Its uid and gid stay what they were (mapped one to one), it holds every capability in
    the new user namespace until :func:`lock_down`, and mounts made from now on are private.
    """
    uid, gid = os.getuid(), os.getgid()
    _call("unshare", _libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS))
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)
    _call("mount / private", _libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None))


def mount_tmpfs(target: str, size_bytes: int, *, mode: int = 0o700, read_only: bool = False,
                executable: bool = True) -> None:
    """A fresh ``tmpfs`` of at most ``size_bytes`` on ``target`` (hiding what was there).

    ``executable=False``: nothing in it can be run or mapped as code (``noexec``).
    """
    flags = MS_NOSUID | MS_NODEV | (MS_RDONLY if read_only else 0) | (0 if executable and not read_only else MS_NOEXEC)
    data = f"size={int(size_bytes)},mode={mode:o}".encode()
    _call(f"mount tmpfs on {target}", _libc.mount(b"tmpfs", target.encode(), b"tmpfs", flags, data))


def remount_read_only(target: str) -> None:
    """Make the mount at ``target`` read-only (keeping the flags a less privileged namespace
    may not change: nosuid, nodev, noexec and the atime ones)."""
    kept = os.statvfs(target).f_flag
    flags = (MS_REMOUNT | MS_BIND | MS_RDONLY | (kept & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME))
             | (MS_RELATIME if kept & _ST_RELATIME else 0))
    _call(f"remount {target} read-only", _libc.mount(None, target.encode(), None, flags, None))


def hide(target: str) -> None:
    """Cover ``target`` with an empty, read-only ``tmpfs`` (e.g. the jail's ``/proc``)."""
    mount_tmpfs(target, 4096, mode=0o555, read_only=True)


def new_pid_namespace() -> None:
    """The next child this process forks is the first process of a new PID namespace."""
    _call("unshare(CLONE_NEWPID)", _libc.unshare(CLONE_NEWPID))


# --- lock down: no capabilities, no new privileges, seccomp ---------------------------------

SECCOMP_DENIED = {
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "pidfd_getfd": 438,
    "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "move_mount": 429, "open_tree": 428,
    "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
    "unshare": 272, "setns": 308, "keyctl": 250, "add_key": 248, "request_key": 249, "bpf": 321,
    "perf_event_open": 298, "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "kexec_load": 246, "kexec_file_load": 320, "init_module": 175,
    "finit_module": 313, "delete_module": 176, "reboot": 169, "swapon": 167, "swapoff": 168, "acct": 163,
    "open_by_handle_at": 304, "name_to_handle_at": 303, "personality": 135, "syslog": 103,
    "quotactl": 179, "settimeofday": 164, "clock_settime": 227, "adjtimex": 159, "iopl": 172,
    "ioperm": 173, "vhangup": 153, "sethostname": 170, "setdomainname": 171, "lookup_dcookie": 212,
}
"""x86-64 system calls the filter refuses with ``EPERM`` (numbers from ``asm/unistd_64.h``)."""

_SYS_CLONE, _SYS_CLONE3, _SYS_SOCKET, _SYS_CAPSET = 56, 435, 41, 126
_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_BIT = 0x40000000
_RET_ALLOW, _RET_KILL = 0x7FFF0000, 0x80000000


def _ret_errno(code: int) -> int:
    return 0x00050000 | code


def _filter() -> list[tuple[int, int, int, int]]:
    """The classic-BPF program: ``(code, jump if true, jump if false, k)`` instructions."""
    ld_abs, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    prog = [
        (ld_abs, 0, 0, 4),                          # arch
        (jeq, 1, 0, _AUDIT_ARCH_X86_64),
        (ret, 0, 0, _RET_KILL),
        (ld_abs, 0, 0, 0),                          # syscall number
        (jge, 0, 1, _X32_BIT),
        (ret, 0, 0, _ret_errno(errno.EPERM)),
    ]
    for nr in sorted(SECCOMP_DENIED.values()):
        prog += [(jeq, 0, 1, nr), (ret, 0, 0, _ret_errno(errno.EPERM))]
    prog += [(jeq, 0, 1, _SYS_CLONE3), (ret, 0, 0, _ret_errno(errno.ENOSYS))]  # glibc falls back to clone
    prog += [  # clone: no new namespaces
        (jeq, 0, 3, _SYS_CLONE),
        (ld_abs, 0, 0, 16),                         # args[0], low 32 bits (little endian)
        (jset, 0, 1, _NEW_NAMESPACES),
        (ret, 0, 0, _ret_errno(errno.EPERM)),
    ]
    prog += [  # socket: AF_UNIX only (the network namespace has no way out anyway)
        (ld_abs, 0, 0, 0),
        (jeq, 0, 3, _SYS_SOCKET),
        (ld_abs, 0, 0, 16),
        (jeq, 1, 0, 1),                             # AF_UNIX
        (ret, 0, 0, _ret_errno(errno.EAFNOSUPPORT)),
    ]
    prog.append((ret, 0, 0, _RET_ALLOW))
    return prog


def seccomp_available() -> bool:
    """Is there a filter for this machine (x86-64 Linux)?"""
    return platform.system() == "Linux" and platform.machine() in ("x86_64", "AMD64")


def _install_seccomp() -> None:
    program = _filter()
    raw = b"".join(struct.pack("=HBBI", *insn) for insn in program)
    buffer = ctypes.create_string_buffer(raw, len(raw))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(program), ctypes.addressof(buffer))
    _call("seccomp", _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0))


def _drop_capabilities() -> None:
    for cap in range(64):  # the bounding set (so no exec can give them back)
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == errno.EINVAL:
            break
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()                 # effective, permitted, inheritable: all empty
    _call("capset", _libc.capset(header, data))


def lock_down() -> None:
    """No capabilities, no new privileges and (x86-64) the seccomp filter, for good."""
    _drop_capabilities()
    _call("no_new_privs", _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
    if seccomp_available():
        _install_seccomp()
