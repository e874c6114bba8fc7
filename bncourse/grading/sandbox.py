"""Run one submission's code in a confined worker and bring back only data.

Three parts live here:

* :func:`run_submission` (grading process): builds the request (the cells, the exercises,
  the limits) and runs it, in the OS jail when it is given a jailed :class:`ForkServer`
  (what ``bncourse grade`` does), else (``--no-jail``, tests) in a Python-level sandbox: a
  subprocess of the grader's user with a temporary directory, a scrubbed environment, its
  own session and an audit hook.  Either way it reads back the result files as **untrusted
  data**: ``.npz`` headers checked before loading, ``allow_pickle=False``, sizes capped,
  every field type-checked.  Nothing the student prints is parsed.
* :class:`ForkServer` / :func:`server_main`: a warm process that has imported numpy,
  matplotlib, torch and the course modules an imports cell names, and forks one worker per
  submission, so a class costs one interpreter start-up per job.  Jailed, the server runs in
  bubblewrap (:mod:`bncourse.grading.jail`) and its child for a submission,
  :func:`_jailed_submission`, gives it namespaces of its own (:mod:`bncourse.grading.confine`)
  and copies its results out to the host folder only the server's child holds.
* :func:`worker_main` (the submission's process): sets CPU, address-space and file-size
  limits, installs the audit hook (it names attempts to read the course, write elsewhere,
  start processes, use ctypes or sockets in the feedback: a diagnostic, not the boundary),
  runs the ``imports`` cell and the ``exercise`` cells in a fresh namespace (the
  experiments never run), then runs each exercise's cases through
  :func:`bncourse.grading.runner.run_cases` and writes one result file per exercise as
  soon as it is done, so a later crash or timeout keeps the earlier results.

The worker's verdicts are never trusted: it sends outputs, and the grading process
regenerates the cases and compares them with its own reference
(:func:`bncourse.grading.evaluate.evaluate`).  Patching numpy or ``bncourse.grading``
inside the worker can only break the worker's own outputs.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import math
import os
import re
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bncourse.grading.jail import (
    GradingJail,
    JailSpec,
    jail_command,
    jail_extra_file,
    pids_cgroup,
    remove_cgroup,
    set_limits,
)
from bncourse.grading.runner import RawCase
from bncourse.notebook_file import parse_code, read_upload

__all__ = [
    "CellSource", "ForkServer", "SandboxOutcome", "copy_out", "kill_process_group", "preload_modules", "preloadable",
    "remove_tree", "result_names", "run_submission", "server_main", "worker_main",
]

PACKAGE_DIR = Path(__file__).resolve().parent.parent
"""The ``bncourse`` package directory (the worker may not read its sources)."""

MAX_RESULT_BYTES = 64 * 2**20
"""Largest result file the grader reads; also the worker's RLIMIT_FSIZE."""
MAX_ARRAY_ELEMENTS = 10**7
MAX_TEXT = 4000
MAX_CASES = 200
KINDS = {None, "not_implemented", "contract", "exception", "forbidden", "timeout"}
STATUSES = {"ok", "missing", "timeout", "error", "not_own"}

_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv[2]); "
    "from bncourse.grading.sandbox import worker_main; worker_main(sys.argv[1])"
)


@dataclass(frozen=True)
class CellSource:
    """One notebook cell to run: ``kind`` is ``"imports"`` or ``"exercise"``.

    ``forbidden``: modules the cell may not import (the exercise's ``forbidden``).
    """

    index: int
    kind: str
    source: str
    forbidden: tuple[str, ...] = ()


@dataclass
class SandboxOutcome:
    """What came back from one sandboxed run (all of it validated data)."""

    raws: dict[str, list[RawCase]] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    dependencies: dict[str, list[str]] = field(default_factory=dict)
    cell_errors: list[dict[str, Any]] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    exit_code: int | None = None
    timed_out: bool = False
    forked: bool = False
    seconds: float = 0.0
    stderr_tail: str = ""


# --------------------------------------------------------------------------------------
# grading-process half
# --------------------------------------------------------------------------------------


def _mpl_config_dir(home: Path) -> str:
    """The grader's matplotlib config dir (its font cache is reused read-only), else a fresh one."""
    configured = os.environ.get("MPLCONFIGDIR")
    if configured and Path(configured).is_dir():
        return configured
    default = Path.home() / ".config" / "matplotlib"
    return str(default) if default.is_dir() else str(home / "mpl")


def _scrubbed_env(home: Path) -> dict[str, str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": _mpl_config_dir(home),
        "PYTHONHASHSEED": "0",
    }
    return env


