"""``check(exercise_id, fn)``: instant, specific feedback inside a notebook.

The check runs the student's function on the exercise's seeded cases, compares with the
reference, prints one line per case and, when it recognises the mistake, a one-sentence
diagnosis.  It never raises because of the student's code: exceptions are caught and
shown with a traceback trimmed to the student's own cells.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from bncourse.grading.evaluate import ExerciseResult, evaluate
from bncourse.grading.registry import get_exercise
from bncourse.grading.runner import forbidden_uses, run_cases

__all__ = ["best_available", "check", "format_result", "passed_checks"]

_PASSED: dict[str, bool] = {}


def format_result(result: ExerciseResult, tracebacks: dict[str, str] | None = None) -> str:
    """The compact text ``check`` prints: a header, one line per case, the diagnosis."""
    n_pass = sum(c.passed for c in result.cases)
    if result.status == "not_implemented":
        return f"{result.exercise_id}: not implemented yet — fill in the function, then run this cell again."
    head = (
        f"{result.exercise_id}: {n_pass}/{len(result.cases)} cases passed — "
        f"{result.points:g}/{result.max_points} points"
    )
    if result.status == "forbidden":
        head = f"{result.exercise_id}: not accepted — 0/{result.max_points} points"
        return head + "\n  ✗ " + "\n  ✗ ".join(result.messages)
    lines = [head]
    width = max((len(c.case) for c in result.cases), default=0)
    for c in result.cases:
        mark = "✓" if c.passed else "✗"
        err = f"max rel err {c.max_rel_error:.1e}" if c.max_rel_error is not None else ""
        detail = err if c.passed else (c.message or err)
        lines.append(f"  {mark} {c.case:<{width}}  {detail}".rstrip())
    if result.diagnosis:
        lines.append(f"  → {result.diagnosis}")
    shown = next(iter((tracebacks or {}).values()), "")
    if shown and not result.passed:
        lines.append("  Your code raised (first failing case):")
        lines += ["    " + ln for ln in shown.splitlines()]
    if result.passed:
        lines.append("  All cases match the reference. Well done!")
    return "\n".join(lines)


def check(exercise_id: str, fn: Callable[..., Any], *, verbose: bool = True) -> ExerciseResult:
    """Check ``fn`` against exercise ``exercise_id`` and print the verdict.

    Args:
        exercise_id: e.g. ``"bn_forward"``; an unknown id raises ``ExerciseError``
            listing the valid ones (that is a typo in the notebook, not a student error).
        fn: the student's function or class.
        verbose: print the result (default True).

    Returns:
        An :class:`ExerciseResult` with ``passed``, ``points``, ``max_points``,
        ``messages``, ``max_rel_error`` and ``worst_output``.
    """
    exercise = get_exercise(exercise_id)
    bad = forbidden_uses(fn, exercise.forbidden)
    if bad:
        result = ExerciseResult(exercise_id, passed=False, points=0.0, max_points=exercise.points, status="forbidden")
        result.messages.append(
            f"{exercise.name} uses {', '.join(bad)}; this exercise asks you to compute it yourself with NumPy."
        )
    else:
        frame = inspect.currentframe()
        caller = frame.f_back.f_globals if frame is not None and frame.f_back is not None else {}
        raws = run_cases(exercise, fn, caller)
        result = evaluate(exercise, raws)
        tracebacks = {r.case: r.traceback for r in raws if r.traceback}
    _PASSED[exercise_id] = result.passed
    if verbose:
        print(format_result(result, tracebacks if not bad else None))
    return result


def passed_checks() -> dict[str, bool]:
    """Exercise id -> whether its last ``check`` in this kernel passed."""
    return dict(_PASSED)


def best_available(exercise_id: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` if it passed its check in this kernel, else the reference solution.

    The experiments after an exercise call this, so a student who is stuck still sees
    them; it prints which implementation is used.
    """
    exercise = get_exercise(exercise_id)
    if _PASSED.get(exercise_id):
        print(f"[{exercise_id}] using your {exercise.name} (it passed its check)")
        return fn
    print(f"[{exercise_id}] using the reference {exercise.name} (yours has not passed its check yet)")
    return exercise.solution
