"""bncourse.lessons.l05_test_time.solutions: the instructor's ``population_stats`` (the
re-exported ``batchnorm_inference`` and ``BatchNorm1d`` are tested with bncourse.reference
and in test_exercises.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bncourse.errors import BatchSizeError, BNCourseError, DTypeError, ShapeError
from bncourse.lessons.l05_test_time import solutions

# ---------------------------------------------------------------------------- population_stats


def _drifting(rng: np.random.Generator, sizes: list[int], D: int = 3) -> list[np.ndarray]:
    return [i * 0.7 + rng.normal(0.0, 1.0 + 0.2 * i, size=(n, D)) for i, n in enumerate(sizes)]


def test_population_stats_equals_concatenated_statistics() -> None:
    batches = _drifting(np.random.default_rng(0), [60, 7, 33, 2])
    mean, var = solutions.population_stats(batches)
    allx = np.concatenate(batches)
    np.testing.assert_allclose(mean, allx.mean(0), rtol=1e-13, err_msg="population mean")
    np.testing.assert_allclose(var, allx.var(0, ddof=1), rtol=1e-13, err_msg="population var (unbiased)")


def test_population_stats_is_not_the_mean_of_batch_variances() -> None:
    """Law of total variance: with drifting batch means the population variance is larger."""
    batches = _drifting(np.random.default_rng(1), [50] * 10)
    _, var = solutions.population_stats(batches)
    avg = np.mean([b.var(0, ddof=1) for b in batches], axis=0)
    assert np.all(var > avg * 1.2), (var, avg)
    n = sum(len(b) for b in batches)
    mean = np.concatenate(batches).mean(0)
    within = sum((len(b) - 1) * b.var(0, ddof=1) for b in batches)
    between = sum(len(b) * (b.mean(0) - mean) ** 2 for b in batches)
    np.testing.assert_allclose(var, (within + between) / (n - 1), rtol=1e-12)


def test_population_stats_matches_torch_full_batch_pass_with_momentum_one() -> None:
    batches = _drifting(np.random.default_rng(2), [20, 30, 11])
    mean, var = solutions.population_stats(batches)
    bn = torch.nn.BatchNorm1d(3, momentum=1.0, dtype=torch.float64)
    bn(torch.from_numpy(np.concatenate(batches)))
    np.testing.assert_allclose(mean, bn.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(var, bn.running_var.numpy(), rtol=1e-12)


def test_population_stats_float32_large_mean_is_accurate_and_keeps_dtype() -> None:
    rng = np.random.default_rng(3)
    batches = [(1e3 + rng.standard_normal((64, 4))).astype(np.float32) for _ in range(8)]
    mean, var = solutions.population_stats(batches)
    assert mean.dtype == var.dtype == np.float32
    exact = np.concatenate([b.astype(np.float64) for b in batches]).var(0, ddof=1)
    np.testing.assert_allclose(var, exact, rtol=1e-5)


@pytest.mark.parametrize(
    ("batches", "error"),
    [
        ([], ShapeError),
        ([np.zeros((3, 2)), np.zeros((3, 4))], ShapeError),
        ([np.zeros(3)], ShapeError),
        ([np.zeros((3, 2), dtype=np.int64)], DTypeError),
        ([np.zeros((1, 2))], BatchSizeError),
    ],
)
def test_population_stats_rejects_bad_input(batches: list[np.ndarray], error: type) -> None:
    with pytest.raises(error):
        solutions.population_stats(batches)
    assert issubclass(error, BNCourseError) and issubclass(error, ValueError)
