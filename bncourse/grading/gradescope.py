"""The Gradescope autograder's in-container half: grade ``/autograder/submission``, write
``/autograder/results/results.json`` (instructor-only; the zip is built by
:mod:`bncourse.authoring.autograder`).

Gradescope's contract (https://gradescope-autograders.readthedocs.io/en/latest/specs/):
the zip's ``setup.sh`` runs once, as root, when Gradescope builds the image; for every
submission ``/autograder/run_autograder`` runs, as root, with the student's files in
``/autograder/submission/``, and must write ``/autograder/results/results.json``: an overall
``score``, a list of ``tests`` (each ``name``, ``score``, ``max_score``, ``output``,
``visibility``), an optional top-level ``output`` (``output_format`` ``"md"`` renders
Markdown) and ``extra_data``.  What ``run_autograder`` prints goes to
``/autograder/results/stdout``, shown to instructors only.

What :func:`main` writes: one test per exercise of the assignment's notebook(s), named by
its exercise id, scored as ``bncourse grade`` scores it, its output the same diagnosis text
(``check``'s format); the top-level ``output`` is the feedback markdown ``bncourse grade``
writes to ``feedback/<student>.md``, after a line saying how the submission was confined;
``extra_data.isolation`` says the same for scripts.  Anything wrong with the upload (no
notebook, several notebooks for a one-notebook assignment, a notebook that is not the
assignment's, no exercise ids) is a results.json with score 0 and a clear message; an
internal failure too (never a missing results.json, which Gradescope shows as "The
autograder failed to execute correctly").

Inside the container the student's code never runs with the grader's rights.  The grader
(root, with the instructor package installed in ``/autograder/oracle``, mode 700) runs the
submission's ``imports`` and ``exercise`` cells either

* in the **bubblewrap jail** ``bncourse grade`` uses (:mod:`bncourse.grading.jail`), where
  the container lets bubblewrap make namespaces (probed with ``bwrap --unshare-all ...
  true``), or else
* as a separate **unprivileged user** (also when the jail's server does not start;
  ``BNCOURSE_AUTOGRADER_USER``, default
  ``bncourse-student``, made by ``setup.sh``) that cannot read the oracle, the zip's source
  or the results folder (all root's, mode 700/755), importing only the student build of the
  package, with no new privileges and the jail's seccomp filter (no network sockets, no
  tracing), under CPU, memory, file-size and process-count limits and a wall-clock timeout;
  every process of that user is killed when its run ends, and its result files are copied
  out without following links, size-capped, then parsed as untrusted data.

Docker's default seccomp profile (https://github.com/moby/profiles/blob/main/seccomp/default.json)
allows ``unshare`` and namespace-creating ``clone`` only to a process holding
``CAP_SYS_ADMIN``, which root in a default container lacks, and Gradescope's own advice is to
run student code as a separate user (https://gradescope-autograders.readthedocs.io/en/latest/best_practices/):
expect the unprivileged-user path on Gradescope; ``extra_data.isolation`` reports which one ran.

Every path comes from the environment so the whole flow can be tested outside a container:
``BNCOURSE_AUTOGRADER_ROOT`` (default ``/autograder``), ``BNCOURSE_AUTOGRADER_ISOLATION``
(``auto``, ``jail`` or ``user``), ``BNCOURSE_AUTOGRADER_USER`` and
``BNCOURSE_AUTOGRADER_WORKER_PYTHON`` (the interpreter the unprivileged user runs; default
the grader's).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bncourse.errors import BNCourseError
from bncourse.grading import sandbox
from bncourse.grading.check import format_result
from bncourse.grading.evaluate import ExerciseResult
from bncourse.grading.grader import (
    GRADER_VERSION,
    Submission,
    grade_notebook,
    identify_notebook,
    imports_to_preload,
    student_feedback,
)
from bncourse.grading.jail import GradingJail, bwrap_path
from bncourse.grading.registry import Exercise, all_exercises
from bncourse.grading.sandbox import ForkServer, SandboxOutcome
from bncourse.notebook_file import MAX_NOTEBOOK_BYTES, atomic_write, load_json, read_upload

__all__ = [
    "CONFIG_FILE", "ISOLATION_JAIL", "ISOLATION_USER", "Assignment", "Layout", "UserServer", "choose_isolation",
    "failed", "grade_submission", "harden", "jail_available", "main", "results_for",
]

CONFIG_FILE = "bncourse-autograder.json"
"""The assignment's settings, at the zip's root (``/autograder/source/``)."""
STUDENT_BUILD = "student_build"
"""The student build of the package (no answers, no expected outputs): what the student's code imports."""
ORACLE = "oracle"
"""Where ``setup.sh`` installs the instructor package (root only, mode 700)."""
PYTHON_FILE = "bncourse-python"
"""Written by ``setup.sh``: the interpreter ``run_autograder`` runs the grader with."""
DEFAULT_USER = "bncourse-student"
ISOLATION_JAIL = "bubblewrap jail"
ISOLATION_USER = "unprivileged user"
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
MAX_NOTEBOOKS = 20
WORKER_PROCESSES = 64
"""RLIMIT_NPROC of the unprivileged user (it owns nothing else in the container)."""
_USER_BOOTSTRAP = (
    "import json, sys; sys.path[:0] = json.loads(sys.argv[2]); "
    "from bncourse.grading import confine; confine.lock_down(); "
    "from bncourse.grading.sandbox import worker_main; worker_main(sys.argv[1])"
)
"""The unprivileged worker: the student build first on its path, no new privileges and the
jail's seccomp filter (no sockets but ``AF_UNIX``, no tracing, mounting or namespaces) before
anything of the submission runs."""