def kill_process_group(pgid: int) -> None:
    """SIGKILL every process in the group ``pgid`` (ignores a group that is gone)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _text(value: Any, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value if len(value) <= limit else value[:limit] + " …"


def _check_npz_headers(path: Path) -> None:
    """Refuse a result file whose arrays would be large *before* NumPy allocates them.

    Reads each member's ``.npy`` header (dtype and shape) and its sizes in the zip
    directory: an array that declares more than :data:`MAX_ARRAY_ELEMENTS` elements, a
    member that would inflate beyond :data:`MAX_RESULT_BYTES`, or a header that does not
    match the member's size is refused (``np.load`` trusts the header and allocates first).
    """
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > 10_000 or sum(i.file_size for i in infos) > MAX_RESULT_BYTES:
                raise ValueError("result file inflates too large")
            for info in infos:
                with zf.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                    else:
                        raise ValueError("unsupported array format")
                    n = 1
                    for d in shape:
                        n *= int(d)
                    if dtype.hasobject or n > MAX_ARRAY_ELEMENTS or n * dtype.itemsize > info.file_size:
                        raise ValueError(f"unacceptable array {info.filename!r} ({dtype}, shape {shape})")
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"unreadable result file ({type(exc).__name__})") from exc


def _load_npz(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Meta (JSON) and arrays of a worker's result file, validated; raises ValueError."""
    if path.is_symlink() or not path.is_file():
        raise ValueError("no result file")
    if path.stat().st_size > MAX_RESULT_BYTES:
        raise ValueError("result file too large")
    arrays: dict[str, np.ndarray] = {}
    _check_npz_headers(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            names = list(data.files)
            if "__meta__" not in names or len(names) > 10_000:
                raise ValueError("malformed result file")
            meta_bytes = data["__meta__"]
            if meta_bytes.dtype != np.uint8 or meta_bytes.ndim != 1 or meta_bytes.size > 4 * 2**20:
                raise ValueError("malformed result metadata")
            meta = json.loads(meta_bytes.tobytes().decode("utf-8"))
            for name in names:
                if name == "__meta__":
                    continue
                arr = data[name]
                if arr.dtype.kind not in "biuf" or arr.size > MAX_ARRAY_ELEMENTS:
                    raise ValueError(f"unacceptable array {name!r} ({arr.dtype}, {arr.size} elements)")
                arrays[name] = arr
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError, EOFError, RecursionError) as exc:
        raise ValueError(f"unreadable result file ({type(exc).__name__})") from exc
    if not isinstance(meta, dict):
        raise ValueError("malformed result metadata")
    return meta, arrays


def _raw_from(entry: Any, arrays: Mapping[str, np.ndarray]) -> RawCase:
    if not isinstance(entry, dict):
        raise ValueError("malformed case")
    raw = RawCase(case=_text(entry["case"], 200))
    outputs = entry.get("outputs", {})
    bad = entry.get("bad_outputs", {})
    if not isinstance(outputs, dict) or not isinstance(bad, dict) or len(outputs) + len(bad) > 50:
        raise ValueError("malformed outputs")
    for name, key in outputs.items():
        if not isinstance(key, str) or key not in arrays:
            raise ValueError("output refers to a missing array")
        raw.outputs[_text(name, 100)] = arrays[key]
    raw.bad_outputs = {_text(k, 100): _text(v, 200) for k, v in bad.items()}
    err = entry.get("error")
    raw.error = None if err is None else _text(err)
    kind = entry.get("error_kind")
    if kind not in KINDS:
        raise ValueError("unknown error kind")
    raw.error_kind = kind
    raw.traceback = _text(entry.get("traceback", ""))
    mutated = entry.get("mutated", [])
    if not isinstance(mutated, list) or len(mutated) > 50:
        raise ValueError("malformed mutated list")
    raw.mutated = [_text(m, 100) for m in mutated]
    seconds = entry.get("seconds", 0.0)
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise ValueError("malformed timing")
    raw.seconds = float(seconds)
    return raw


def _read_exercise_result(path: Path, exercise_id: str, outcome: SandboxOutcome) -> None:
    try:
        meta, arrays = _load_npz(path)
        if meta.get("id") != exercise_id:
            raise ValueError("result belongs to another exercise")
        status = meta.get("status")
        if status not in STATUSES:
            raise ValueError("unknown status")
        cases = meta.get("cases", [])
        if not isinstance(cases, list) or len(cases) > MAX_CASES:
            raise ValueError("malformed case list")
        deps = meta.get("dependencies", [])
        if not isinstance(deps, list):
            raise ValueError("malformed dependencies")
        outcome.raws[exercise_id] = [_raw_from(c, arrays) for c in cases]
        outcome.status[exercise_id] = status
        outcome.dependencies[exercise_id] = [_text(d, 100) for d in deps][:10]
        if meta.get("message") is not None:
            outcome.messages[exercise_id] = _text(meta["message"])
    except (ValueError, KeyError, TypeError) as exc:
        outcome.status[exercise_id] = "no_result"
        outcome.messages[exercise_id] = f"its result could not be read ({exc})"
        outcome.raws.pop(exercise_id, None)


def _read_cells(path: Path, outcome: SandboxOutcome) -> None:
    try:
        meta, _ = _load_npz(path)
        errors = meta.get("cell_errors", [])
        blocked = meta.get("blocked", [])
        if not isinstance(errors, list) or not isinstance(blocked, list):
            raise ValueError("malformed")
        for e in errors[:100]:
            if not isinstance(e, dict) or not isinstance(e.get("index"), int):
                raise ValueError("malformed cell error")
            outcome.cell_errors.append({
                "index": e["index"],
                "kind": _text(e.get("kind", ""), 20),
                "error": _text(e.get("error", "")),
                "traceback": _text(e.get("traceback", "")),
            })
        outcome.blocked = [_text(b, 300) for b in blocked[:20]]
    except (ValueError, KeyError, TypeError):
        pass


def remove_tree(path: Path) -> None:
    """Remove a folder this module created, making read-only entries inside it writable.

    Permissions are changed only on folders and files *inside* ``path`` (never on its parent,
    never through a symbolic link a submission may have planted): cleaning up must not
    touch anything it did not create.
    """
    root = os.path.realpath(path)

    def inside(p: str) -> bool:
        return not os.path.islink(p) and os.path.realpath(p).startswith(root + os.sep)

    def onerror(func: Any, p: str, exc: Any) -> None:
        for target in (os.path.dirname(p), p):
            if inside(target):
                with contextlib.suppress(OSError):
                    os.chmod(target, 0o700)
        with contextlib.suppress(OSError):
            func(p)

    shutil.rmtree(path, onerror=onerror)


