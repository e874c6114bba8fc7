"""``bncourse check NOTEBOOK...``: a student's own summary of every exercise, in one command.

For each notebook it runs what the grader runs — the imports cell and the cells tagged
``exercise``, never the experiments — in a fresh namespace, then ``check``\\ s every
exercise of that notebook the way the check cells do, and prints one line per exercise
and a total.  It is a convenience on the student's own machine, not the class grader:
there is no sandbox (it is the student's own code) and nothing is written.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bncourse.errors import NotebookError
from bncourse.grading.check import check
from bncourse.grading.evaluate import ExerciseResult
from bncourse.grading.registry import exercises_for_notebook
from bncourse.notebook_file import graded_cells, read

__all__ = ["NotebookSummary", "check_notebook", "format_summary", "notebook_stem"]


@dataclass
class NotebookSummary:
    """The results of one notebook's exercises, or why it could not be checked."""

    path: Path
    notebook: str
    results: list[ExerciseResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def points(self) -> float:
        return sum(r.points for r in self.results)

    @property
    def max_points(self) -> int:
        return sum(r.max_points for r in self.results)


def notebook_stem(path: Path, nb: Any) -> str:
    """The course notebook a file is: its ``bncourse.notebook`` metadata, else its file name."""
    meta = nb.metadata.get("bncourse", {}) if hasattr(nb, "metadata") else {}
    stem = meta.get("notebook") if isinstance(meta, dict) else None
    return stem if isinstance(stem, str) and stem else path.stem


def check_notebook(path: Path) -> NotebookSummary:
    """Run the imports and exercise cells of ``path`` and check each of its exercises."""
    try:
        nb = read(path)
    except NotebookError as exc:
        return NotebookSummary(path, path.stem, errors=[str(exc)])
    summary = NotebookSummary(path, notebook_stem(path, nb))
    exercises = exercises_for_notebook(summary.notebook)
    if not exercises:
        summary.errors.append(f"{path.name} is not a course notebook (no exercises for {summary.notebook!r})")
        return summary
    namespace: dict[str, Any] = {"__name__": "__main__"}
    for index, kind, source in graded_cells(nb.cells):
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(source, f"<{path.name} cell {index}>", "exec"), namespace)
        except Exception as exc:
            where = "the imports cell" if kind == "imports" else f"cell {index}"
            summary.errors.append(f"{where} raised {type(exc).__name__}: {exc}")
            if kind == "imports":
                return summary
    for ex in exercises:
        fn = namespace.get(ex.name)
        if fn is None:
            summary.results.append(ExerciseResult(ex.id, passed=False, points=0.0, max_points=ex.points,
                                                  status="missing", messages=[f"{ex.name} is not defined"]))
            continue
        summary.results.append(check(ex.id, fn, verbose=False, namespace=namespace))
    return summary


def format_summary(summaries: Sequence[NotebookSummary]) -> str:
    """One line per exercise (✓/✗, points, the diagnosis), a subtotal per notebook, a total."""
    lines: list[str] = []
    for s in summaries:
        lines.append(f"{s.notebook}  {s.points:g}/{s.max_points}")
        lines += [f"  ! {e.splitlines()[0]}" for e in s.errors]
        for r in s.results:
            mark = "✓" if r.passed else "✗"
            why = "" if r.passed else f"  — {r.messages[0] if r.messages else r.status.replace('_', ' ')}"
            if r.status == "not_implemented":
                why = "  — not implemented yet"
            lines.append(f"  {mark} {r.exercise_id:<26} {r.points:g}/{r.max_points}{why}")
    total = sum(s.points for s in summaries)
    most = sum(s.max_points for s in summaries)
    lines.append(f"total  {total:g}/{most}")
    return "\n".join(lines)
