"""Notebook 04's package code: identity parameters, BN as a diagonal layer, bias redundancy,
scale invariance, the γ/β widget, and the mutant catalogue of its exercises."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bncourse.errors import ShapeError
from bncourse.lessons.l04_gamma_beta import experiments as ss
from bncourse.reference import batchnorm_forward, batchnorm_inference
from tests import exercise_helpers
from tests.lessons.l04_gamma_beta import mutants


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_identity_params_recover_input(dtype: type) -> None:
    x = (np.random.default_rng(0).normal(size=(10, 4)) * 3 + 7).astype(dtype)
    gamma, beta = ss.identity_params(x)
    out, _ = batchnorm_forward(x, gamma, beta)
    assert gamma.dtype == dtype
    np.testing.assert_allclose(out, x, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)
    with pytest.raises(ShapeError, match=r"expects x of shape \(N, D\), got shape \(3,\)"):
        ss.identity_params(np.zeros(3))


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


def test_bias_gradient_vanishes_and_matches_torch() -> None:
    rng = np.random.default_rng(2)
    x, W, b = rng.normal(size=(9, 4)), rng.normal(size=(3, 4)), rng.normal(size=3)
    gamma, beta, dout = rng.uniform(0.5, 2, 3), rng.normal(size=3), rng.normal(size=(9, 3))
    dW, db = ss.bias_grad_through_bn(x, W, b, gamma, beta, dout)
    np.testing.assert_allclose(db, 0.0, atol=1e-12)
    Wt = torch.tensor(W, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    z = torch.tensor(x) @ Wt.T + bt
    y = torch.nn.functional.batch_norm(z, None, None, torch.tensor(gamma), torch.tensor(beta), training=True)
    (y * torch.tensor(dout)).sum().backward()
    np.testing.assert_allclose(dW, Wt.grad.numpy(), rtol=0, atol=1e-10, err_msg="dW vs torch")
    np.testing.assert_allclose(db, bt.grad.numpy(), rtol=0, atol=1e-10, err_msg="db vs torch")


def test_scale_invariance_gradients_scale_as_one_over_a() -> None:
    rng = np.random.default_rng(3)
    x, W = rng.normal(size=(32, 6)), rng.normal(size=(4, 6))
    scales = np.array([0.1, 1.0, 10.0, 100.0])
    diff, norm = ss.scale_invariance_check(x, W, np.ones(4), np.zeros(4), rng.normal(size=(32, 4)), scales)
    assert diff[1] == 0.0 and np.all(diff < 2e-3)
    assert diff[0] > diff[2] > 0, "the eps in √(a²σ² + ε) makes small a deviate most"
    np.testing.assert_allclose(norm * scales, norm[1], rtol=1e-3)
    tiny, _ = ss.scale_invariance_check(x, W, np.ones(4), np.zeros(4), rng.normal(size=(32, 4)), np.array([1e-3]))
    assert tiny[0] > 0.1, "when a²·var ~ eps the invariance breaks"


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


test_nb04_mutants_are_diagnosed = exercise_helpers.mutants_are_diagnosed(mutants.MUTANTS)
test_nb04_correct_alternatives_pass = exercise_helpers.correct_versions_get_full_points(mutants.CORRECT)