def _wait_cold(tmp: Path, work: Path, env: Mapping[str, str], req_path: Path, timeout: float,
               outcome: SandboxOutcome) -> None:
    """Run the worker as a fresh ``python -I -B`` process (the slow, always-available path)."""
    with open(tmp / "stdout.txt", "wb") as out, open(tmp / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-B", "-c", _BOOTSTRAP, str(req_path), str(PACKAGE_DIR.parent)],
            cwd=work,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            close_fds=True,
            start_new_session=True,
        )
        try:
            outcome.exit_code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            outcome.timed_out = True
            kill_process_group(proc.pid)
            outcome.exit_code = proc.wait()
        finally:
            kill_process_group(proc.pid)  # grandchildren that outlived the worker


def run_submission(
    cells: Sequence[CellSource],
    exercise_ids: Sequence[str],
    *,
    timeout: float = 60.0,
    memory_bytes: int = 4 * 2**30,
    deny_read: Sequence[Path] = (),
    extra_exercise_files: Sequence[Path] = (),
    server: ForkServer | None = None,
) -> SandboxOutcome:
    """Run ``cells`` then every exercise's cases in a sandboxed subprocess; read back data.

    Args:
        cells: the imports cell and the exercise cells, in notebook order.
        exercise_ids: exercises to run (their functions are looked up by name).
        timeout: wall-clock seconds for the whole run; the worker also gets a soft budget
            per cell and per exercise so that one infinite loop costs only its exercise.
        memory_bytes: RLIMIT_AS of the worker.
        deny_read: extra paths the worker may not read (other submissions, the output).
        extra_exercise_files: Python files that register exercises (tests use this).
        server: a warm :class:`ForkServer` to fork the worker from (same sandbox, no
            interpreter start-up and no re-import of numpy/torch/matplotlib); ``None``, or a
            server that cannot deliver, means a fresh ``python -I -B`` process.
    """
    n_items = max(1, len(exercise_ids) + sum(c.kind == "exercise" for c in cells))
    request: dict[str, Any] = {
        "cells": [vars(c) | {"forbidden": list(c.forbidden)} for c in cells],
        "exercises": list(exercise_ids),
        "soft_timeout": max(0.5, 0.4 * timeout / n_items),
        "imports_timeout": 0.6 * timeout,
        "cpu_seconds": math.ceil(timeout) + 2,
        "memory_bytes": int(memory_bytes),
        "file_bytes": MAX_RESULT_BYTES,
        "extra_exercise_files": [str(Path(p).resolve()) for p in extra_exercise_files],
    }
    if server is not None and server.jail is not None:
        return _run_jailed(request, exercise_ids, timeout, server)
    tmp = Path(tempfile.mkdtemp(prefix="bncourse-grade-"))
    try:
        work, home, results = tmp / "work", tmp / "home", tmp / "results"
        for d in (work, home, home / "tmp", home / "mpl", results):
            d.mkdir()
        request |= {
            "result_dir": str(results),
            "allow_write": [str(work), str(home), str(results)],
            "deny_read": [str(PACKAGE_DIR), str(PACKAGE_DIR.parent / "notebooks"),
                          str(PACKAGE_DIR.parent / "tests")] + [str(p) for p in deny_read],
        }
        req_path = tmp / "request.json"
        req_path.write_text(json.dumps(request))
        env = _scrubbed_env(home)
        outcome = SandboxOutcome()
        start = time.perf_counter()
        outcome.forked = server is not None and server.run(req_path, work, tmp, env, timeout, outcome)
        if not outcome.forked:
            _wait_cold(tmp, work, env, req_path, timeout, outcome)
        outcome.seconds = time.perf_counter() - start
        outcome.stderr_tail = _tail(tmp / "stderr.txt")
        _read_results(results, exercise_ids, outcome)
        return outcome
    finally:
        remove_tree(tmp)


def _read_results(results: Path, exercise_ids: Sequence[str], outcome: SandboxOutcome) -> None:
    _read_cells(results / "cells.npz", outcome)
    for k, ex_id in enumerate(exercise_ids):
        path = results / f"{k}.npz"
        if path.exists():
            _read_exercise_result(path, ex_id, outcome)
        else:
            outcome.status[ex_id] = "no_result"


def _run_jailed(request: dict[str, Any], exercise_ids: Sequence[str], timeout: float,
                server: ForkServer) -> SandboxOutcome:
    """Run ``request`` in ``server``'s jail (a fresh corner of it per submission)."""
    request |= {
        "result_dir": "/out",
        "allow_write": ["/out", "/tmp"],
        "deny_read": [],
        "extra_exercise_files": server.jailed_extra_files(),
        "env": {**_scrubbed_env(Path("/tmp")), "MPLCONFIGDIR": "/tmp/mpl", "PATH": "/usr/bin"},
    }
    outcome = SandboxOutcome(forked=True)
    start = time.perf_counter()
    slot = server.run_jailed(request, timeout, outcome)
    outcome.seconds = time.perf_counter() - start
    if slot is None:
        outcome.forked = False
        for ex_id in exercise_ids:
            outcome.status[ex_id] = "no_result"
            outcome.messages[ex_id] = "the grader's jail could not run it (not the student's fault; see the log)"
        return outcome
    try:
        outcome.stderr_tail = _tail(slot / "stderr.txt") if not (slot / "stderr.txt").is_symlink() else ""
        _read_results(slot, exercise_ids, outcome)
    finally:
        remove_tree(slot)
    return outcome


# --------------------------------------------------------------------------------------
# the fork server: a warm parent for workers
# --------------------------------------------------------------------------------------

PRELOADABLE = frozenset({
    "numpy", "matplotlib", "matplotlib.pyplot", "torch", "torch.nn", "torch.nn.functional", "torch.optim",
    "sklearn", "sklearn.datasets", "scipy", "scipy.linalg", "scipy.stats",
})
"""Library modules a fork server may import before any student code runs (outside the
sandbox, so only these, known to be inert on import; plus public ``bncourse`` modules)."""


