"""Notebooks 01, 02 and 05's statistics and optimization stand-ins against the solutions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bncourse import oracle
from bncourse.errors import BatchSizeError, DTypeError, ParameterError, ShapeError
from bncourse.lessons.l01_feature_scaling import solutions as l01
from bncourse.lessons.l02_internal_covariate_shift import solutions as l02
from bncourse.lessons.l05_test_time import solutions as l05

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)
TOL64 = 1e-10


def assert_close(ours, theirs, tol=TOL64):
    for a, b in zip(ours, theirs, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=0, atol=tol)


@SETTINGS
@given(n=st.integers(1, 20), m=st.integers(1, 5), d=st.integers(1, 4), seed=st.integers(0, 2**32 - 1),
       constant=st.booleans())
def test_standardize_matches_the_solution(n, m, d, seed, constant):
    rng = np.random.default_rng(seed)
    x_train, x_test = rng.standard_normal((n, d)) * 3 + 1, rng.standard_normal((m, d))
    if constant:
        x_train[:, 0] = 2.5
    assert_close(oracle.standardize(x_train, x_test), l01.standardize(x_train, x_test))


def test_standardize_float32():
    rng = np.random.default_rng(1)
    x, t = rng.standard_normal((9, 3)).astype(np.float32), rng.standard_normal((2, 3)).astype(np.float32)
    assert_close(oracle.standardize(x, t), l01.standardize(x, t), tol=1e-5)


@pytest.mark.parametrize("seed", range(6))
def test_gd_steps_match_the_solution_exactly(seed):
    rng = np.random.default_rng(seed)
    n, d = rng.integers(2, 40), rng.integers(1, 4)
    x = rng.standard_normal((n, d)) * rng.uniform(0.5, 4.0, d) + rng.uniform(-1, 1, d)
    y = x @ rng.standard_normal(d) + 0.1 * rng.standard_normal(n)
    xt = np.hstack([x, np.ones((n, 1))])
    lam = np.linalg.eigvalsh(xt.T @ xt / n)[-1]
    for lr in (0.3 / lam, 1.0 / lam, 2.1 / lam):  # the last one diverges
        for dtype in (np.float64, np.float32):
            args = (x.astype(dtype), y.astype(dtype), lr, 1e-6, 3000)
            assert oracle.gd_steps_to_converge(*args) == l01.gd_steps_to_converge(*args)
    assert oracle.gd_steps_to_converge(x, y, 1.0 / lam, 1e-6, 2) == -1  # too few steps


def test_gd_errors():
    with pytest.raises(ShapeError, match="y must have shape"):
        oracle.gd_steps_to_converge(np.ones((3, 2)), np.ones(2), 0.1)
    with pytest.raises(ParameterError, match="lr must be a finite number > 0"):
        oracle.gd_steps_to_converge(np.ones((3, 2)), np.ones(3), -0.1)


@SETTINGS
@given(N=st.integers(1, 30), D=st.integers(1, 4), seed=st.integers(0, 2**32 - 1),
       qs=st.lists(st.floats(0.0, 100.0), min_size=1, max_size=4))
def test_activation_percentiles_match_the_solution(N, D, seed, qs):
    z = 10.0 * np.random.default_rng(seed).standard_normal((N, D)) + 5.0
    assert_close([oracle.activation_percentiles(z, qs)], [l02.activation_percentiles(z, qs)])


def test_activation_percentiles_float32_and_errors():
    z = np.random.default_rng(0).standard_normal((11, 3)).astype(np.float32)
    assert_close([oracle.activation_percentiles(z)], [l02.activation_percentiles(z)], tol=1e-6)
    with pytest.raises(ShapeError, match=r"expects z of shape \(N, D\)"):
        oracle.activation_percentiles(np.ones(4))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gradient_predictiveness_matches_the_solution(dtype):
    rng = np.random.default_rng(3)
    A, b = rng.standard_normal((7, 5)).astype(dtype), rng.standard_normal(7).astype(dtype)

    def grad_fn(w):
        return A.T @ np.tanh(A @ w - b) + dtype(0.1) * w

    w, etas = rng.standard_normal(5).astype(dtype), np.geomspace(0.01, 3.0, 6).astype(dtype)
    ours = oracle.gradient_predictiveness(grad_fn, w, etas)
    assert ours.dtype == dtype
    assert_close([ours], [l02.gradient_predictiveness(grad_fn, w, etas)], TOL64 if dtype == np.float64 else 1e-5)


@SETTINGS
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=3), seed=st.integers(0, 2**32 - 1),
       threshold=st.sampled_from([0.01, 0.05, 0.1, 0.2, 0.25]))
def test_saturated_fraction_matches_the_solution(shape, seed, threshold):
    z = 5.0 * np.random.default_rng(seed).standard_normal(shape)
    ours = oracle.saturated_fraction(z, threshold)
    assert isinstance(ours, float)
    assert ours == l02.saturated_fraction(z, threshold)


@SETTINGS
@given(sizes=st.lists(st.integers(1, 12), min_size=1, max_size=5).filter(lambda s: sum(s) >= 2),
       D=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
def test_population_stats_match_the_solution(sizes, D, seed):
    rng = np.random.default_rng(seed)
    batches = [rng.standard_normal((n, D)) * 2 + i for i, n in enumerate(sizes)]
    assert_close(oracle.population_stats(batches), l05.population_stats(batches))


def test_population_stats_float32_and_errors():
    rng = np.random.default_rng(0)
    batches = [(1e3 + rng.standard_normal((16, 3))).astype(np.float32) for _ in range(3)]
    assert_close(oracle.population_stats(batches), l05.population_stats(batches), tol=1e-4)
    with pytest.raises(ShapeError, match="got an empty sequence"):
        oracle.population_stats([])
    with pytest.raises(DTypeError, match="batches must be floating point"):
        oracle.population_stats([np.ones((2, 2), dtype=int)])
    with pytest.raises(BatchSizeError, match="at least 2 rows, got 1"):
        oracle.population_stats([np.ones((1, 2))])
