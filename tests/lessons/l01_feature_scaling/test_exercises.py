"""Notebook 01's exercises: solutions pass, every mistake and mutant is diagnosed, correct
alternatives get full points, and the cases cover what they claim to cover."""

from __future__ import annotations

import numpy as np
import pytest

from bncourse.grading import check
from bncourse.lessons.l01_feature_scaling import exercises as ex
from bncourse.lessons.l01_feature_scaling import experiments as landscape
from bncourse.lessons.l01_feature_scaling import solutions
from tests import exercise_helpers
from tests.lessons.l01_feature_scaling import mutants

IDS = ("standardize", "gd_steps_to_converge")

test_solution_gets_full_points = exercise_helpers.solutions_get_full_points(IDS, "01_feature_scaling")
test_mutant_is_diagnosed = exercise_helpers.mutants_are_diagnosed(mutants.MUTANTS)
test_correct_alternative_gets_full_points = exercise_helpers.correct_versions_get_full_points(mutants.CORRECT)
test_every_mistake_fails_and_diagnoses_itself = exercise_helpers.mistakes_diagnose_themselves(
    {"standardize": ex.STANDARDIZE_MISTAKES, "gd_steps_to_converge": ex.GD_MISTAKES}
)


def test_using_the_package_solution_is_forbidden() -> None:
    def standardize(x_train, x_test, eps=1e-8):
        return solutions.standardize(x_train, x_test, eps)

    result = check("standardize", standardize, verbose=False)
    assert result.status == "forbidden" and result.points == 0


def test_standardize_cases_cover_the_contract() -> None:
    cases = ex.standardize_cases()
    dtypes = {c.inputs["x_train"].dtype for c in cases}
    assert dtypes == {np.dtype(np.float32), np.dtype(np.float64)}
    shapes = [c.inputs["x_train"].shape for c in cases]
    assert any(s[0] == 2 for s in shapes) and any(s[1] == 1 for s in shapes)
    assert any(c.inputs["x_test"].shape[0] == 1 for c in cases)
    const = [c for c in cases if np.any(c.inputs["x_train"].std(axis=0) == 0)]
    assert const, "a case with an exactly constant training feature"
    # ... whose test column varies, so that the zero-variance policy is visible on the test set
    c = const[0]
    j = int(np.flatnonzero(c.inputs["x_train"].std(axis=0) == 0)[0])
    assert np.ptp(c.inputs["x_test"][:, j]) > 0


def test_gd_cases_are_cheap_and_cover_the_contract() -> None:
    cases = ex.gd_cases()
    counts = [solutions.gd_steps_to_converge(**c.inputs) for c in cases]
    assert 0 in counts and -1 in counts
    assert max(counts) <= 1000, counts  # a student's loop grades in well under a second
    assert sum(max(c, 0) for c in counts) <= 3000
    diverging = next(c for c in cases if "diverges" in c.name)
    assert diverging.inputs["lr"] > landscape.max_stable_lr(diverging.inputs["x"])
    assert {c.inputs["x"].dtype for c in cases} == {np.dtype(np.float32), np.dtype(np.float64)}


@pytest.mark.parametrize("case", ex.gd_cases(), ids=lambda c: c.name)
def test_gd_counts_are_robust_to_rounding(case: object) -> None:
    """The count does not sit on a knife's edge: a float32 computation or a slightly
    different tolerance gives the same number (so correct students are not failed by
    rounding)."""
    inp = dict(case.inputs)  # type: ignore[attr-defined]
    base = solutions.gd_steps_to_converge(**inp)
    if base <= 0:
        return
    for factor in (1 - 1e-9, 1 + 1e-9):
        inp2 = dict(inp, tol=inp["tol"] * factor)
        assert solutions.gd_steps_to_converge(**inp2) == base
    assert mutants.gd_elementwise(**inp) == base


def test_using_the_closed_form_step_count_is_forbidden() -> None:
    def gd_steps_to_converge(x, y, lr, tol=1e-6, max_steps=100_000):
        return landscape.gd_steps_closed_form(x, y, lr, tol, max_steps)

    result = check("gd_steps_to_converge", gd_steps_to_converge, verbose=False)
    assert result.status == "forbidden" and result.points == 0


test_hint_ladder_and_contract_only_exercise_cell = exercise_helpers.hint_ladders(IDS, "01_feature_scaling")