def preloadable(name: str) -> bool:
    """May a fork server import ``name`` in advance?  Public course modules (of a lesson, only
    its ``experiments``) and :data:`PRELOADABLE`; never a private or ``__main__`` module (importing
    ``bncourse.__main__`` or ``numpy.f2py.__main__`` would *run* a program)."""
    parts = name.split(".")
    if not all(p.isidentifier() and not p.startswith("_") for p in parts):
        return False
    lesson_experiments = len(parts) == 4 and parts[1] == "lessons" and parts[3] == "experiments"
    return name in PRELOADABLE or (parts[0] == "bncourse" and (len(parts) <= 3 or lesson_experiments))
MAX_PRELOAD = 64
MAX_RESTARTS = 2
"""A fork server that died this often is not started again (workers start cold)."""

_JAIL_BOOTSTRAP = "from bncourse.grading.sandbox import server_main; server_main('/out/server.json')"
_SERVER_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from bncourse.grading.sandbox import server_main; server_main(sys.argv[2])"
)


def preload_modules(source: str) -> list[str]:
    """Modules an imports cell names that a :class:`ForkServer` may import in advance.

    Only names that pass :func:`preloadable` qualify (``from bncourse import ics`` gives
    ``bncourse`` and ``bncourse.lessons.l02_internal_covariate_shift.experiments``); anything else the cell imports, the sandboxed
    worker imports itself.  A cell that does not parse gives ``[]``.
    """
    try:
        tree = parse_code(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names if a.name != "*"]
    ok = [n for n in names if preloadable(n)]
    return list(dict.fromkeys(ok))[:MAX_PRELOAD]


def _read_line(fd: int, buffer: bytearray, deadline: float | None) -> bytes | None:
    """One line from ``fd`` (without the newline); ``None`` at EOF or when ``deadline`` passes."""
    while b"\n" not in buffer:
        wait = None if deadline is None else deadline - time.monotonic()
        if wait is not None and wait <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], wait)
        if not ready:
            return None
        chunk = os.read(fd, 65536)
        if not chunk:
            return None
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line