@dataclass(frozen=True)
class Layout:
    """Gradescope's folders under one root (``/autograder`` in the container)."""

    root: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Layout:
        env = os.environ if env is None else env
        return cls(Path(env.get("BNCOURSE_AUTOGRADER_ROOT") or "/autograder"))

    @property
    def source(self) -> Path:
        return self.root / "source"

    @property
    def submission(self) -> Path:
        return self.root / "submission"

    @property
    def results(self) -> Path:
        return self.root / "results" / "results.json"

    @property
    def student_build(self) -> Path:
        return self.root / STUDENT_BUILD

    @property
    def oracle(self) -> Path:
        return self.root / ORACLE


@dataclass(frozen=True)
class Assignment:
    """What one autograder zip grades (its ``bncourse-autograder.json``).

    Attributes:
        notebooks: the course notebooks of the assignment (one per Gradescope assignment is usual).
        timeout: wall-clock seconds for the submission's code.
        visibility: Gradescope's visibility of every test.
    """

    notebooks: tuple[str, ...]
    timeout: float = 60.0
    visibility: str = "visible"

    def to_json(self) -> str:
        return json.dumps({"format": 1, "notebooks": list(self.notebooks), "timeout": self.timeout,
                           "visibility": self.visibility}, indent=1) + "\n"

    @classmethod
    def load(cls, path: Path) -> Assignment:
        """Read and check ``path``.

        Raises:
            BNCourseError: unreadable, or a field is missing or wrong.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            notebooks = tuple(data["notebooks"])
            timeout = float(data.get("timeout", 60.0))
            visibility = str(data.get("visibility", "visible"))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BNCourseError(f"autograder settings {str(path)!r} cannot be read: {exc}") from exc
        known = {e.notebook for e in all_exercises()}
        unknown = [n for n in notebooks if n not in known]
        if not notebooks or unknown:
            raise BNCourseError(f"autograder settings {str(path)!r}: unknown notebook(s) {unknown or '(none)'}; "
                                f"course notebooks: {', '.join(sorted(known))}")
        if not timeout > 0:
            raise BNCourseError(f"autograder settings {str(path)!r}: timeout must be positive, not {timeout}")
        if visibility not in VISIBILITIES:
            raise BNCourseError(f"autograder settings {str(path)!r}: visibility {visibility!r} is not one of "
                                f"{', '.join(VISIBILITIES)}")
        return cls(notebooks, timeout, visibility)

    @property
    def exercises(self) -> list[Exercise]:
        return [e for e in all_exercises() if e.notebook in self.notebooks]


# --- isolation -------------------------------------------------------------------------------


def jail_available() -> bool:
    """Can bubblewrap make its namespaces here (not in a default Docker container)?"""
    bwrap = bwrap_path()
    if bwrap is None:
        return False
    try:
        probe = subprocess.run([bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"],
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def choose_isolation(env: Mapping[str, str] | None = None) -> str:
    """:data:`ISOLATION_JAIL` or :data:`ISOLATION_USER` (``BNCOURSE_AUTOGRADER_ISOLATION``:
    ``auto``, the default, probes bubblewrap).

    Raises:
        BNCourseError: ``jail`` was asked for and bubblewrap cannot make namespaces here, or
            the setting is not one of auto/jail/user.
    """
    env = os.environ if env is None else env
    wanted = env.get("BNCOURSE_AUTOGRADER_ISOLATION", "auto") or "auto"
    if wanted not in ("auto", "jail", "user"):
        raise BNCourseError(f"BNCOURSE_AUTOGRADER_ISOLATION={wanted!r}: use auto, jail or user")
    if wanted == "user":
        return ISOLATION_USER
    if jail_available():
        return ISOLATION_JAIL
    if wanted == "jail":
        raise BNCourseError("bubblewrap cannot create namespaces in this container (BNCOURSE_AUTOGRADER_ISOLATION=jail)")
    return ISOLATION_USER


def _kill_user_processes(uid: int) -> None:
    """SIGKILL every process whose real uid is ``uid`` (the grading user owns nothing else),
    until none is left (a fork loop is outrun by RLIMIT_NPROC)."""
    for _ in range(50):
        found = 0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/status") as f:
                    uid_line = next(line for line in f if line.startswith("Uid:"))
            except (OSError, StopIteration):
                continue
            if int(uid_line.split()[1]) == uid:
                found += 1
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(entry.name), signal.SIGKILL)
        if not found:
            return
        time.sleep(0.02)


def _build_font_cache(folder: Path) -> None:
    """Make matplotlib's font cache in ``folder`` (an ``MPLCONFIGDIR``), in a subprocess of
    the grader's own interpreter; a failure leaves the folder empty (matplotlib then builds it
    in the run, as it would anyway)."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {"MPLCONFIGDIR": str(folder), "MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin", "HOME": str(folder)}
    subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], env=env, cwd=folder,
                   stdin=subprocess.DEVNULL, capture_output=True, timeout=120, check=False)


