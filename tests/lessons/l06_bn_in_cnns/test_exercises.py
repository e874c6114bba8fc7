"""Notebook 06's exercises: solutions pass, mistakes and mutants are diagnosed, the backward
uses the student's own forward; (the lesson's layout is checked for every lesson in
tests/test_architecture.py)."""

from __future__ import annotations

import pytest

from bncourse.grading import check
from bncourse.lessons.l06_bn_in_cnns import exercises as ex
from tests import exercise_helpers
from tests.lessons.l06_bn_in_cnns import mutants

NOTEBOOK = "06_bn_in_cnns"
IDS = ("spatial_batchnorm_forward", "spatial_batchnorm_backward", "fold_batchnorm")

test_solution_gets_full_points = exercise_helpers.solutions_get_full_points(IDS, NOTEBOOK)
test_every_mistake_fails_and_diagnoses_itself = exercise_helpers.mistakes_diagnose_themselves({
    "spatial_batchnorm_forward": ex.FORWARD_MISTAKES,
    "spatial_batchnorm_backward": ex.BACKWARD_MISTAKES,
    "fold_batchnorm": ex.FOLD_MISTAKES,
})


@pytest.mark.parametrize(("exercise_id", "diagnosis", "impl"), mutants.MUTANTS,
                         ids=[f"{e}-{i.__name__}" for e, _, i in mutants.MUTANTS])
def test_spatial_mutants_get_their_diagnosis(exercise_id: str, diagnosis: str, impl: object) -> None:
    result = check(exercise_id, impl, verbose=False, namespace={})  # type: ignore[arg-type]
    assert not result.passed
    said = " ".join(result.messages + [c.diagnosis or "" for c in result.cases])
    assert diagnosis.lower() in said.lower(), said


@pytest.mark.parametrize(("exercise_id", "impl"), mutants.CORRECT,
                         ids=[f"{e}-{i.__name__}" for e, i in mutants.CORRECT])
def test_spatial_correct_versions_pass(exercise_id: str, impl: object) -> None:
    result = check(exercise_id, impl, verbose=False, namespace={})  # type: ignore[arg-type]
    assert result.passed and result.points == result.max_points


def test_backward_is_checked_with_the_students_forward() -> None:
    result = check("spatial_batchnorm_backward", mutants.backward_staged, verbose=False,
                   namespace={"spatial_batchnorm_forward": mutants.forward_reshape_only})
    assert not result.passed
    assert "spatial_batchnorm_forward" in " ".join(result.messages)


test_hint_ladder_and_contract_only_exercise_cell = exercise_helpers.hint_ladders(IDS, NOTEBOOK)
