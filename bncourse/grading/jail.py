"""An OS-level jail for one submission: bubblewrap, not Python, draws the boundary.

:func:`jail_command` builds a ``bwrap`` command line that runs a program

- as ``nobody`` (uid/gid 65534) in a new user namespace, with every other namespace new
  too (PID: ending the jail's init ends everything it started; network: no interface but
  a loopback of its own; mount, IPC, UTS, cgroup), ``no_new_privs``, all capabilities
  dropped, in a new session (no terminal to inject into), dying with its parent;
- seeing, read-only, only the system libraries (``/usr``), the Python installation, the
  third-party libraries (numpy, torch, ...) and the *student build* of the package (no
  answers: :mod:`bncourse.authoring.student_package`) — not the course repository, not
  other submissions, not the grader's outputs, not the grader's state;
- writing only to a size-capped private ``/tmp`` (tmpfs) and to its own result folder
  ``/out`` (a fresh host folder per submission, read back by the grader defensively);
- under rlimits (CPU seconds, address space, file size, processes) set before ``bwrap``
  execs, and a wall-clock limit after which the whole process group is killed.

:func:`run_in_jail` runs one such command.  The grader never trusts anything but the
result folder's files it parses itself.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bncourse.errors import BNCourseError

__all__ = [
    "JAIL_GID",
    "JAIL_UID",
    "JailLimits",
    "JailResult",
    "JailSpec",
    "bwrap_path",
    "jail_command",
    "run_in_jail",
]

JAIL_UID = JAIL_GID = 65534
"""``nobody``: the jail's user, with no rights on anything outside it."""


def bwrap_path() -> str | None:
    """The ``bwrap`` executable (Debian package ``bubblewrap``), or None if it is not installed."""
    return shutil.which("bwrap")


@dataclass(frozen=True)
class JailLimits:
    """Resource limits of one jail.

    Attributes:
        wall_seconds: killed (with everything it started) after this long.
        cpu_seconds: RLIMIT_CPU.
        memory_bytes: RLIMIT_AS (address space; torch reserves a lot of it: keep it generous).
        file_bytes: RLIMIT_FSIZE, the largest file it may write.
        processes: RLIMIT_NPROC for the jail's uid.
        tmp_bytes: the size of its private ``/tmp``.
    """

    wall_seconds: float = 60.0
    cpu_seconds: int = 60
    memory_bytes: int = 8 * 2**30
    file_bytes: int = 64 * 2**20
    processes: int = 256
    tmp_bytes: int = 256 * 2**20


@dataclass(frozen=True)
class JailSpec:
    """What the jail sees.

    Attributes:
        student_build: a folder holding the student build's ``bncourse/`` package.
        out: the jail's result folder on the host (created empty for each submission),
            mounted read-write at ``/out``.
        libraries: read-only folders holding the third-party packages (site-packages).
        python: the interpreter to run (its installation is mounted read-only).
    """

    student_build: Path
    out: Path
    libraries: tuple[Path, ...] = field(default_factory=lambda: (Path(sysconfig.get_paths()["purelib"]),))
    python: Path = field(default_factory=lambda: Path(sys.executable))


def _ro_binds(spec: JailSpec) -> list[Path]:
    """Read-only mounts: the interpreter's installation and prefixes, the libraries, the build."""
    wanted = [Path(sys.base_prefix), Path(sys.prefix), *spec.libraries, spec.student_build]
    seen: list[Path] = []
    for p in (Path(os.path.realpath(w)) for w in wanted):
        if p.exists() and not any(p == s or s in p.parents for s in seen):
            seen = [s for s in seen if p not in s.parents] + [p]
    return seen


def jail_command(spec: JailSpec, argv: Sequence[str], limits: JailLimits = JailLimits(),
                 env: Mapping[str, str] | None = None) -> list[str]:
    """The ``bwrap`` command line that runs ``argv`` in the jail described by ``spec``.

    ``argv[0]`` may be ``"python"``: it becomes ``spec.python`` run with ``-S`` (no site
    processing, so no ``.pth`` file of the host's environment runs) and with
    ``PYTHONPATH`` = the student build, then the libraries.

    Raises:
        BNCourseError: bubblewrap is not installed (naming the package to install).
    """
    bwrap = bwrap_path()
    if bwrap is None:
        raise BNCourseError("bubblewrap is not installed: `apt-get install bubblewrap` (the grader's jail)")
    cmd = [
        bwrap, "--unshare-all", "--die-with-parent", "--new-session",
        "--uid", str(JAIL_UID), "--gid", str(JAIL_GID), "--cap-drop", "ALL",
        "--ro-bind", "/usr", "/usr",
        "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
        "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/sbin", "/sbin",
        "--proc", "/proc", "--dev", "/dev",
        "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp",
        "--bind", str(spec.out), "/out",
        "--chdir", "/tmp", "--clearenv",
    ]
    for path in _ro_binds(spec):
        cmd += ["--ro-bind", str(path), str(path)]
    cmd += ["--remount-ro", "/"]  # the root (bwrap's own tmpfs) too: only /tmp and /out are writable
    pythonpath = os.pathsep.join(str(p) for p in (spec.student_build, *spec.libraries))
    variables = {"PATH": "/usr/bin", "HOME": "/tmp", "PYTHONPATH": pythonpath, "MPLCONFIGDIR": "/tmp/mpl",
                 "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    for key, value in variables.items():
        cmd += ["--setenv", key, value]
    program = list(argv)
    if program and program[0] == "python":
        program = [str(spec.python), "-S", *program[1:]]
    return [*cmd, "--", *program]


@dataclass
class JailResult:
    """How a jailed run ended (what it printed is for diagnostics, never trusted)."""

    returncode: int | None
    stdout: bytes
    stderr: bytes
    seconds: float
    timed_out: bool


def _set_limits(limits: JailLimits) -> None:  # pragma: no cover - runs in the child before exec
    os.setsid()
    for which, value in ((resource.RLIMIT_CPU, limits.cpu_seconds), (resource.RLIMIT_AS, limits.memory_bytes),
                         (resource.RLIMIT_FSIZE, limits.file_bytes), (resource.RLIMIT_NPROC, limits.processes)):
        resource.setrlimit(which, (value, value))


def run_in_jail(spec: JailSpec, argv: Sequence[str], *, stdin: bytes = b"", limits: JailLimits = JailLimits(),
                env: Mapping[str, str] | None = None, max_output: int = 1 << 20) -> JailResult:
    """Run ``argv`` in the jail; kill its whole process group at the wall-clock limit.

    ``spec.out`` is created (empty) if missing.  stdout and stderr are cut to
    ``max_output`` bytes each.
    """
    spec.out.mkdir(parents=True, exist_ok=True)
    os.chmod(spec.out, 0o777)  # nobody in the jail writes its results here; only this folder
    cmd = jail_command(spec, argv, limits, env)
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: _set_limits(limits), close_fds=True)
    timed_out = False
    try:
        out, err = proc.communicate(stdin, timeout=limits.wall_seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    return JailResult(proc.returncode, out[:max_output], err[:max_output], time.monotonic() - start, timed_out)