class UserServer(ForkServer):
    """Runs each submission as an unprivileged user, for containers without namespaces.

    It speaks the jailed half of :class:`~bncourse.grading.sandbox.ForkServer`'s protocol
    (:meth:`run_jailed`), so :func:`~bncourse.grading.grader.grade_notebook` grades with
    it unchanged: the request's result folder and home are moved to a fresh folder owned by
    the user, the worker (:func:`~bncourse.grading.sandbox.worker_main` of the *student
    build*) runs as that user with no site packages but the libraries', and its result files
    are copied into a folder of root's before they are parsed.
    """

    def __init__(self, student_build: Path, user: str, work_root: Path, python: Path,
                 libraries: Sequence[str], deny_read: Sequence[Path] = ()) -> None:
        super().__init__(jail=GradingJail(student_build))
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            raise BNCourseError(f"the grading user {user!r} does not exist (setup.sh makes it: "
                                "useradd --system --no-create-home bncourse-student)") from None
        if entry.pw_uid == 0:
            raise BNCourseError(f"the grading user {user!r} is root: use an unprivileged user")
        self.user, self.uid, self.gid = user, entry.pw_uid, entry.pw_gid
        self.student_build = student_build
        self.work_root = work_root
        self.python = python
        self.libraries = [str(student_build), *libraries]
        self.deny_read = [str(p) for p in deny_read]
        self._own = Path(tempfile.mkdtemp(prefix="bncourse-gradescope-"))  # root's, mode 700
        self._runs = 0
        self._fonts = self._own / "mpl"
        _build_font_cache(self._fonts)

    def start(self) -> None:
        """Nothing to start: each run is a fresh interpreter."""

    def ready(self) -> bool:
        return True

    def close(self) -> None:
        sandbox.remove_tree(self._own)

    def jailed_extra_files(self) -> list[str]:
        return []

    def run_jailed(self, request: Mapping[str, Any], timeout: float, outcome: SandboxOutcome) -> Path | None:
        """Run ``request`` as the user; the root-owned folder holding its result files."""
        self._runs += 1
        slot = self._own / str(self._runs)
        slot.mkdir(mode=0o700)
        self.work_root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="run-", dir=self.work_root))
        try:
            for sub in ("results", "home", "tmp"):
                (work / sub).mkdir()
            # matplotlib's font cache, built once: without it the first import in every run
            # would start `fc-list`, which the student would be told was blocked
            shutil.copytree(self._fonts, work / "mpl")
            req = dict(request)
            req |= {
                "result_dir": str(work / "results"),
                "allow_write": [str(work)],
                "deny_read": self.deny_read,
                "env": {**request["env"], "HOME": str(work / "home"), "TMPDIR": str(work / "tmp"),
                        "MPLCONFIGDIR": str(work / "mpl"), "PATH": "/usr/bin:/bin"},
            }
            (work / "request.json").write_text(json.dumps(req))
            for path in [work, *work.iterdir(), *(work / "mpl").rglob("*")]:
                os.chown(path, self.uid, self.gid)
            self._run(work, req, timeout, outcome)
            self._collect(work, slot, len(request["exercises"]))
        finally:
            _kill_user_processes(self.uid)
            sandbox.remove_tree(work)
        return slot

    def _run(self, work: Path, req: Mapping[str, Any], timeout: float, outcome: SandboxOutcome) -> None:
        def limits() -> None:  # pragma: no cover - in the child, before exec
            resource.setrlimit(resource.RLIMIT_NPROC, (WORKER_PROCESSES, WORKER_PROCESSES))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        with open(work / "stdout.txt", "wb") as out, open(work / "stderr.txt", "wb") as err:
            proc = subprocess.Popen(
                [str(self.python), "-I", "-S", "-B", "-c", _USER_BOOTSTRAP, str(work / "request.json"),
                 json.dumps(self.libraries)],
                cwd=work, env=dict(req["env"]), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                user=self.uid, group=self.gid, extra_groups=[], start_new_session=True, close_fds=True,
                preexec_fn=limits,
            )
            try:
                outcome.exit_code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                outcome.timed_out = True
                sandbox.kill_process_group(proc.pid)
                outcome.exit_code = proc.wait()
        _kill_user_processes(self.uid)  # before copying: nothing may still be writing

    @staticmethod
    def _collect(work: Path, slot: Path, n_exercises: int) -> None:
        """Copy the expected result files (regular files, capped, links not followed)."""
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        host = os.open(slot, flags)
        try:
            with contextlib.suppress(OSError):
                results = os.open(work / "results", flags)
                try:
                    for name in sandbox.result_names(n_exercises):
                        sandbox.copy_out(results, host, name, sandbox.MAX_RESULT_BYTES)
                finally:
                    os.close(results)
            own = os.open(work, flags)
            try:
                for stream in ("stdout.txt", "stderr.txt"):
                    sandbox.copy_out(own, host, stream, sandbox.OUTPUT_TAIL, tail=True)
            finally:
                os.close(own)
        finally:
            os.close(host)


