"""Notebook 09's exercises: solutions pass, mistakes and mutants are diagnosed."""

from __future__ import annotations

from bncourse.grading import get_exercise
from tests import exercise_helpers
from tests.lessons.l09_bn_in_modern_practice import mutants

NOTEBOOK = "09_bn_in_modern_practice"
IDS = ("rmsnorm_forward", "ghost_batchnorm_forward", "weight_standardize")

test_mutant_is_diagnosed = exercise_helpers.mutants_are_diagnosed(mutants.MUTANTS)
test_correct_alternative_gets_full_points = exercise_helpers.correct_versions_get_full_points(mutants.CORRECT)
test_reference_solution_gets_full_points = exercise_helpers.solutions_get_full_points(IDS, NOTEBOOK)
test_hint_ladder_and_contract_only_exercise_cell = exercise_helpers.hint_ladders(IDS, NOTEBOOK)
test_every_mistake_fails_and_diagnoses_itself = exercise_helpers.mistakes_diagnose_themselves(
    {exercise_id: get_exercise(exercise_id).mistakes for exercise_id in IDS}
)
