"""Notebook 04's exercises: the mutant catalogue of its exercises is diagnosed and the correct
alternatives get full points."""

from __future__ import annotations

from tests import exercise_helpers
from tests.lessons.l04_gamma_beta import mutants

test_nb04_mutants_are_diagnosed = exercise_helpers.mutants_are_diagnosed(mutants.MUTANTS)
test_nb04_correct_alternatives_pass = exercise_helpers.correct_versions_get_full_points(mutants.CORRECT)


test_every_exercise_has_a_hint_ladder = exercise_helpers.hint_ladders(
    ("recover_identity", "bias_grad_through_bn", "scale_invariance_check"), "04_gamma_beta")
