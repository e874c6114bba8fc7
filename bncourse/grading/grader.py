"""The class grader behind ``bncourse grade``: many notebooks in, a gradebook out.

Rules:

* **Submissions.** Each SUBMISSION is a notebook or a directory searched recursively
  for notebooks (``.ipynb_checkpoints`` and hidden folders skipped).  A notebook whose file
  name is a course notebook (``NN_topic.ipynb``, e.g. ``03_forward_backward.ipynb``)
  belongs to the student named by its folder (``alice/03_forward_backward.ipynb`` is
  alice's; under a folder SUBMISSION, the first folder below it, however deep the file
  lies); any other notebook belongs to the student named by its file stem (``bob.ipynb``
  is bob's).  Two files claiming one student's notebook are a conflict: both are reported
  and neither is graded.  Only regular files are read (no symlink, FIFO or folder).  Which course notebook a file is comes from its metadata
  (``metadata.bncourse.notebook``), its file name, or its ``check("id", ...)`` cells.
* **What runs.** Only the cell tagged ``imports`` and the cells tagged ``exercise``, in a
  sandboxed subprocess per notebook (:mod:`bncourse.grading.sandbox`); the experiments
  never run.  Outputs come back as arrays and are compared with the reference here.
* **Static checks** (here, on the cell sources): an exercise cell that imports a module its
  exercise forbids, calls ``*.batch_norm``-style library kernels, or reaches for
  ``open``/``exec``/``__import__``/``importlib``/``sys.modules``/``subprocess``/... scores 0
  for its exercise ("forbidden: ..."); a cell that assigns into an imported module
  (monkeypatching numpy, torch or ``bncourse.grading``) or imports grading internals
  scores 0 for every exercise of the notebook ("tampering: ...").
* **Roster** (``roster=``, :mod:`bncourse.grading.roster`): a file list (``student,path``)
  names the student of each of its files; a class list (the LMS's own list: ids, emails,
  logins) also decides whose each found file is — a file that matches no student is
  *unmatched* (listed, not graded as anyone's) and a student with no file is *missing*.
* **Outputs** (each written atomically): ``grades.csv`` (student, one column per exercise,
  total, max; with a class-list roster also ``note``, and a row for every missing student
  and every unmatched file), ``report.json`` (every case, diagnosis, timing, errors; with a
  roster, ``roster``: matched, unmatched, missing) and ``feedback/<student>.md``.  A submission whose content hash was graded before (same
  grader version and exercises) is reused unless ``regrade``.  Submissions are only read.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import os
import queue
import re
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bncourse.errors import BNCourseError
from bncourse.grading.check import format_result
from bncourse.grading.evaluate import ExerciseResult, blame_dependencies, evaluate
from bncourse.grading.jail import GradingJail, bwrap_path
from bncourse.grading.registry import Exercise, all_exercises, get_exercise
from bncourse.grading.roster import Roster, load_roster
from bncourse.grading.sandbox import (
    CellSource,
    ForkServer,
    SandboxOutcome,
    preload_modules,
    run_submission,
)
from bncourse.grading.source_rules import module_names, static_findings
from bncourse.notebook_file import (
    atomic_write,
    cell_source,
    cell_tags,
    graded_cells,
    load_json,
    read_upload,
    sha256_file,
)

__all__ = [
    "NOT_ISOLATED", "Submission", "Summary", "discover_submissions", "grade_class", "grade_notebook",
    "identify_notebook", "imports_to_preload", "read_roster", "require_jail", "student_feedback",
]

GRADER_VERSION = "3"
NOT_ISOLATED = "NOT ISOLATED"
"""The stamp on every report of a run without the OS jail (``--no-jail``)."""
JAILED = "bubblewrap jail"
_COURSE_STEM = re.compile(r"^\d\d_[A-Za-z0-9_]+$")


@dataclass(frozen=True)
class Submission:
    """One notebook of one student."""

    student: str
    path: Path


@dataclass
class Summary:
    """What ``grade_class`` did; ``str()`` is the summary the CLI prints."""

    out: Path
    students: int = 0
    notebooks: int = 0
    graded: int = 0
    reused: int = 0
    seconds: float = 0.0
    jobs: int = 1
    problems: list[str] = field(default_factory=list)
    per_notebook_seconds: list[float] = field(default_factory=list)
    startup_seconds: float = 0.0
    isolation: str = JAILED
    roster: Roster | None = None
    matched: list[dict[str, str]] = field(default_factory=list)
    unmatched: list[dict[str, str]] = field(default_factory=list)
    missing: list[dict[str, str]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [
            f"graded {self.graded} notebook(s), reused {self.reused} unchanged, "
            f"{self.students} student(s), in {self.seconds:.1f} s with --jobs {self.jobs}",
        ]
        if self.isolation == NOT_ISOLATED:
            lines.insert(0, f"*** {NOT_ISOLATED}: run with --no-jail; submissions were not confined by the "
                         "operating system (only for code you trust) ***")
        if self.per_notebook_seconds:
            times = sorted(self.per_notebook_seconds)
            startup = (f" (plus a one-off start-up of {self.startup_seconds:.1f} s: interpreter and imports)"
                       if self.startup_seconds else "")
            lines.append(f"per notebook: median {times[len(times) // 2]:.2f} s, max {times[-1]:.2f} s{startup}")
        if self.problems:
            lines.append(f"{len(self.problems)} submission problem(s) (details in report.json / feedback):")
            lines += [f"  - {p}" for p in self.problems[:30]]
            if len(self.problems) > 30:
                lines.append(f"  ... and {len(self.problems) - 30} more")
        if self.unmatched:
            lines.append(f"{len(self.unmatched)} unmatched file(s): no roster student, not graded:")
            lines += [f"  - {u['path']}: {u['reason']}" for u in self.unmatched[:30]]
            if len(self.unmatched) > 30:
                lines.append(f"  ... and {len(self.unmatched) - 30} more")
        if self.missing:
            names = ", ".join(m["label"] for m in self.missing[:30])
            more = f", ... and {len(self.missing) - 30} more" if len(self.missing) > 30 else ""
            lines.append(f"{len(self.missing)} roster student(s) missing (no submission): {names}{more}")
        lines.append(f"wrote {self.out / 'grades.csv'}, {self.out / 'report.json'}, {self.out / 'feedback'}/")
        return "\n".join(lines)


# --- finding submissions ---------------------------------------------------------------------


def _registered_notebooks() -> set[str]:
    return {e.notebook for e in all_exercises()}


def _student_of(path: Path) -> str:
    """The student a file belongs to, from the path as uploaded (never a symlink's target)."""
    stem = path.stem
    if _COURSE_STEM.match(stem) or stem in _registered_notebooks():
        return Path(os.path.abspath(path)).parent.name
    return stem


def discover_submissions(paths: Iterable[Path]) -> list[Submission]:
    """Every notebook under ``paths`` with its student id (rules in the module docstring).

    Under a folder SUBMISSION, a file in a sub-folder belongs to the student named by the
    *first* folder below SUBMISSION (the uploader), however deep it lies: a folder named
    ``alice`` inside mallory's upload is still mallory's.  Anything named ``*.ipynb`` is
    listed, whatever it is (a folder, a FIFO, a symlink): reading refuses it with a reason.
    """
    found: list[Submission] = []
    for p in paths:
        if p.is_dir():
            files = sorted(
                f for f in p.rglob("*.ipynb")
                if not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
            for f in files:
                rel = f.relative_to(p).parts
                found.append(Submission(rel[0] if len(rel) > 1 else _student_of(f), f))
        elif p.is_file() or p.is_symlink():
            found.append(Submission(_student_of(p), p))
        else:
            raise BNCourseError(f"submission {str(p)!r} does not exist")
    return found


# --- reading a notebook ----------------------------------------------------------------------


def _cell_source(cell: Any) -> str:
    """The cell's source with IPython magics and shell lines made inert (``pass  # %time``)."""
    src = cell_source(cell)
    lines = []
    for line in src.splitlines():
        stripped = line.lstrip()
        lines.append(line[: len(line) - len(stripped)] + "pass  # " + stripped
                     if stripped.startswith(("%", "!")) else line)
    return "\n".join(lines) + "\n"


def _checked_ids(cells: Sequence[Any]) -> list[str]:
    ids = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        for m in re.finditer(r"""\bcheck\(\s*["']([A-Za-z0-9_]+)["']""", _cell_source(cell)):
            ids.append(m.group(1))
    return ids


def identify_notebook(path: Path, nb: Any, cells: Sequence[Any]) -> str | None:
    """Which course notebook a submission is (``"03_forward_backward"``), or ``None``.

    In order: the notebook's ``metadata.bncourse.notebook``, the file's name, the exercise
    ids its check cells name, the exercise functions its ``exercise`` cells define.
    """
    known = _registered_notebooks()
    metadata = nb.get("metadata", {})
    meta = metadata.get("bncourse", {}) if isinstance(metadata, dict) else {}
    if isinstance(meta, dict) and isinstance(meta.get("notebook"), str) and meta["notebook"] in known:
        return str(meta["notebook"])
    if path.stem in known:
        return path.stem
    for ex_id in _checked_ids(cells):
        try:
            return get_exercise(ex_id).notebook
        except BNCourseError:
            continue
    defined = set()
    for cell in cells:
        if "exercise" in cell_tags(cell):
            defined |= set(re.findall(r"^(?:def|class)\s+([A-Za-z_]\w*)", _cell_source(cell), re.M))
    for ex in all_exercises():
        if ex.name in defined:
            return ex.notebook
    return None


# --- grading one notebook --------------------------------------------------------------------


def _fingerprint(exercises: Sequence[Exercise]) -> str:
    key = GRADER_VERSION + "|" + "|".join(f"{e.id}:{e.points}" for e in exercises)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _zero(ex: Exercise, status: str, message: str) -> ExerciseResult:
    result = ExerciseResult(ex.id, passed=False, points=0.0, max_points=ex.points, status=status)
    result.messages.append(message)
    return result


def _defining_cell(name: str, cells: Sequence[CellSource]) -> CellSource | None:
    pattern = re.compile(rf"^\s*(?:def|class)\s+{re.escape(name)}\b", re.M)
    return next((c for c in cells if pattern.search(c.source)), None)


def _judge(
    ex: Exercise, outcome: SandboxOutcome, cells: Sequence[CellSource], timeout: float
) -> ExerciseResult:
    status = outcome.status.get(ex.id, "no_result")
    if status == "ok":
        return evaluate(ex, outcome.raws.get(ex.id, []))
    if status == "missing":
        cell = _defining_cell(ex.name, cells)
        err = next((e for e in outcome.cell_errors if cell is not None and e["index"] == cell.index), None)
        why = f": its cell raised {err['error']}" if err else " (no exercise cell defines it)"
        return _zero(ex, "missing", f"{ex.name} is not defined{why}.")
    if status == "not_own":
        origin = outcome.messages.get(ex.id, "not code from your cells")
        return _zero(ex, "forbidden", f"forbidden: {ex.name} is {origin}, not code you wrote — define "
                     f"{ex.name} yourself in its exercise cell.")
    if status == "timeout":
        return _zero(ex, "timeout", f"timed out: {ex.name} {outcome.messages.get(ex.id, 'ran too long')}.")
    if status == "error":
        return _zero(ex, "error", f"could not be run: {outcome.messages.get(ex.id, 'unknown error')}.")
    if outcome.timed_out:
        return _zero(ex, "timeout", f"timed out: the submission used up its {timeout:g} s before this "
                     "exercise finished (an infinite loop?).")
    hint = ""
    if "MemoryError" in outcome.stderr_tail or outcome.exit_code in (-9, 137):
        hint = " It may have run out of memory."
    reason = outcome.messages.get(ex.id)
    if reason:
        return _zero(ex, "error", f"no result: {reason}.")
    return _zero(ex, "error", f"no result: the submission's process ended (exit code {outcome.exit_code}) "
                 f"before this exercise finished — a call to sys.exit()/os._exit() or a crash.{hint}")


def grade_notebook(
    sub: Submission,
    *,
    timeout: float = 60.0,
    deny_read: Sequence[Path] = (),
    extra_exercise_files: Sequence[Path] = (),
    server: ForkServer | None = None,
) -> dict[str, Any]:
    """Grade one notebook; returns its JSON-ready record (never raises on a bad submission).

    ``server``: a warm :class:`~bncourse.grading.sandbox.ForkServer` to fork the sandboxed
    worker from (much faster than a fresh interpreter per notebook); ``None`` = cold start.
    """
    start = time.perf_counter()
    record: dict[str, Any] = {"student": sub.student, "path": str(sub.path), "sha256": sha256_file(sub.path),
                              "isolation": JAILED if server is not None and server.jail is not None else NOT_ISOLATED,
                              "notebook": None, "results": [], "errors": [], "cell_errors": [],
                              "blocked": [], "static": {}}
    try:
        nb, cells_all = load_json(sub.path)
    except Exception as exc:
        record["errors"].append(f"unreadable notebook: {type(exc).__name__}: {exc}")
        record["seconds"] = time.perf_counter() - start
        return record
    notebook = identify_notebook(sub.path, nb, cells_all)
    record["notebook"] = notebook
    if notebook is None:
        record["errors"].append("could not tell which course notebook this is (no metadata, file name "
                                "or check(...) cell names a registered exercise)")
        record["seconds"] = time.perf_counter() - start
        return record
    exercises = [e for e in all_exercises() if e.notebook == notebook]
    record["fingerprint"] = _fingerprint(exercises)
    by_name = {e.name: e for e in exercises}
    union_forbidden = tuple(sorted({m for e in exercises for m in e.forbidden}))
    cells: list[CellSource] = []
    for i, kind, src in graded_cells(cells_all):
        if kind == "imports":
            cells.append(CellSource(i, "imports", src))
        else:
            names = re.findall(r"^(?:def|class)\s+([A-Za-z_]\w*)", src, re.M)
            defined = [by_name[n] for n in names if n in by_name]
            forbidden = (tuple(sorted({m for e in defined for m in e.forbidden})) if defined
                         else union_forbidden)
            cells.append(CellSource(i, "exercise", src, forbidden))
    if not any(c.kind == "exercise" for c in cells):
        record["errors"].append("no cell is tagged `exercise` (were the tags removed?)")
    modules = module_names(c.source for c in cells)
    forbidden_by_ex: dict[str, list[str]] = {}
    tampering: list[str] = []
    for c in cells:
        bad, tamper = static_findings(c.source, c.forbidden, modules, c.kind == "exercise")
        tampering += [f"cell {c.index} {t}" for t in tamper]
        if bad:
            names = re.findall(r"^(?:def|class)\s+([A-Za-z_]\w*)", c.source, re.M)
            hit = [by_name[n] for n in names if n in by_name] or [e for e in exercises if e.forbidden]
            for e in hit:
                forbidden_by_ex.setdefault(e.id, []).extend(bad)
    record["static"] = {"forbidden": forbidden_by_ex, "tampering": tampering}
    outcome = run_submission(cells, [e.id for e in exercises], timeout=timeout, deny_read=deny_read,
                             extra_exercise_files=extra_exercise_files, server=server)
    record.update(cell_errors=outcome.cell_errors, blocked=outcome.blocked, exit_code=outcome.exit_code,
                  timed_out=outcome.timed_out, sandbox_seconds=round(outcome.seconds, 3),
                  forked=outcome.forked)
    results: dict[str, ExerciseResult] = {}
    for ex in exercises:
        try:
            res = _judge(ex, outcome, cells, timeout)
        except Exception as exc:  # a bug in an exercise definition: report it, keep grading
            res = _zero(ex, "error", f"internal grading error (not the student's fault): "
                        f"{type(exc).__name__}: {exc}")
        if ex.id in forbidden_by_ex:
            res = _zero(ex, "forbidden", f"forbidden: uses {', '.join(sorted(set(forbidden_by_ex[ex.id])))}"
                        " — this exercise asks for the computation in NumPy.")
        if tampering:
            res = _zero(ex, "tampering", f"tampering: {'; '.join(tampering[:3])} — "
                        "submissions may not modify numpy, torch or the grading code.")
        results[ex.id] = res
    for ex in exercises:
        deps = {}
        for name in outcome.dependencies.get(ex.id, []):
            dep = next((e for e in exercises if e.name == name and e.id != ex.id), None)
            if dep is not None:
                deps[name] = results[dep.id]
        if results[ex.id].status == "checked":
            blame_dependencies(results[ex.id], deps)
    record["results"] = [results[e.id].to_dict() for e in exercises]
    record["seconds"] = round(time.perf_counter() - start, 3)
    return record


# --- writing the reports ---------------------------------------------------------------------


def _safe_name(student: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", student).strip("._") or "student"


def student_feedback(student: str, records: Sequence[dict[str, Any]]) -> str:
    """The Markdown feedback file of one student: per notebook, problems, points, each check's text."""
    lines = [f"# Feedback for {student}", ""]
    if any(rec.get("isolation") != JAILED for rec in records):
        lines += [f"> Graded {NOT_ISOLATED} (without the operating-system jail).", ""]
    for rec in records:
        lines += [f"## {rec.get('notebook') or Path(rec['path']).name}", ""]
        lines += [f"- **problem:** {e}" for e in rec.get("errors", [])]
        for e in rec.get("cell_errors", []):
            lines.append(f"- cell {e['index']} ({e['kind']}) raised `{e['error'][:300]}`")
        lines += [f"- blocked: {b}" for b in rec.get("blocked", [])]
        if lines[-1]:  # a list above: the points are a paragraph of their own
            lines.append("")
        total = sum(r["points"] for r in rec["results"])
        maximum = sum(r["max_points"] for r in rec["results"])
        if rec["results"]:
            lines += [f"**{total:g} / {maximum} points**", ""]
        for r in rec["results"]:
            lines += ["```text", format_result(ExerciseResult.from_dict(r)), "```", ""]
    return "\n".join(lines) + "\n"


_KEY_FILE = ".grader-key"


def _cache_key(out: Path) -> bytes:
    """The output folder's secret for signing records (made on first use; no jail ever sees
    the output folder, so no submission can sign a record it forged)."""
    path = out / _KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        try:
            key = read_upload(path, 64)
        except (OSError, ValueError):
            key = b""
        if len(key) == 32:
            return key
        path.unlink()
        return _cache_key(out)
    key = os.urandom(32)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


def _signature(key: bytes, record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "signature"}
    canonical = json.dumps(json.loads(json.dumps(body, default=str)), sort_keys=True)
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def _roster_rows(summary: Summary, width: int) -> list[list[str]]:
    """The ``grades.csv`` rows of missing students and unmatched files (``width`` exercise columns)."""
    rows = [[m["student"], *[""] * width, "0", "", f"missing: {m['reason']}"] for m in summary.missing]
    rows += [["", *[""] * width, "", "", f"unmatched: {u['path']}: {u['reason']}"] for u in summary.unmatched]
    return rows


def _write_outputs(out: Path, records: Sequence[dict[str, Any]], summary: Summary) -> None:
    key = _cache_key(out)
    records = [dict(rec, signature=_signature(key, rec)) for rec in records]
    by_student: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        by_student.setdefault(rec["student"], []).append(rec)
    order = {e.id: i for i, e in enumerate(all_exercises())}
    columns = sorted({r["exercise"] for rec in records for r in rec["results"]},
                     key=lambda i: (order.get(i, 10**6), i))
    buf = io.StringIO()
    writer = csv.writer(buf)
    class_list = summary.roster is not None and summary.roster.class_list
    writer.writerow(["student", *columns, "total", "max", *(["note"] if class_list else [])])
    for student in sorted(by_student):
        pts: dict[str, float] = {}
        maximum = 0
        for rec in by_student[student]:
            for r in rec["results"]:
                pts[r["exercise"]] = r["points"]
                maximum += r["max_points"]
        writer.writerow([student, *[f"{pts[c]:g}" if c in pts else "" for c in columns],
                         f"{sum(pts.values()):g}", maximum, *([""] if class_list else [])])
    if class_list:
        writer.writerows(_roster_rows(summary, len(columns)))
    atomic_write(out / "grades.csv", buf.getvalue())
    report = {"grader_version": GRADER_VERSION, "isolation": summary.isolation,
              "seconds": round(summary.seconds, 3), "jobs": summary.jobs,
              "startup_seconds": round(summary.startup_seconds, 3), "submissions": list(records)}
    if summary.roster is not None:
        report["roster"] = {"path": str(summary.roster.path), "class_list": summary.roster.class_list,
                            "matched": summary.matched, "unmatched": summary.unmatched,
                            "missing": summary.missing}
    atomic_write(out / "report.json", json.dumps(report, indent=1, default=str))
    for student, recs in by_student.items():
        atomic_write(out / "feedback" / f"{_safe_name(student)}.md", student_feedback(student, recs))


def _previous(out: Path, isolation: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Records of the last run that may be reused: signed with this folder's key (a record
    edited or added by anyone but the grader is graded again) and graded as isolated as now."""
    try:
        data = json.loads(read_upload(out / "report.json", 1 << 30))
        key = _cache_key(out)
        return {(r["student"], r["sha256"]): r for r in data.get("submissions", [])
                if isinstance(r, dict) and isinstance(r.get("signature"), str) and r.get("fingerprint")
                and r.get("isolation") == isolation
                and hmac.compare_digest(r["signature"], _signature(key, r))}
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return {}


def _problems(rec: dict[str, Any]) -> list[str]:
    who = f"{rec['student']} ({Path(rec['path']).name})"
    out = [f"{who}: {e}" for e in rec.get("errors", [])]
    if rec.get("timed_out"):
        out.append(f"{who}: hit the wall-clock timeout")
    bad = [r for r in rec.get("results", []) if r["status"] in ("timeout", "error", "forbidden", "tampering")]
    out += [f"{who}: {r['exercise']} {r['status']}: {(r['messages'] or [''])[0][:120]}" for r in bad]
    return out


def grade_class(
    submissions: list[Path],
    out: Path,
    jobs: int = 1,
    timeout: float = 60.0,
    regrade: bool = False,
    *,
    extra_exercise_files: Sequence[Path] = (),
    warm: bool = True,
    jail: GradingJail | None = None,
    roster: Path | Roster | None = None,
) -> Summary:
    """Grade every submission into ``out`` (see the module docstring); returns a summary.

    ``jail``: run every submission in the OS jail (:mod:`bncourse.grading.jail`): one
    bubblewrap jail per job holding a warm fork server, a fresh corner of it per submission.
    ``None`` runs them in the Python-level sandbox only and stamps every report
    :data:`NOT_ISOLATED` (for code you trust: your own tests, your solutions).

    ``warm``: fork each worker from one warm :class:`ForkServer` per job (the default); when
    ``False``, a fresh interpreter (with ``jail``: a fresh jail) per notebook.

    ``roster``: a roster CSV (or one :func:`~bncourse.grading.roster.load_roster` read): a
    file list ``student,path`` naming whose each file is (paths relative to the roster's
    folder), or a class list, which also names the student of each file found under
    ``submissions`` (:meth:`~bncourse.grading.roster.Roster.match`), leaves unmatched files
    ungraded and reports missing students; files it names are graded besides those found.

    Raises :class:`BNCourseError` only when grading itself cannot work (a missing
    submission path, an unwritable output folder); a broken submission is a result.
    """
    start = time.perf_counter()
    jobs = max(1, int(jobs))
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise BNCourseError(f"output folder {str(out)!r} is not writable: {exc}") from exc
    if jail is not None:
        require_jail()
    roster_list = roster if isinstance(roster, Roster) or roster is None else load_roster(roster)
    subs, matched, unmatched = _assign_students(discover_submissions(submissions), roster_list)
    isolation = JAILED if jail is not None else NOT_ISOLATED
    summary = Summary(out=out, jobs=jobs, notebooks=len(subs), isolation=isolation, roster=roster_list,
                      matched=matched, unmatched=unmatched)
    previous = {} if regrade else _previous(out, isolation)
    deny = [p.resolve() for p in submissions] + [out.resolve()]
    records: list[dict[str, Any] | None] = [None] * len(subs)
    todo: list[int] = []
    for i, sub in enumerate(subs):
        sha = sha256_file(sub.path)
        old = previous.get((sub.student, sha))
        if old is not None and old.get("fingerprint") == _current_fingerprint(old.get("notebook")):
            records[i] = old
            summary.reused += 1
        else:
            todo.append(i)

    # One warm fork server per job: the interpreter start-up and the imports of numpy, torch,
    # matplotlib and the course modules are paid once per job, not once per notebook.
    # Preloading only saves time (a module it misses, the worker imports itself), so one
    # submission per file name is enough: a class's copies of a notebook share its imports.
    first_of_name: dict[str, int] = {}
    for i in todo:
        first_of_name.setdefault(subs[i].path.name, i)
    preload = sorted({m for i in first_of_name.values() for m in imports_to_preload(subs[i].path)})
    servers = [ForkServer(preload, extra_exercise_files, jail=jail)
               for _ in range(min(jobs, len(todo)) if warm else 0)]
    free: queue.Queue[ForkServer | None] = queue.Queue()
    for server in servers:
        server.start()
        free.put(server)
    for _ in range(0 if servers else jobs):
        free.put(None)  # cold: a fresh interpreter (or a fresh jail) per notebook

    def work(i: int) -> dict[str, Any]:
        server = free.get()
        try:
            if server is not None:
                server.ready()  # start-up is counted once, not in the first notebook's time
                return grade_notebook(subs[i], timeout=timeout, deny_read=deny,
                                      extra_exercise_files=extra_exercise_files, server=server)
            if jail is None:
                return grade_notebook(subs[i], timeout=timeout, deny_read=deny,
                                      extra_exercise_files=extra_exercise_files)
            with ForkServer(imports_to_preload(subs[i].path), extra_exercise_files, jail=jail) as single:
                return grade_notebook(subs[i], timeout=timeout, extra_exercise_files=extra_exercise_files,
                                      server=single)
        finally:
            free.put(server)

    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for i, rec in zip(todo, pool.map(work, todo), strict=True):
                records[i] = rec
                summary.graded += 1
                summary.per_notebook_seconds.append(float(rec.get("seconds", 0.0)))
    finally:
        for server in servers:
            server.close()
    summary.startup_seconds = max((s.startup_seconds for s in servers), default=0.0)
    final: list[dict[str, Any]] = [rec for rec in records if rec is not None]
    claims: dict[tuple[str, str], list[int]] = {}
    for i, rec in enumerate(final):
        if isinstance(rec.get("notebook"), str):
            claims.setdefault((rec["student"], rec["notebook"]), []).append(i)
    for (student, notebook), which in claims.items():
        if len(which) > 1:  # a conflict for the teacher to settle: no file wins by its name's sort order
            paths = ", ".join(final[i]["path"] for i in which)
            for i in which:
                final[i] = dict(final[i], results=[], conflict=True, errors=[
                    f"conflict: {len(which)} files claim {student}'s {notebook} ({paths}); none is graded "
                    "until one is removed"])
    for rec in final:
        summary.problems += _problems(rec)
    summary.students = len({r["student"] for r in final})
    if roster_list is not None and roster_list.class_list:
        summary.missing = _missing(roster_list, final, _other_files(submissions, roster_list))
    summary.records = final
    summary.seconds = time.perf_counter() - start
    _write_outputs(out, final, summary)
    return summary


def require_jail() -> None:
    """Raise unless the OS jail can be made here (bubblewrap installed)."""
    if bwrap_path() is None:
        raise BNCourseError(
            "bubblewrap is not installed, so submissions cannot be confined: install it "
            "(`apt-get install bubblewrap` on Debian/Ubuntu, `dnf install bubblewrap` on Fedora) or, only for "
            f"code you trust, pass --no-jail (every report is then stamped {NOT_ISOLATED})")


def read_roster(path: Path | Roster) -> list[Submission]:
    """The files a roster names, with their students: every row's ``path`` (relative to the
    roster's folder).  Either kind of roster (:func:`~bncourse.grading.roster.load_roster`:
    a file list ``student,path``, or a class list whose optional ``path`` column names files).

    Raises:
        BNCourseError: the roster cannot be read, lacks a column, has an empty field or
            duplicate students (naming the lines).
    """
    roster = path if isinstance(path, Roster) else load_roster(Path(path))
    return [Submission(e.key, p) for e in roster.entries for p in e.paths]


def _assign_students(
    found: list[Submission], roster: Roster | None
) -> tuple[list[Submission], list[dict[str, str]], list[dict[str, str]]]:
    """``(submissions to grade, matched, unmatched)``: the found files named by a class-list
    roster's students (unmatched ones left out), then the files the roster names itself."""
    if roster is None:
        return found, [], []
    matched: list[dict[str, str]] = []
    unmatched: list[dict[str, str]] = []
    kept = found
    if roster.class_list:
        kept = []
        for sub in found:
            entry, how = roster.match(sub.student)
            if entry is None:
                unmatched.append({"name": sub.student, "path": str(sub.path), "reason": how})
            else:
                kept.append(Submission(entry.key, sub.path))
                matched.append({"name": sub.student, "path": str(sub.path), "student": entry.key, "by": how})
    seen = {(s.student, os.path.abspath(s.path)) for s in kept}  # a file both found and named: graded once
    named = [s for s in read_roster(roster) if (s.student, os.path.abspath(s.path)) not in seen]
    return kept + named, matched, unmatched


def _other_files(submissions: Sequence[Path], roster: Roster) -> dict[str, list[str]]:
    """Files under the SUBMISSION folders that are not notebooks (``hw.pdf``), by the roster
    student they would belong to: named in a missing student's reason, never read."""
    found: dict[str, list[str]] = {}
    for p in submissions:
        if not p.is_dir():
            continue
        for f in sorted(p.rglob("*")):
            rel = f.relative_to(p).parts
            if f.suffix == ".ipynb" or any(part.startswith(".") for part in rel) or f.is_dir():
                continue
            entry, _ = roster.match(rel[0] if len(rel) > 1 else f.stem)
            if entry is not None:
                found.setdefault(entry.key, []).append(str(f))
    return found


def _missing(
    roster: Roster, records: Sequence[dict[str, Any]], others: dict[str, list[str]]
) -> list[dict[str, str]]:
    """The class list's students with no notebook at all (in roster order), with the reason."""
    have = {rec["student"] for rec in records}
    missing = []
    for e in roster.entries:
        if e.key in have:
            continue
        reason = ("no submission: no file found matched this student (by id, email, login or SIS id) "
                  "and the roster names none")
        if e.key in others:
            listed = ", ".join(others[e.key][:5]) + (", ..." if len(others[e.key]) > 5 else "")
            reason = f"no notebook (.ipynb) submitted: only files that are not notebooks, not graded: {listed}"
        missing.append({"student": e.key, "label": e.label, "line": str(e.line), "reason": reason})
    return missing


def imports_to_preload(path: Path) -> list[str]:
    """Modules the notebook's imports cell names that a fork server may import in advance."""
    try:
        _, cells = load_json(path)
        cell = next(c for c in cells if c.get("cell_type") == "code" and "imports" in cell_tags(c))
        return preload_modules(_cell_source(cell))
    except Exception:  # an unreadable notebook is reported when it is graded
        return []


def _current_fingerprint(notebook: Any) -> str | None:
    if not isinstance(notebook, str):
        return None
    return _fingerprint([e for e in all_exercises() if e.notebook == notebook])