def _libraries(exclude: Sequence[Path]) -> list[str]:
    """The grader's site-packages folders (numpy, torch, ...), for the unprivileged worker."""
    skip = {os.path.realpath(p) for p in exclude}
    out = []
    for p in sys.path:
        if (p.rstrip("/").endswith(("site-packages", "dist-packages")) and os.path.isdir(p)
                and os.path.realpath(p) not in skip and p not in out):
            out.append(p)
    return out


def _server(layout: Layout, isolation: str, env: Mapping[str, str], preload: Sequence[str] = ()) -> ForkServer:
    """The server that runs the submissions; the jail's imports ``preload`` (the notebooks'
    imports cells) before any submission, as ``bncourse grade`` does, so that what they do on
    first import (matplotlib building its font cache with ``fc-list``) is not charged to the
    student as a blocked process."""
    if isolation == ISOLATION_JAIL:
        return ForkServer(list(preload), jail=GradingJail(layout.student_build))
    python = Path(env.get("BNCOURSE_AUTOGRADER_WORKER_PYTHON") or sys.executable)
    return UserServer(layout.student_build, env.get("BNCOURSE_AUTOGRADER_USER") or DEFAULT_USER,
                      layout.root / "work", python, _libraries([layout.oracle]),
                      deny_read=[layout.oracle, layout.source, layout.submission, layout.results.parent])


