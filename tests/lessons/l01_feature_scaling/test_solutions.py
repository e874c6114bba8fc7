"""bncourse.lessons.l01_feature_scaling.solutions: the instructor's ``standardize`` (training
statistics reused on the test set, constant features, dtype).  ``gd_steps_to_converge`` is
tested in test_experiments.py, where the closed form must give its counts."""

from __future__ import annotations

import numpy as np
import pytest

from bncourse.course.data import make_two_scale_regression
from bncourse.lessons.l01_feature_scaling import experiments as landscape
from bncourse.lessons.l01_feature_scaling import solutions


def test_standardize_uses_training_statistics() -> None:
    rng = np.random.default_rng(7)
    x_train = rng.standard_normal((50, 3)) * [1.0, 10.0, 0.1] + [0.0, 5.0, -3.0]
    x_test = rng.standard_normal((4, 3)) + 100.0
    before = (x_train.copy(), x_test.copy())
    tr, te, _, _ = solutions.standardize(x_train, x_test)
    np.testing.assert_allclose(tr.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(tr.std(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(te, (x_test - x_train.mean(0)) / x_train.std(0), rtol=1e-12)
    assert te.mean() > 10  # the test set's shift is kept, not normalized away
    np.testing.assert_array_equal(x_train, before[0])
    np.testing.assert_array_equal(x_test, before[1])


def test_standardize_constant_feature_and_dtype() -> None:
    x_train = np.array([[1.0, 3.0], [2.0, 3.0], [4.0, 3.0]], dtype=np.float32)
    x_test = np.array([[0.0, 5.0]], dtype=np.float32)
    tr, te, mean, std = solutions.standardize(x_train, x_test)
    assert all(a.dtype == np.float32 for a in (tr, te, mean, std))
    assert not np.isnan(tr).any() and not np.isnan(te).any()
    np.testing.assert_array_equal(tr[:, 1], 0.0)
    assert std[1] == 1.0 and te[0, 1] == pytest.approx(2.0)


def test_standardization_does_not_change_the_least_squares_predictions() -> None:
    x, y = make_two_scale_regression(n=100, scale_ratio=100.0)
    x_new = np.random.default_rng(1).standard_normal((5, 2)) * [1, 100]
    raw = landscape.design_matrix(x_new) @ landscape.least_squares(x, y)
    tr, te, _, _ = solutions.standardize(x, x_new)
    std = landscape.design_matrix(te) @ landscape.least_squares(tr, y)
    np.testing.assert_allclose(raw, std, rtol=1e-9)
