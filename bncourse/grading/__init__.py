"""Grading: instant checks in notebooks and the sandboxed class grader.

``check(exercise_id, fn)`` is what a notebook calls after each exercise; the exercise
registry (:mod:`bncourse.grading.registry`) says what each id means; the class grader
(``bncourse grade``) runs submissions in sandboxed subprocesses and compares their
outputs in the grading process.
"""

from __future__ import annotations

from bncourse.grading.check import best_available, best_pair, check, hint, passed_checks
from bncourse.grading.evaluate import CaseResult, ExerciseResult
from bncourse.grading.registry import (
    Case,
    ContractError,
    Exercise,
    Mistake,
    all_exercises,
    exercise_ids,
    exercises_for_notebook,
    get_exercise,
    register,
)

__all__ = [
    "Case",
    "CaseResult",
    "ContractError",
    "Exercise",
    "ExerciseResult",
    "Mistake",
    "all_exercises",
    "best_available",
    "best_pair",
    "check",
    "exercise_ids",
    "exercises_for_notebook",
    "get_exercise",
    "hint",
    "passed_checks",
    "register",
]