def harden(layout: Layout) -> None:
    """Root's folders out of the student user's reach: the oracle and the zip's source (700),
    the results folder (755, so only root writes results.json), the student build read-only."""
    for path, mode in ((layout.oracle, 0o700), (layout.source, 0o700), (layout.results.parent, 0o755)):
        if path.is_dir() and not path.is_symlink():
            os.chmod(path, mode)
    if layout.student_build.is_dir():
        for folder, _dirs, files in os.walk(layout.student_build):
            os.chmod(folder, 0o755)
            for f in files:
                os.chmod(os.path.join(folder, f), 0o644)


# --- the submission --------------------------------------------------------------------------


def _uploads(folder: Path) -> tuple[list[Path], list[str]]:
    """``(notebooks, other files)`` uploaded (hidden folders, ``__MACOSX`` and checkpoints skipped)."""
    notebooks: list[Path] = []
    others: list[Path] = []
    if folder.is_dir():
        for base, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX")
            for name in sorted(files):
                if not name.startswith("."):
                    (notebooks if name.lower().endswith(".ipynb") else others).append(Path(base) / name)
            if len(notebooks) + len(others) > 1000:
                break
    return notebooks, [str(p.relative_to(folder)) for p in others]


def _which_notebook(path: Path, data: bytes) -> str | None:
    """The course notebook an upload says it is (metadata, file name, ``check`` cells or the
    functions it defines, as ``bncourse grade`` tells), or None (unreadable, or no sign)."""
    with tempfile.TemporaryDirectory(prefix="bncourse-upload-") as folder:
        copy = Path(folder) / path.name
        copy.write_bytes(data)
        try:
            nb, cells = load_json(copy)
        except Exception:  # an unreadable notebook is reported when it is graded
            return None
        return identify_notebook(copy, nb, cells)


