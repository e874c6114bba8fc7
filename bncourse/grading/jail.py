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
    "JAIL_BUILD",
    "JAIL_GID",
    "JAIL_ROOT",
    "JAIL_UID",
    "GradingJail",
    "JailLimits",
    "JailResult",
    "JailSpec",
    "bwrap_path",
    "jail_command",
    "pids_cgroup",
    "remove_cgroup",
    "run_in_jail",
    "set_limits",
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
    extra_files: tuple[Path, ...] = ()
    """Single files mounted read-only at their own path (tests register toy exercises so)."""


@dataclass(frozen=True)
class GradingJail:
    """How ``bncourse grade`` confines submissions.

    Attributes:
        student_build: a folder holding the student build's ``bncourse/`` (no answers, no
            expected outputs: :func:`bncourse.authoring.student_package.package_files`).
        limits: the limits of each job's jail (the warm fork server and everything in it).
        tmp_bytes / out_bytes / shm_bytes: each submission's private ``/tmp``, result folder
            and ``/dev/shm``.
        max_pids: processes per job's jail (a pids cgroup where the machine has one).
    """

    student_build: Path
    limits: JailLimits = field(default_factory=lambda: JailLimits(wall_seconds=0, cpu_seconds=0, memory_bytes=0))
    tmp_bytes: int = 256 * 2**20
    out_bytes: int = 320 * 2**20
    shm_bytes: int = 64 * 2**20
    max_pids: int = 512


JAIL_ROOT = "/opt/bncourse/"
"""Where the jail mounts the student build and the libraries (read-only)."""
JAIL_BUILD = JAIL_ROOT + "build"
"""Where the jail sees the student build (fixed, outside ``/tmp``: each submission gets a
fresh ``/tmp``, which would hide anything mounted below it)."""


def jail_library(i: int) -> str:
    """Where the jail sees ``spec.libraries[i]``."""
    return f"{JAIL_ROOT}lib{i}"


def jail_extra_file(i: int, file: Path) -> str:
    """Where the jail sees ``spec.extra_files[i]``."""
    return f"{JAIL_ROOT}extra{i}/{file.name}"


def _ro_binds(spec: JailSpec) -> list[Path]:
    """Read-only mounts at their own path: the interpreter's installation and prefixes."""
    wanted = [Path(sys.base_prefix), Path(sys.prefix)]
    seen: list[Path] = []
    for p in (Path(os.path.realpath(w)) for w in wanted):
        if p.exists() and not any(p == s or s in p.parents for s in seen):
            seen = [s for s in seen if p not in s.parents] + [p]
    return seen