class ForkServer:
    """A warm, single-threaded parent that forks one sandboxed worker per submission.

    Starting ``python`` and importing torch and matplotlib costs seconds per submission; a
    fork costs milliseconds.  The server is a ``python -I -B`` process with the scrubbed
    environment, started in its own session, that imports ``preload`` (see
    :func:`preload_modules`), the exercise registry and its cases, then waits for requests
    on its stdin.  For each one it forks; the child starts a new session, points
    stdin/stdout/stderr at ``/dev/null`` and the submission's own files, closes every other
    descriptor, moves into the submission's working directory, takes its environment and
    then runs :func:`worker_main` exactly as a cold worker would (limits and audit hook are
    applied after the fork, in the child only).  The server reports the child's pid and,
    when it ends, its exit code; the grading process enforces the wall-clock timeout by
    killing the child's process group.  Nothing from a child reaches the server: a child
    that damages its own copy of numpy or of the grading code leaves the next child intact.

    If the server cannot start or dies, :meth:`run` returns ``False`` and the caller falls
    back to a cold worker.  Use it as a context manager (or call :meth:`close`).
    """

    def __init__(self, preload: Sequence[str] = (), extra_exercise_files: Sequence[Path] = (),
                 start_timeout: float = 180.0, jail: GradingJail | None = None) -> None:
        self.jail = jail
        self._cgroup: Path | None = None
        self._count = 0
        self.preload = [m for m in preload if preloadable(m)][:MAX_PRELOAD]
        self.extra_exercise_files = [str(Path(p).resolve()) for p in extra_exercise_files]
        self.start_timeout = start_timeout
        self.startup_seconds = 0.0
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._buffer = bytearray()
        self._dir: Path | None = None
        self._ready = False
        self._broken = False
        self._started_at = 0.0

    def __enter__(self) -> ForkServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Launch the server process (returns at once; :meth:`run` waits until it is ready)."""
        if self._proc is not None:
            return
        if self._dir is not None:  # a restart: the previous server died or was stopped
            self.restarts += 1
            remove_tree(self._dir)
        self._dir = Path(tempfile.mkdtemp(prefix="bncourse-forkserver-"))
        home = self._dir / "home"
        for d in (home, home / "tmp", home / "mpl"):
            d.mkdir()
        config = {"preload": self.preload, "extra_exercise_files": self.extra_exercise_files}
        self._started_at = time.perf_counter()
        self._buffer.clear()
        self._ready = False
        if self.jail is not None:
            self._start_jailed(config)
            return
        (self._dir / "config.json").write_text(json.dumps(config))
        with open(self._dir / "stderr.txt", "wb") as err:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-B", "-c", _SERVER_BOOTSTRAP, str(PACKAGE_DIR.parent),
                 str(self._dir / "config.json")],
                cwd=self._dir, env=_scrubbed_env(home), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=err, close_fds=True, start_new_session=True,
            )

    def _start_jailed(self, config: dict[str, Any]) -> None:
        """Start the server in a bubblewrap jail that sees only the student build (see
        :mod:`bncourse.grading.jail`); each submission gets a folder ``out/N`` of its own."""
        assert self.jail is not None and self._dir is not None
        out = self._dir / "out"
        out.mkdir(mode=0o700)
        config["jailed"] = {"tmp_bytes": self.jail.tmp_bytes, "out_bytes": self.jail.out_bytes,
                            "shm_bytes": self.jail.shm_bytes}
        config["extra_exercise_files"] = self.jailed_extra_files()
        (out / "server.json").write_text(json.dumps(config))
        spec = JailSpec(self.jail.student_build, out, extra_files=tuple(Path(f) for f in self.extra_exercise_files))
        env = {k: v for k, v in _scrubbed_env(Path("/tmp")).items() if k not in ("PATH", "HOME", "MPLCONFIGDIR")}
        cmd = jail_command(spec, ["python", "-c", _JAIL_BOOTSTRAP], self.jail.limits, env)
        remove_cgroup(self._cgroup)
        self._cgroup = pids_cgroup(f"bncourse-grade-{os.getpid()}-{id(self)}", self.jail.max_pids)
        limits, cgroup = self.jail.limits, self._cgroup
        with open(self._dir / "stderr.txt", "wb") as err:
            self._proc = subprocess.Popen(
                cmd, cwd="/", env={"PATH": "/usr/bin:/bin"}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=err, close_fds=True, preexec_fn=lambda: set_limits(limits, cgroup),
            )

    def jailed_extra_files(self) -> list[str]:
        """Where the jail sees :attr:`extra_exercise_files`."""
        return [jail_extra_file(i, Path(f)) for i, f in enumerate(self.extra_exercise_files)]

    def run_jailed(self, request: Mapping[str, Any], timeout: float, outcome: SandboxOutcome) -> Path | None:
        """Run ``request`` in a fresh corner of the jail; the host folder holding its result
        files (the caller reads, then removes it), or ``None`` if the server could not run it."""
        if not self.ready() or self._dir is None:
            return None
        if self._proc is None or self._proc.stdin is None or self._proc.stdout is None:  # pragma: no cover
            return None
        self._count += 1
        slot = self._dir / "out" / str(self._count)
        slot.mkdir(mode=0o700)
        (slot / "request.json").write_text(json.dumps(request))
        try:
            self._proc.stdin.write(json.dumps({"id": self._count, "timeout": timeout}).encode() + b"\n")
            self._proc.stdin.flush()
        except OSError:
            self._stop()
            return None
        line = _read_line(self._proc.stdout.fileno(), self._buffer, time.monotonic() + timeout + 30.0)
        if line is None or not re.fullmatch(rb"exit -?\d+", line):
            outcome.timed_out = line is None
            self._stop()  # the server is in an unknown state: the next run restarts it
            return slot
        try:
            report = json.loads(read_upload(slot / JAIL_REPORT, 4096))
            outcome.exit_code = int(report["exit"]) if isinstance(report["exit"], int) else None
            outcome.timed_out = report["timed_out"] is True
        except (OSError, ValueError, KeyError, TypeError):
            outcome.exit_code = None
        return slot

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and not self._broken

    def ready(self) -> bool:
        """Wait until the server can fork (restarting it if it died); ``False`` = unusable."""
        if self._broken:
            return False
        if self._proc is None or self._proc.poll() is not None:
            self._stop()
            if self.restarts >= MAX_RESTARTS:
                self._broken = True
                return False
            self.start()
        if self._ready:
            return True
        if self._proc is None or self._proc.stdout is None:  # pragma: no cover - start() sets both
            return False
        line = _read_line(self._proc.stdout.fileno(), self._buffer, time.monotonic() + self.start_timeout)
        if line is None or not line.startswith(b"ready"):
            self._broken = True
            self._stop()
            return False
        self._ready = True
        self.startup_seconds += time.perf_counter() - self._started_at
        return True

    def run(self, request: Path, work: Path, tmp: Path, env: Mapping[str, str], timeout: float,
            outcome: SandboxOutcome) -> bool:
        """Fork a worker for ``request``; fill ``outcome``'s exit code/time-out; ``False`` = not run."""
        if not self.ready():
            return False
        if self._proc is None or self._proc.stdin is None or self._proc.stdout is None:  # pragma: no cover
            return False
        message = {"request": str(request), "cwd": str(work), "stdout": str(tmp / "stdout.txt"),
                   "stderr": str(tmp / "stderr.txt"), "env": dict(env)}
        fd = self._proc.stdout.fileno()
        try:
            self._proc.stdin.write(json.dumps(message).encode() + b"\n")
            self._proc.stdin.flush()
        except OSError:
            self._stop()
            return False
        line = _read_line(fd, self._buffer, time.monotonic() + 30.0)
        if line is None or not re.fullmatch(rb"pid [1-9]\d*", line):
            self._stop()
            return False
        pid = int(line[4:])
        line = _read_line(fd, self._buffer, time.monotonic() + timeout)
        if line is None:
            outcome.timed_out = True
            kill_process_group(pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)  # in case it had not yet made its own session
            line = _read_line(fd, self._buffer, time.monotonic() + 30.0)
        kill_process_group(pid)  # grandchildren that outlived the worker
        if line is None or not re.fullmatch(rb"exit -?\d+", line):
            self._stop()  # the server is in an unknown state: the next run restarts it
            outcome.exit_code = None
            return True
        outcome.exit_code = int(line[5:])
        return True

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        self._ready = False
        if proc is not None:
            with contextlib.suppress(OSError):
                if proc.stdin is not None:
                    proc.stdin.close()
            kill_process_group(proc.pid)
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        remove_cgroup(self._cgroup)
        self._cgroup = None

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self._stop()
        if self._dir is not None:
            remove_tree(self._dir)
            self._dir = None


ALWAYS_PRELOADED = ("numpy", "torch", "torch.nn.functional", "bncourse.oracle.batchnorm")
"""What every fork server (and every cold worker, before its cells) imports, whatever the
imports cells say: some exercises' cases run torch stand-ins (03's gradient checker
differentiates batch norm); importing torch inside an exercise would eat its time budget."""

