"""Batch Renormalization against a torch autograd version with r and d detached."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bncourse.reference import (
    batch_renorm_backward,
    batch_renorm_forward,
    batchnorm_backward_alt,
    batchnorm_forward,
)


def data(seed, N=8, D=4):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, D)) * rng.uniform(0.5, 3.0, D) + rng.uniform(-2, 2, D)
    return (x, rng.standard_normal(D), rng.standard_normal(D), rng.standard_normal((N, D)),
            rng.standard_normal(D), rng.uniform(0.2, 4.0, D))


def torch_renorm(x, gamma, beta, dout, running_mean, running_var, r_max, d_max, eps=1e-5):
    """Ioffe (2017), Algorithm 1, in torch; r and d are detached (no gradient)."""
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    rm, rv = torch.tensor(running_mean), torch.tensor(running_var)
    var_b, mu_b = torch.var_mean(xt, dim=0, correction=0)
    sigma_b, sigma_run = torch.sqrt(var_b + eps), torch.sqrt(rv + eps)
    r = torch.clamp(sigma_b / sigma_run, 1 / r_max, r_max).detach()
    d = torch.clamp((mu_b - rm) / sigma_run, -d_max, d_max).detach()
    out = gt * ((xt - mu_b) / sigma_b * r + d) + bt
    out.backward(torch.tensor(dout))
    return [t.detach().numpy() for t in (out, xt.grad, gt.grad, bt.grad, r, d)]


@pytest.mark.parametrize(("r_max", "d_max"), [(1.0, 0.0), (1.5, 0.5), (3.0, 5.0), (100.0, 100.0)])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_torch_with_r_and_d_constant(r_max, d_max, seed):
    x, gamma, beta, dout, rm, rv = data(seed)
    res = batch_renorm_forward(x, gamma, beta, rm, rv, r_max, d_max)
    dx, dgamma, dbeta = batch_renorm_backward(dout, res.cache)
    expected = torch_renorm(x, gamma, beta, dout, rm, rv, r_max, d_max)
    for name, a, b in zip(("out", "dx", "dgamma", "dbeta", "r", "d"),
                          (res.out, dx, dgamma, dbeta, res.r, res.d), expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10,
                                   err_msg=f"batch renorm r_max={r_max} d_max={d_max}: {name}")


def test_r_max_1_d_max_0_is_batchnorm():
    x, gamma, beta, dout, rm, rv = data(2)
    res = batch_renorm_forward(x, gamma, beta, rm, rv, r_max=1.0, d_max=0.0)
    out, cache = batchnorm_forward(x, gamma, beta)
    np.testing.assert_allclose(res.out, out, rtol=0, atol=1e-12, err_msg="renorm(1, 0) = BN: out")
    for name, a, b in zip(("dx", "dgamma", "dbeta"), batch_renorm_backward(dout, res.cache),
                          batchnorm_backward_alt(dout, cache), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12, err_msg=f"renorm(1, 0) = BN: {name}")


def test_unclipped_output_uses_the_running_statistics():
    x, gamma, beta, _, rm, rv = data(3)
    res = batch_renorm_forward(x, gamma, beta, rm, rv, r_max=1e6, d_max=1e6)
    expected = gamma * (x - rm) / np.sqrt(rv + 1e-5) + beta
    np.testing.assert_allclose(res.out, expected, rtol=0, atol=1e-10,
                               err_msg="unclipped renorm = normalization by running stats")


def test_running_stats_returned_not_mutated():
    x, gamma, beta, _, rm, rv = data(4)
    rm_copy, rv_copy = rm.copy(), rv.copy()
    res = batch_renorm_forward(x, gamma, beta, rm, rv, r_max=2.0, d_max=1.0, momentum=0.25)
    np.testing.assert_array_equal(rm, rm_copy, err_msg="running_mean mutated")
    np.testing.assert_array_equal(rv, rv_copy, err_msg="running_var mutated")
    np.testing.assert_allclose(res.running_mean, 0.75 * rm + 0.25 * x.mean(axis=0), rtol=1e-12,
                               err_msg="new running_mean")
    np.testing.assert_allclose(res.running_var, 0.75 * rv + 0.25 * x.var(axis=0, ddof=1),
                               rtol=1e-12, err_msg="new running_var (unbiased)")
