"""Notebook 04's experiments: sigmoid linearity, saturation, BN as a diagonal layer and the γ/β
widget (the solutions are tested in test_solutions.py, the exercises in test_exercises.py)."""

from __future__ import annotations

import numpy as np

from bncourse.lessons.l04_gamma_beta import experiments as ss
from bncourse.reference import batchnorm_inference


def test_sigmoid_is_nearly_linear_on_normalized_inputs() -> None:
    r2 = ss.sigmoid_linearity([0.5, 1.0, 4.0])
    assert r2[0] > r2[1] > r2[2]
    assert r2[1] > 0.97 and r2[2] < 0.9


def test_saturated_fraction() -> None:
    assert ss.saturated_fraction(np.array([0.0, 0.5])) == 0.0
    assert ss.saturated_fraction(np.array([-5.0, 5.0, 0.0, 0.0])) == 0.5


def test_bn_as_linear_is_diagonal_and_equals_inference() -> None:
    rng = np.random.default_rng(1)
    d = 5
    gamma, beta = rng.uniform(0.5, 2, d), rng.normal(size=d)
    mean, var = rng.normal(size=d), rng.uniform(0.5, 2, d)
    W, b = ss.bn_as_linear(gamma, beta, mean, var)
    assert np.count_nonzero(W - np.diag(np.diag(W))) == 0
    x = rng.normal(size=(7, d))
    np.testing.assert_allclose(x @ W.T + b, batchnorm_inference(x, gamma, beta, mean, var), rtol=0, atol=1e-12)


def test_gamma_beta_widget_redraws() -> None:
    import matplotlib

    matplotlib.use("Agg")
    z = np.random.default_rng(4).normal(size=500) * 3 + 1
    w = ss.gamma_beta_widget(z)
    f1, f2 = w.draw(1.0, 0.0), w.draw(4.0, 2.0)
    h1 = [p.get_height() for p in f1.axes[0].patches]
    h2 = [p.get_height() for p in f2.axes[0].patches]
    assert h1 != h2
    import re

    pct = [int(re.search(r"(\d+) % saturated", f.axes[0].get_title()).group(1)) for f in (f1, f2)]
    assert pct[0] <= 2 and pct[1] >= 30, pct
