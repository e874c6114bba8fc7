"""Notebook 07's exercises: solutions pass, mistakes and mutants are diagnosed; the lesson's
layout (solutions re-exported, mistakes apart, both forbidden, no torch behind the
declarations)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bncourse.grading import get_exercise
from bncourse.grading.runner import is_lesson_internal
from bncourse.lessons.l07_alternatives_and_caveats import exercises as ex
from bncourse.lessons.l07_alternatives_and_caveats import mistakes, solutions
from tests import exercise_helpers
from tests.lessons.l07_alternatives_and_caveats import mutants

NOTEBOOK = "07_alternatives_and_caveats"
IDS = ("layernorm_forward", "layernorm_backward", "groupnorm_forward", "batch_renorm_forward")

test_mutant_is_diagnosed = exercise_helpers.mutants_are_diagnosed(mutants.MUTANTS)
test_correct_alternative_gets_full_points = exercise_helpers.correct_versions_get_full_points(mutants.CORRECT)
test_reference_solution_gets_full_points = exercise_helpers.solutions_get_full_points(IDS, NOTEBOOK)
test_every_mistake_fails_and_diagnoses_itself = exercise_helpers.mistakes_diagnose_themselves(
    {exercise_id: get_exercise(exercise_id).mistakes for exercise_id in IDS}
)


@pytest.mark.parametrize("exercise_id", IDS)
def test_solution_is_the_lesson_solution_and_forbidden(exercise_id: str) -> None:
    """The registered solution is ``solutions.<id>``; the lesson's solutions and mistakes
    are forbidden to the student, as are the libraries that do the computation."""
    exercise = get_exercise(exercise_id)
    assert exercise.solution is getattr(solutions, exercise_id)
    assert exercise_id in solutions.__all__
    for module in ("torch", "bncourse.reference", "bncourse.nn", "sklearn"):
        assert module in exercise.forbidden
    assert is_lesson_internal(solutions.__name__) and is_lesson_internal(mistakes.__name__)


def test_exercises_import_neither_torch_nor_matplotlib() -> None:
    code = (f"import sys, {ex.__name__}; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'matplotlib'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