_WARM = {"done": False}
"""Set in a process that ran :func:`_warm_up` (a forked worker inherits it)."""


def _warm_up() -> None:  # pragma: no cover - runs in the server or a cold worker
    """Import :data:`ALWAYS_PRELOADED` and run torch's autograd once, before any student code.

    The first ``torch.autograd.grad`` of a process imports and initialises a good deal of
    torch (about 0.3 s alone, 1 s in a fresh worker); the stand-ins some cases and some
    exercises build on differentiate with it.  The fork server does it once for all its
    workers; a cold worker does it itself, outside every exercise's time budget.
    """
    import importlib

    for name in ALWAYS_PRELOADED:
        importlib.import_module(name)
    import torch

    x = torch.ones(2, 1, dtype=torch.float64, requires_grad=True)
    y = torch.nn.functional.batch_norm(x, None, None, training=True)
    torch.autograd.grad(y, x, torch.ones_like(y))
    _WARM["done"] = True


def server_main(config_path: str) -> None:  # pragma: no cover - runs in the server process
    """Entry point of the fork server (see :class:`ForkServer`).

    With ``config["jailed"]`` the server runs inside the grader's jail and each request is
    ``{"id": N, "timeout": seconds}``: the submission's folder is ``/out/N`` (its
    ``request.json`` in, its results out) and :func:`_jailed_submission` gives it namespaces
    of its own.  The only lines the server writes are ``ready`` once and ``exit CODE`` per
    request (unjailed, ``pid PID`` first).
    """
    import importlib

    with open(config_path) as f:
        config = json.load(f)
    for name in config["preload"]:
        with contextlib.suppress(BaseException):
            importlib.import_module(name)
    from bncourse.grading import registry, runner  # noqa: F401

    _load_extra_exercises(config["extra_exercise_files"])
    for ex in registry.all_exercises():
        with contextlib.suppress(Exception):
            ex.cases()
    with contextlib.suppress(Exception):
        _warm_up()
    jailed = config.get("jailed")
    if jailed:
        from bncourse.grading import confine  # noqa: F401  (imported before any submission)
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(1, b"ready\n")
    buffer = bytearray()
    while True:
        line = _read_line(0, buffer, None)
        if line is None:
            os._exit(0)
        message = json.loads(line)
        pid = os.fork()
        if pid == 0:
            if jailed:
                _jailed_submission(message, jailed)
            _forked_worker(message)
        if not jailed:
            os.write(1, f"pid {pid}\n".encode())
        _, status = os.waitpid(pid, 0)
        os.write(1, f"exit {os.waitstatus_to_exitcode(status)}\n".encode())