def _student(layout: Layout) -> str:
    """Who submitted (``submission_metadata.json``), for the feedback's title."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError, IndexError):
        meta = json.loads(read_upload(layout.root / "submission_metadata.json", 1 << 20))
        names = [u.get("name") or u.get("email") for u in meta["users"]]
        if names and all(isinstance(n, str) for n in names):
            return ", ".join(names)
    return "your submission"


def _test(ex: Exercise, score: float, output: str, visibility: str) -> dict[str, Any]:
    return {"name": ex.id, "score": round(float(score), 4), "max_score": float(ex.points),
            "output": output, "visibility": visibility, "output_format": "text"}


def results_for(assignment: Assignment, records: Sequence[dict[str, Any]], problems: Sequence[str],
                isolation: str, student: str, seconds: float) -> dict[str, Any]:
    """Gradescope's results.json for graded ``records`` (``bncourse grade``'s records) and
    upload ``problems`` (each an explanation the student reads)."""
    by_notebook: dict[str, dict[str, Any]] = {}
    for rec in records:
        if rec.get("notebook") in assignment.notebooks and not rec.get("errors"):
            by_notebook[rec["notebook"]] = rec
    notes = list(problems)
    for rec in records:
        for err in rec.get("errors", []):
            notes.append(f"{Path(rec['path']).name}: {err}")
    tests = []
    for ex in assignment.exercises:
        graded = by_notebook.get(ex.notebook, {})
        result = next((r for r in graded.get("results", []) if r.get("exercise") == ex.id), None)
        if result is None:
            why = (f"not graded: {notes[0]}" if notes else
                   f"not graded: no notebook {ex.notebook}.ipynb was submitted")
            tests.append(_test(ex, 0.0, why, assignment.visibility))
        else:
            tests.append(_test(ex, float(result["points"]), format_result(ExerciseResult.from_dict(result)),
                               assignment.visibility))
    total = sum(t["score"] for t in tests)
    maximum = sum(t["max_score"] for t in tests)
    how = ("a bubblewrap jail (own user, PID, network and mount namespaces)" if isolation == ISOLATION_JAIL
           else "a separate unprivileged user")
    head = [f"**{total:g} / {maximum:g} points** — your code ran in {how}, seeing only the course package "
            "without its answers.", ""]
    if notes:
        head += ["**Problems with this submission:**", "", *[f"- {n}" for n in notes], ""]
    feedback = student_feedback(student, list(by_notebook.values())) if by_notebook else ""
    return {
        "score": round(total, 4),
        "execution_time": round(seconds, 3),
        "output": "\n".join(head) + ("\n" + feedback if feedback else ""),
        "output_format": "md",
        "test_output_format": "text",
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": {"isolation": isolation, "notebooks": list(assignment.notebooks),
                       "grader_version": GRADER_VERSION, "problems": notes},
    }


def failed(assignment: Assignment | None, message: str, isolation: str = "none (not run)",
           seconds: float = 0.0) -> dict[str, Any]:
    """A results.json with score 0 and ``message`` (every test of the assignment at 0)."""
    if assignment is None:
        return {"score": 0.0, "execution_time": round(seconds, 3), "output": message, "output_format": "md",
                "tests": [], "extra_data": {"isolation": isolation, "problems": [message]}}
    return results_for(assignment, [], [message], isolation, "your submission", seconds)


def grade_submission(layout: Layout, assignment: Assignment, isolation: str,
                     env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Grade what is in ``layout.submission``; the results.json content (never raises on a
    bad upload)."""
    env = os.environ if env is None else env
    start = time.perf_counter()
    notebooks, others = _uploads(layout.submission)
    expected = ", ".join(f"{n}.ipynb" for n in assignment.notebooks)
    ignored = f" (found {', '.join(others[:10])})" if others else ""
    if not notebooks:
        return failed(assignment, f"no notebook (.ipynb) in your submission{ignored}: upload {expected}.",
                      isolation, time.perf_counter() - start)
    if len(assignment.notebooks) == 1 and len(notebooks) > 1:
        names = ", ".join(p.name for p in notebooks[:10])
        return failed(assignment, f"{len(notebooks)} notebooks were submitted ({names}): upload exactly one, "
                      f"{expected}.", isolation, time.perf_counter() - start)
    if len(notebooks) > MAX_NOTEBOOKS:
        return failed(assignment, f"{len(notebooks)} notebooks were submitted: at most {MAX_NOTEBOOKS}.",
                      isolation, time.perf_counter() - start)
    problems = [f"ignored {others_name} (not a notebook)" for others_name in others[:10]]
    student = _student(layout)
    copies = Path(tempfile.mkdtemp(prefix="bncourse-submission-"))  # root's, mode 700
    records: list[dict[str, Any]] = []
    try:
        subs: list[Submission] = []
        for path in notebooks:
            try:
                data = read_upload(path, MAX_NOTEBOOK_BYTES)
            except (OSError, ValueError) as exc:
                problems.append(f"{path.name} cannot be read: {exc}")
                continue
            which = _which_notebook(path, data)
            if which is not None and which not in assignment.notebooks:
                problems.append(f"{path.name} is notebook {which}, which this assignment does not grade: "
                                f"upload {expected}")
                continue
            # a one-notebook assignment grades the one upload as that notebook, whatever its name
            name = (f"{assignment.notebooks[0]}.ipynb" if len(assignment.notebooks) == 1
                    else f"{which}.ipynb" if which else re.sub(r"[^A-Za-z0-9._-]+", "_", path.name))
            target = copies / "submission" / name
            if target.exists():
                problems.append(f"two uploads are notebook {target.stem}: neither is graded")
                subs = [s for s in subs if s.path != target]
                continue
            target.parent.mkdir(exist_ok=True)
            target.write_bytes(data)
            subs.append(Submission(student, target))
        if subs:
            preload = sorted({m for sub in subs for m in imports_to_preload(sub.path)})
            server = _server(layout, isolation, env, preload)
            if isolation == ISOLATION_JAIL and not server.ready():
                # namespaces were there for the probe, yet the jail cannot run Python (e.g. an
                # interpreter it does not mount): every exercise would score 0 for nothing
                log = server._dir / "stderr.txt" if server._dir is not None else None
                why = log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""
                print(f"bncourse autograder: the jail did not start, grading as the unprivileged user:\n{why}",
                      file=sys.stderr, flush=True)
                server.close()
                isolation = ISOLATION_USER
                server = _server(layout, isolation, env, preload)
            try:
                for sub in subs:
                    records.append(grade_notebook(sub, timeout=assignment.timeout, server=server))
            finally:
                server.close()
        claims: dict[str, list[dict[str, Any]]] = {}
        for rec in records:
            if rec.get("notebook") in assignment.notebooks:
                claims.setdefault(rec["notebook"], []).append(rec)
            elif rec.get("notebook"):
                rec["errors"].append(f"this is notebook {rec['notebook']}, not part of this assignment ({expected})")
        for notebook, recs in claims.items():
            if len(recs) > 1:
                for rec in recs:
                    rec["errors"].append(f"{len(recs)} uploads are notebook {notebook}: none is graded; "
                                         "upload it once")
        for rec in records:
            rec["path"] = str(notebooks[0].parent / Path(rec["path"]).name)
    finally:
        sandbox.remove_tree(copies)
    return results_for(assignment, records, problems, isolation, student, time.perf_counter() - start)


