"""bncourse.lessons.l04_gamma_beta.solutions: the instructor's ``recover_identity``,
``bias_grad_through_bn`` (checked against torch) and ``scale_invariance_check``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bncourse.errors import ShapeError
from bncourse.lessons.l04_gamma_beta import solutions
from bncourse.reference import batchnorm_forward


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_recover_identity_returns_the_input(dtype: type) -> None:
    x = (np.random.default_rng(0).normal(size=(10, 4)) * 3 + 7).astype(dtype)
    gamma, beta = solutions.recover_identity(x)
    out, _ = batchnorm_forward(x, gamma, beta)
    assert gamma.dtype == dtype
    np.testing.assert_allclose(out, x, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)
    with pytest.raises(ShapeError, match=r"expects x of shape \(N, D\), got shape \(3,\)"):
        solutions.recover_identity(np.zeros(3))


def test_bias_gradient_vanishes_and_matches_torch() -> None:
    rng = np.random.default_rng(2)
    x, W, b = rng.normal(size=(9, 4)), rng.normal(size=(3, 4)), rng.normal(size=3)
    gamma, beta, dout = rng.uniform(0.5, 2, 3), rng.normal(size=3), rng.normal(size=(9, 3))
    dW, db = solutions.bias_grad_through_bn(x, W, b, gamma, beta, dout)
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
    diff, norm = solutions.scale_invariance_check(x, W, np.ones(4), np.zeros(4), rng.normal(size=(32, 4)), scales)
    assert diff[1] == 0.0 and np.all(diff < 2e-3)
    assert diff[0] > diff[2] > 0, "the eps in √(a²σ² + ε) makes small a deviate most"
    np.testing.assert_allclose(norm * scales, norm[1], rtol=1e-3)
    tiny, _ = solutions.scale_invariance_check(x, W, np.ones(4), np.zeros(4), rng.normal(size=(32, 4)), np.array([1e-3]))
    assert tiny[0] > 0.1, "when a²·var ~ eps the invariance breaks"
