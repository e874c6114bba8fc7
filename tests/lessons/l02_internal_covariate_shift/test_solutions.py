"""bncourse.lessons.l02_internal_covariate_shift.solutions: the instructor's
``activation_percentiles`` and ``gradient_predictiveness``."""

from __future__ import annotations

import numpy as np
import pytest

from bncourse.errors import ShapeError
from bncourse.lessons.l02_internal_covariate_shift import solutions


def test_activation_percentiles_matches_numpy_per_unit() -> None:
    z = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    p = solutions.activation_percentiles(z)
    assert p.shape == (3, 3) and p.dtype == np.float32
    np.testing.assert_allclose(p[:, 2], np.percentile(z[:, 2], [15, 50, 85]), rtol=1e-6)
    with pytest.raises(ShapeError, match=r"shape \(N, D\), got shape \(40,\)"):
        solutions.activation_percentiles(z[:, 0])


def test_gradient_predictiveness_of_a_quadratic_is_linear_in_eta() -> None:
    A = np.diag([1.0, 4.0])
    w = np.array([1.0, -2.0])
    etas = np.array([0.1, 0.2, 0.4])
    d = solutions.gradient_predictiveness(lambda v: A @ v, w, etas)
    np.testing.assert_allclose(d, etas * np.linalg.norm(A @ (A @ w)), rtol=1e-12)