def main(env: Mapping[str, str] | None = None) -> int:
    """``run_autograder``'s entry point: always writes results.json; 0 unless it could not."""
    env = os.environ if env is None else env
    start = time.perf_counter()
    layout = Layout.from_env(env)
    assignment: Assignment | None = None
    try:
        assignment = Assignment.load(layout.source / CONFIG_FILE)
        layout.results.parent.mkdir(parents=True, exist_ok=True)
        harden(layout)
        with contextlib.suppress(FileNotFoundError):
            layout.results.unlink()  # nothing but the grader's own file is ever uploaded
        isolation = choose_isolation(env)
        import bncourse

        print(f"bncourse autograder: grading {', '.join(assignment.notebooks)} in {isolation} "
              f"(grader: {Path(bncourse.__file__).parent})", flush=True)
        results = grade_submission(layout, assignment, isolation, env)
    except Exception as exc:
        traceback.print_exc()
        results = failed(assignment, "The autograder could not grade this submission (not your fault: "
                         f"tell your course staff). {type(exc).__name__}: {exc}",
                         seconds=time.perf_counter() - start)
    try:
        atomic_write(layout.results, json.dumps(results, indent=1))
    except OSError as exc:
        print(f"bncourse autograder: cannot write {layout.results}: {exc}", file=sys.stderr)
        return 1
    print(f"bncourse autograder: score {results['score']:g}, wrote {layout.results}", flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