def _masks(spec: JailSpec, prefixes: Sequence[Path]) -> list[str]:
    """Empty read-only folders over any *installed* ``bncourse`` the jail would see (a
    non-editable instructor install holds the answers): in each library folder, at its jail
    path and its own, and in the site-packages of the mounted Python installations (``prefixes``,
    :func:`_ro_binds`)."""
    targets: list[str] = []
    for i, lib in enumerate(spec.libraries):
        if (lib / "bncourse").is_dir():
            targets.append(f"{jail_library(i)}/bncourse")
    for prefix in prefixes:
        for copy in sorted(prefix.glob("lib/python3*/site-packages/bncourse")):
            if copy.is_dir():
                targets.append(str(copy))
    args: list[str] = []
    for target in dict.fromkeys(targets):
        args += ["--perms", "0555", "--tmpfs", target, "--remount-ro", target]
    return args


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
        "--ro-bind-try", "/etc/fonts", "/etc/fonts",
        "--proc", "/proc", "--dev", "/dev",
        "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp",
        "--bind", str(spec.out), "/out",
        "--chdir", "/tmp", "--clearenv",
    ]
    prefixes = _ro_binds(spec)
    for path in prefixes:
        cmd += ["--ro-bind", str(path), str(path)]
    cmd += ["--ro-bind", str(spec.student_build), JAIL_BUILD]
    for i, lib in enumerate(spec.libraries):
        cmd += ["--ro-bind", str(lib), jail_library(i)]
    cmd += _masks(spec, prefixes)
    for i, file in enumerate(spec.extra_files):
        cmd += ["--ro-bind", str(file), jail_extra_file(i, file)]
    cmd += ["--remount-ro", "/"]  # the root (bwrap's own tmpfs) too: only /tmp and /out are writable
    pythonpath = os.pathsep.join([JAIL_BUILD, *(jail_library(i) for i in range(len(spec.libraries)))])
    variables = {"PATH": "/usr/bin", "HOME": "/tmp", "PYTHONPATH": pythonpath, "MPLCONFIGDIR": "/tmp/mpl",
                 "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    for key, value in variables.items():
        cmd += ["--setenv", key, value]
    program = list(argv)
    if program and program[0] == "python":
        # the interpreter's folder as mounted (a venv reached through a symlinked folder is
        # mounted at its real path)
        python = Path(os.path.realpath(spec.python.parent)) / spec.python.name
        program = [str(python), "-S", *program[1:]]
    return [*cmd, "--", *program]


@dataclass
class JailResult:
    """How a jailed run ended (what it printed is for diagnostics, never trusted)."""

    returncode: int | None
    stdout: bytes
    stderr: bytes
    seconds: float
    timed_out: bool


def set_limits(limits: JailLimits, cgroup: Path | None = None) -> None:  # pragma: no cover - before exec
    """In the child before it execs ``bwrap``: a new session, the pids cgroup, the rlimits
    (a zero CPU or memory limit means none: a job's long-lived fork server has none, each
    submission sets its own)."""
    os.setsid()
    if cgroup is not None:
        with open(cgroup / "cgroup.procs", "w") as f:
            f.write(str(os.getpid()))
    for which, value in ((resource.RLIMIT_CPU, limits.cpu_seconds), (resource.RLIMIT_AS, limits.memory_bytes),
                         (resource.RLIMIT_FSIZE, limits.file_bytes), (resource.RLIMIT_NPROC, limits.processes),
                         (resource.RLIMIT_CORE, 0)):
        if value or which == resource.RLIMIT_CORE:
            resource.setrlimit(which, (value, value))


_CGROUP_ROOTS = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup"))


def pids_cgroup(name: str, max_pids: int) -> Path | None:
    """A new pids cgroup allowing ``max_pids`` processes, or None where there is none to make.

    The jail's ``nobody`` is the grader's own user seen from outside, so when the grader
    runs as root ``RLIMIT_NPROC`` does not bind (the kernel exempts root): the cgroup is
    what stops a fork bomb.  cgroup v1 (``/sys/fs/cgroup/pids``) or v2 with the ``pids``
    controller enabled.
    """
    for root in _CGROUP_ROOTS:
        if not (root / "cgroup.procs").exists():
            continue
        if root.name != "pids":
            try:
                if "pids" not in (root / "cgroup.subtree_control").read_text().split():
                    continue
            except OSError:
                continue
        _remove_stale(root)
        path = root / name
        try:
            path.mkdir()
            (path / "pids.max").write_text(str(max_pids))
            return path
        except OSError:
            with contextlib.suppress(OSError):
                path.rmdir()
    return None


def _remove_stale(root: Path) -> None:
    """Remove the cgroups of grader runs that were killed (their process is gone)."""
    for stale in root.glob("bncourse-grade-*"):
        pid = stale.name.split("-")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            with contextlib.suppress(OSError):
                stale.rmdir()


def remove_cgroup(path: Path | None) -> None:
    """Remove a cgroup made by :func:`pids_cgroup` once its processes are gone."""
    if path is None:
        return
    for _ in range(50):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)


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
                            preexec_fn=lambda: set_limits(limits), close_fds=True)
    timed_out = False
    try:
        out, err = proc.communicate(stdin, timeout=limits.wall_seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    return JailResult(proc.returncode, out[:max_output], err[:max_output], time.monotonic() - start, timed_out)