def _forked_worker(message: Mapping[str, Any]) -> None:  # pragma: no cover - runs in a forked child
    """The child half of a fork: become a fresh, isolated worker and run the request."""
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(message["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        err = os.open(message["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        for fd, target in ((null, 0), (out, 1), (err, 2)):
            os.dup2(fd, target)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        os.chdir(message["cwd"])
        os.environ.clear()
        os.environ.update(message["env"])
        worker_main(message["request"])
    finally:
        os._exit(70)


JAIL_REPORT = "jail.json"
"""Written into the host's folder by the trusted half of a jailed run, after the submission's
processes are gone: ``{"exit": code, "timed_out": bool, "seconds": s}``."""
OUTPUT_TAIL = 4000


def result_names(n_exercises: int) -> list[str]:
    """The files a worker writes for a notebook with ``n_exercises`` exercises: its cells' then each exercise's."""
    return ["cells.npz", *[f"{k}.npz" for k in range(n_exercises)]]


def copy_out(private: int, host: int, name: str, limit: int, *, tail: bool = False) -> None:
    """Copy ``name`` from the private result folder to the host's (regular files only, capped)."""
    try:
        src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=private)
    except OSError:
        return
    try:
        info = os.fstat(src)
        if not stat.S_ISREG(info.st_mode) or (info.st_size > limit and not tail):
            return
        if tail:
            os.lseek(src, max(0, info.st_size - limit), os.SEEK_SET)
        dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=host)
        try:
            left = limit
            while left > 0:
                chunk = os.read(src, min(left, 1 << 20))
                if not chunk:
                    break
                os.write(dst, chunk)
                left -= len(chunk)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _jailed_submission(message: Mapping[str, Any], jailed: Mapping[str, Any]) -> None:  # pragma: no cover
    """The trusted child of a jailed fork: namespaces of its own, then run, then copy out.

    Runs before any student code exists in this process: opens the host folder
    ``/out/ID`` (kept as a descriptor), reads the request, moves into new user, mount,
    network, IPC and UTS namespaces, mounts fresh size-capped ``tmpfs`` on ``/tmp``,
    ``/out`` and ``/dev/shm``, makes ``/dev`` read-only, hides ``/proc``, and forks the submission's process as the first process of a
    new PID namespace (:func:`_submission_process`).  It waits at most the request's timeout,
    then kills that process (which ends every process of the namespace), copies the result
    files that have the expected names (regular, size-capped) to the host folder and writes
    :data:`JAIL_REPORT`.  Nothing the submission can reach holds the host folder.
    """
    from bncourse.grading import confine

    code = 70
    try:
        name = str(message["id"])
        if not re.fullmatch(r"\d{1,9}", name):
            raise ValueError("bad request id")
        host = os.open(f"/out/{name}", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        req_fd = os.open("request.json", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=host)
        with open(req_fd, encoding="utf-8") as f:
            request = json.load(f)
        timeout = float(message["timeout"])
        confine.private_namespaces()
        confine.mount_tmpfs("/tmp", int(jailed["tmp_bytes"]), mode=0o700, executable=False)
        confine.mount_tmpfs("/out", int(jailed["out_bytes"]), mode=0o700, executable=False)
        confine.mount_tmpfs("/dev/shm", int(jailed["shm_bytes"]), mode=0o1777, executable=False)
        confine.remount_read_only("/dev")  # bwrap's /dev is one tmpfs for the whole jail
        private = os.open("/out", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        confine.hide("/proc")
        confine.new_pid_namespace()
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _submission_process(request)
        pidfd = os.pidfd_open(pid)
        ready, _, _ = select.select([pidfd], [], [], timeout)
        if not ready:
            os.kill(pid, signal.SIGKILL)  # the namespace's first process: every other one dies with it
        _, status = os.waitpid(pid, 0)
        seconds = time.monotonic() - start
        for result in result_names(len(request["exercises"])):
            copy_out(private, host, result, MAX_RESULT_BYTES)
        for stream in ("stdout.txt", "stderr.txt"):
            copy_out(private, host, stream, OUTPUT_TAIL, tail=True)
        report = json.dumps({"exit": os.waitstatus_to_exitcode(status), "timed_out": not ready,
                             "seconds": round(seconds, 4)}).encode()
        fd = os.open(JAIL_REPORT, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600, dir_fd=host)
        os.write(fd, report)
        os.close(fd)
        code = 0
    except BaseException as exc:
        with contextlib.suppress(BaseException):
            os.write(2, f"jailed run failed: {type(exc).__name__}: {exc}\n".encode())
    finally:
        os._exit(code)


def _submission_process(request: dict[str, Any]) -> None:  # pragma: no cover - first process of its namespace
    """Point stdio at private files, drop every descriptor and privilege, run the worker."""
    from bncourse.grading import confine

    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open("/out/stdout.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        err = os.open("/out/stderr.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        for fd, target in ((null, 0), (out, 1), (err, 2)):
            os.dup2(fd, target)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        os.chdir("/tmp")
        os.environ.clear()
        os.environ.update(request["env"])
        confine.lock_down()
        worker_main(request)
    finally:
        os._exit(70)


# --------------------------------------------------------------------------------------
# sandboxed half
# --------------------------------------------------------------------------------------


class _SoftTimeout(BaseException):
    """Raised in the worker when one cell or one exercise exceeds its time budget."""


_SPAWN_EVENTS = {
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
    "subprocess.Popen", "pty.spawn", "os.startfile",
}
_PATH_EVENTS = {
    "os.remove": (0,), "os.rmdir": (0,), "os.rename": (0, 1), "os.link": (0, 1),
    "os.symlink": (1,), "os.truncate": (0,), "os.chmod": (0,), "os.chown": (0,),
    "os.mkdir": (0,), "os.utime": (0,), "shutil.rmtree": (0,), "shutil.copyfile": (1,),
    "shutil.copytree": (1,), "shutil.move": (1,), "os.setxattr": (0,), "os.removexattr": (0,),
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


def _install_audit_hook(allow_write: Sequence[str], deny_read: Sequence[str], blocked: list[str]) -> None:
    allow = [os.path.realpath(p) for p in allow_write]
    deny = [os.path.realpath(p) for p in deny_read]
    me = os.getpid()
    busy = [False]

    def under(path: str, root: str) -> bool:
        return path == root or path.startswith(root.rstrip(os.sep) + os.sep)

    def refuse(what: str) -> None:
        if len(blocked) < 20 and what not in blocked:
            blocked.append(what)
        raise PermissionError(f"not allowed while grading: {what}")

    def resolve(p: Any) -> str | None:
        if isinstance(p, int) or p is None:
            return None
        try:
            return os.path.realpath(os.fsdecode(p))
        except (TypeError, ValueError):
            return None

    def from_import_machinery() -> bool:
        f = sys._getframe(2)
        while f is not None:
            if f.f_code.co_filename.startswith("<frozen importlib"):
                return True
            f = f.f_back  # type: ignore[assignment]
        return False

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if busy[0]:
            return
        busy[0] = True
        try:
            if event == "open":
                path = resolve(args[0])
                if path is None:
                    return
                mode = args[1] if len(args) > 1 and isinstance(args[1], str) else ""
                flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
                writing = any(c in mode for c in "wax+") or bool(flags & _WRITE_FLAGS)
                if writing and not any(under(path, a) for a in allow) and path != os.devnull:
                    refuse(f"writing {path}")
                if not writing and any(under(path, d) for d in deny) and not from_import_machinery():
                    refuse(f"reading {path}")
            elif event in _SPAWN_EVENTS:
                refuse(f"starting a process ({event})")
            elif event.startswith("ctypes."):
                if not from_import_machinery():  # torch loads its libraries with ctypes on import
                    refuse(event)
            elif event.startswith(("socket.", "resource.setrlimit", "resource.prlimit")):
                refuse(event)
            elif event in ("os.kill", "os.killpg", "signal.pthread_kill"):
                if not args or args[0] not in (me, 0):
                    refuse(f"sending a signal ({event})")
            elif event in _PATH_EVENTS:
                for i in _PATH_EVENTS[event]:
                    path = resolve(args[i]) if len(args) > i else None
                    if path is not None and not any(under(path, a) for a in allow):
                        refuse(f"{event} on {path}")
        finally:
            busy[0] = False

    sys.addaudithook(hook)


def _set_limits(req: Mapping[str, Any]) -> None:
    import resource

    for limit, value in (
        (resource.RLIMIT_CPU, int(req["cpu_seconds"])),
        (resource.RLIMIT_AS, int(req["memory_bytes"])),
        (resource.RLIMIT_FSIZE, int(req["file_bytes"])),
        (resource.RLIMIT_CORE, 0),
    ):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(limit, (value, value))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-big write fails instead of killing


def _write_result(path: Path, meta: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
    tmp = path.with_suffix(".tmp")
    payload = {"__meta__": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)}
    with open(tmp, "wb") as f:
        np.savez(f, **payload, **arrays)  # type: ignore[arg-type]
    os.replace(tmp, path)


def _load_extra_exercises(files: Sequence[str]) -> None:
    """Import each file that registers exercises (once per process)."""
    import importlib.util

    for file in files:
        name = "_bncourse_extra_exercises_" + hashlib.sha256(file.encode()).hexdigest()[:16]
        if name in sys.modules:
            continue
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is not None and spec.loader is not None:
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)


def worker_main(request: str | Mapping[str, Any]) -> None:  # pragma: no cover - runs in the subprocess
    """Entry point of the sandboxed worker (see the module docstring): ``request`` is the
    request or the path of its JSON file."""
    import builtins
    import linecache

    if isinstance(request, str):
        with open(request) as f:
            req = json.load(f)
    else:
        req = request
    _set_limits(req)
    from bncourse.grading import registry, runner

    _load_extra_exercises(req["extra_exercise_files"])
    exercises = [registry.get_exercise(ex_id) for ex_id in req["exercises"]]
    for ex in exercises:
        ex.cases()  # warm up anything lazy before the student's code runs
    if not _WARM["done"]:  # a cold worker: torch's set-up must not eat an exercise's time budget
        with contextlib.suppress(Exception):
            _warm_up()
    results = Path(req["result_dir"])
    soft = float(req["soft_timeout"])
    blocked: list[str] = []
    write_result, perf = _write_result, time.perf_counter  # taken before student code runs

    def on_alarm(signum: int, frame: Any) -> None:
        raise _SoftTimeout()

    signal.signal(signal.SIGALRM, on_alarm)
    _install_audit_hook(req["allow_write"], req["deny_read"], blocked)

    ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    cell_errors: list[dict[str, Any]] = []
    for cell in req["cells"]:
        filename = f"<cell {cell['index']}>"
        source = cell["source"]
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        forbidden = tuple(cell["forbidden"])
        try:
            code = compile(source, filename, "exec")
        except SyntaxError as exc:
            cell_errors.append({"index": cell["index"], "kind": cell["kind"],
                                "error": f"SyntaxError: {exc.msg} (line {exc.lineno})", "traceback": ""})
            continue
        except (RecursionError, MemoryError, ValueError) as exc:  # a 400 KB expression, a NUL byte
            cell_errors.append({"index": cell["index"], "kind": cell["kind"],
                                "error": f"{type(exc).__name__}: the cell cannot be compiled", "traceback": ""})
            continue
        ns["__builtins__"] = runner._guarded_builtins(forbidden) if forbidden else builtins
        budget = soft
        try:
            budget = float(req["imports_timeout"]) if cell["kind"] == "imports" else soft
            signal.setitimer(signal.ITIMER_REAL, budget)
            exec(code, ns)
        except _SoftTimeout:
            cell_errors.append({"index": cell["index"], "kind": cell["kind"],
                                "error": f"the cell ran longer than its {budget:.1f} s budget "
                                         "(infinite loop?)",
                                "traceback": ""})
        except BaseException as exc:
            cell_errors.append({"index": cell["index"], "kind": cell["kind"],
                                "error": f"{type(exc).__name__}: {exc}"[:MAX_TEXT],
                                "traceback": runner.trimmed_traceback(exc)[:MAX_TEXT]})
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            ns["__builtins__"] = builtins
    write_result(results / "cells.npz", {"cell_errors": cell_errors, "blocked": blocked}, {})

    for k, ex in enumerate(exercises):
        meta: dict[str, Any] = {"id": ex.id, "status": "ok", "cases": [], "dependencies": []}
        arrays: dict[str, np.ndarray] = {}
        fn = ns.get(ex.name)
        origin = None if fn is None else runner.not_students_code(fn)
        base = None if fn is None or origin is not None else runner.forbidden_base(fn, ex.forbidden)
        if base is not None:
            origin = f"a subclass of {base}"
        if fn is None:
            meta["status"] = "missing"
        elif origin is not None:
            meta["status"], meta["message"] = "not_own", origin
        else:
            start = perf()
            try:
                meta["dependencies"] = runner.student_dependencies(ex, ns)
                signal.setitimer(signal.ITIMER_REAL, soft)
                raws = runner.run_cases(ex, fn, ns)
                signal.setitimer(signal.ITIMER_REAL, 0)
                for j, raw in enumerate(raws):
                    entry = {k2: v for k2, v in vars(raw).items() if k2 != "outputs"}
                    entry["outputs"] = {}
                    for name, arr in raw.outputs.items():
                        key = f"c{j}_{len(arrays)}"
                        arrays[key] = arr
                        entry["outputs"][name] = key
                    meta["cases"].append(entry)
            except _SoftTimeout:
                meta["status"] = "timeout"
                meta["message"] = f"ran longer than {soft:.1f} s (infinite loop?) after {perf() - start:.1f} s"
            except BaseException as exc:
                meta["status"] = "error"
                meta["message"] = f"{type(exc).__name__}: {exc}"[:MAX_TEXT]
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        try:
            write_result(results / f"{k}.npz", meta, arrays)
        except BaseException as exc:
            meta = {"id": ex.id, "status": "error", "cases": [], "dependencies": [],
                    "message": f"its outputs could not be saved ({type(exc).__name__}: {exc})"[:MAX_TEXT]}
            with contextlib.suppress(BaseException):
                write_result(results / f"{k}.npz", meta, {})
    write_result(results / "cells.npz", {"cell_errors": cell_errors, "blocked": blocked}, {})
    sys.stdout.flush()
    os._exit(0)
