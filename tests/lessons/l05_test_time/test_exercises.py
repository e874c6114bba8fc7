"""Notebook 05's exercises: solutions pass, mutants get their diagnosis, the reference matches torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bncourse.grading import check
from bncourse.grading.registry import exercises_for_notebook, get_exercise
from bncourse.lessons.l05_test_time import solutions
from tests import exercise_helpers
from tests.lessons.l05_test_time.mutants import CORRECT, MUTANTS

IDS = ("population_stats", "batchnorm_inference", "BatchNorm1d")


def test_exercises_registered_for_notebook_05() -> None:
    assert {e.id for e in exercises_for_notebook("05_test_time")} == set(IDS)
    assert get_exercise("BatchNorm1d").name == "BatchNorm1d"
    assert get_exercise("batchnorm_inference").name == "batchnorm_inference"


test_solution_gets_full_points = exercise_helpers.solutions_get_full_points(IDS, "05_test_time")
test_each_mistake_is_diagnosed_by_its_own_message = exercise_helpers.mistakes_diagnose_themselves(
    {exercise_id: get_exercise(exercise_id).mistakes for exercise_id in IDS}
)
test_mutant_fails_with_diagnosis = exercise_helpers.mutants_are_diagnosed(MUTANTS)
test_correct_alternative_gets_full_points = exercise_helpers.correct_versions_get_full_points(CORRECT)


def test_bn_module_float32_output_dtype_is_checked() -> None:
    """A module that returns float64 for float32 input fails with the dtype diagnosis."""

    from tests.lessons.l05_test_time.mutants import BNCorrect  # a student's correct module

    class Float64Out(BNCorrect):  # type: ignore[misc, valid-type]
        def forward(self, x):  # type: ignore[no-untyped-def]
            return np.asarray(super().forward(x), dtype=np.float64)

    result = check("BatchNorm1d", Float64Out, verbose=False)
    assert not result.passed
    assert "dtype" in (result.diagnosis or "")


def test_forbidden_imports_are_rejected() -> None:
    def population_stats(batches):  # type: ignore[no-untyped-def]
        return torch.cat([torch.from_numpy(b) for b in batches]).mean(0).numpy(), None

    result = check("population_stats", population_stats, verbose=False)
    assert result.status == "forbidden" and result.points == 0


def test_using_the_package_solution_is_forbidden() -> None:
    def population_stats(batches):  # type: ignore[no-untyped-def]
        return solutions.population_stats(batches)

    result = check("population_stats", population_stats, verbose=False)
    assert result.status == "forbidden" and result.points == 0


@pytest.mark.parametrize("momentum", [0.1, 0.25, None])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_reference_module_matches_torch_over_batches_train_and_eval(momentum: float | None, dtype: type) -> None:
    """The solution of BatchNorm1d (bncourse.reference.BatchNorm1d) follows torch.nn.BatchNorm1d."""
    rng = np.random.default_rng(7)
    D = 4
    # torch in float64 as the oracle: its own float32 kernel loses ~1e-4 on a batch of 2 with
    # a large mean (E[x²] − E[x]² cancels), the reference does not
    ours = get_exercise("BatchNorm1d").solution.resolve()(D, momentum=momentum)
    theirs = torch.nn.BatchNorm1d(D, momentum=momentum, dtype=torch.float64)
    gamma, beta = rng.uniform(0.5, 2.0, D), rng.normal(size=D)
    ours.weight, ours.bias = gamma.copy(), beta.copy()
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(gamma))
        theirs.bias.copy_(torch.from_numpy(beta))
    tol = {"rtol": 1e-10, "atol": 1e-12} if dtype == np.float64 else {"rtol": 1e-5, "atol": 1e-5}
    for step, n in enumerate([8, 5, 12, 3, 7, 2], start=1):
        x = (step + rng.normal(0.0, 2.0, size=(n, D))).astype(dtype)
        out = ours.forward(x)
        t_out = theirs(torch.from_numpy(x.astype(np.float64))).detach().numpy()
        assert out.dtype == dtype
        np.testing.assert_allclose(out, t_out, **tol, err_msg=f"train out, step {step}")
        np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), **tol, err_msg=f"running_mean {step}")
        np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), **tol, err_msg=f"running_var {step}")
        assert ours.num_batches_tracked == int(theirs.num_batches_tracked) == step
    ours.eval()
    theirs.eval()
    x = rng.normal(size=(5, D)).astype(dtype)
    x64 = torch.from_numpy(x.astype(np.float64))
    np.testing.assert_allclose(ours.forward(x), theirs(x64).detach().numpy(), **tol, err_msg="eval")
    np.testing.assert_allclose(ours.forward(x[:1]), theirs(x64[:1]).detach().numpy(), **tol)
    assert ours.num_batches_tracked == int(theirs.num_batches_tracked) == 6


test_hint_ladder_and_contract_only_exercise_cell = exercise_helpers.hint_ladders(IDS, "05_test_time")
