"""The cache-blocked fast path of batch norm (bncourse.reference._fast) and its dispatch.

The parity tests in test_reference_batchnorm.py use small inputs, which run the plain
formulas; these tests cover inputs past ``MIN_ELEMENTS`` (and tiny blocks forced with
monkeypatch) against the plain formulas in float64 and against torch.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional

from bncourse.reference import (
    _fast as _blocked,
)
from bncourse.reference import (
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    normalize,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)


def make_data(shape, seed=0, dtype=np.float64):
    """x with per-channel mean in [-2, 2] and std in [0.5, 3]; gamma, beta, dout."""
    rng = np.random.default_rng(seed)
    C = shape[1]
    bshape = (1, C) + (1,) * (len(shape) - 2)
    x = rng.standard_normal(shape) * rng.uniform(0.5, 3.0, bshape) + rng.uniform(-2, 2, bshape)
    gamma = rng.uniform(0.5, 2.0, C) * rng.choice([-1.0, 1.0], C)
    beta = rng.standard_normal(C)
    dout = rng.standard_normal(shape)
    return tuple(a.astype(dtype) for a in (x, gamma, beta, dout))


def plain(x, gamma, beta, dout, eps=1e-5):
    """(out, dx, dgamma, dbeta) from the textbook formulas in float64, channels on axis 1."""
    axes = (0, *range(2, x.ndim))
    bshape = (1, -1) + (1,) * (x.ndim - 2)
    x_hat, norm = normalize(x, axes=axes, eps=eps)
    g = gamma.reshape(bshape)
    m = x.size // x.shape[1]
    dbeta, dgamma = dout.sum(axis=axes), (dout * x_hat).sum(axis=axes)
    dx = (g * norm.inv_std / m) * (m * dout - dbeta.reshape(bshape) - x_hat * dgamma.reshape(bshape))
    return g * x_hat + beta.reshape(bshape), dx, dgamma, dbeta


def torch_bn(x, gamma, beta, dout):
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    out = functional.batch_norm(xt, None, None, gt, bt, training=True, eps=1e-5)
    out.backward(torch.tensor(dout))
    return tuple(t.detach().numpy() for t in (out, xt.grad, gt.grad, bt.grad))


def run(shape, x, gamma, beta, dout):
    if len(shape) == 2:
        out, cache = batchnorm_forward(x, gamma, beta)
        return (out, *batchnorm_backward_alt(dout, cache)), cache
    out, cache = spatial_batchnorm_forward(x, gamma, beta)
    return (out, *spatial_batchnorm_backward(dout, cache)), cache


# (1031, 70): 4 full blocks of 256 rows and a remainder of 7; (9, 3, 70, 70): blocks of 4 images.
LARGE = [(1031, 70), (9, 3, 70, 70)]


@pytest.mark.parametrize("shape", LARGE)
def test_large_inputs_match_the_plain_formulas_in_float64(shape):
    assert np.prod(shape) >= _blocked.MIN_ELEMENTS, "the shape must take the blocked path"
    x, gamma, beta, dout = make_data(shape, 1)
    ours, cache = run(shape, x, gamma, beta, dout)
    for name, a, b in zip(("out", "dx", "dgamma", "dbeta"), ours, plain(x, gamma, beta, dout), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10 * max(1.0, np.abs(b).max()),
                                   err_msg=f"{shape}: {name}")
        assert a.dtype == np.float64 and a.flags.c_contiguous, f"{shape}: {name} dtype/contiguity"
    axes = (0, *range(2, x.ndim))
    np.testing.assert_allclose(cache.mean, x.mean(axis=axes), rtol=0, atol=1e-12, err_msg="cache.mean")
    np.testing.assert_allclose(cache.var, x.var(axis=axes), rtol=1e-12, err_msg="cache.var (biased)")
    assert cache.x_hat.shape == cache.x_centered.shape == shape, "cache arrays shaped like x"


@pytest.mark.parametrize("shape", LARGE)
def test_large_float32_inputs_match_torch_and_stay_float32(shape):
    x, gamma, beta, dout = make_data(shape, 2, np.float32)
    x_copy = x.copy()
    ours, _ = run(shape, x, gamma, beta, dout)
    truth = plain(*(a.astype(np.float64) for a in (x, gamma, beta, dout)))
    theirs = torch_bn(x, gamma, beta, dout)
    assert np.array_equal(x, x_copy), "x is not modified"
    for name, a, b, t in zip(("out", "dx", "dgamma", "dbeta"), ours, truth, theirs, strict=True):
        assert a.dtype == np.float32, f"{name} dtype {a.dtype}"
        scale = max(1.0, float(np.abs(b).max()))
        err, torch_err = float(np.abs(a - b).max()) / scale, float(np.abs(t - b).max()) / scale
        # sums accumulate in float64 over blocks: at least as accurate as torch, up to rounding
        assert err <= max(2 * torch_err, 1e-6), f"{shape} {name}: error {err:.2e} vs torch {torch_err:.2e}"


def test_graph_backward_agrees_with_the_blocked_closed_form():
    x, gamma, beta, dout = make_data(LARGE[0], 3)
    _, cache = batchnorm_forward(x, gamma, beta)
    for a, b in zip(batchnorm_backward(dout, cache), batchnorm_backward_alt(dout, cache), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10 * max(1.0, np.abs(b).max()))


@pytest.mark.parametrize("shape", [(13, 5), (7, 3, 2, 5)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tiny_blocks_give_the_same_result_as_one_block(monkeypatch, shape, dtype):
    x, gamma, beta, dout = make_data(shape, 4, dtype)
    view = (lambda a: a) if len(shape) == 2 else (lambda a: a.reshape(shape[0], shape[1], -1))
    one = _blocked.forward(view(x), gamma, beta, 1e-5)
    monkeypatch.setattr(_blocked, "BLOCK_BYTES", 1)  # one row (image) per block
    assert len(list(_blocked._blocks(view(x)))) == shape[0]
    many = _blocked.forward(view(x), gamma, beta, 1e-5)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for a, b in zip(one, many, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=tol)
    grads = _blocked.backward(view(dout), many[1], gamma, many[5])
    for a, b in zip(grads, plain(x.astype(np.float64), gamma.astype(np.float64),
                                 beta.astype(np.float64), dout.astype(np.float64))[1:], strict=True):
        np.testing.assert_allclose(a.reshape(b.shape), b, rtol=0, atol=tol * 10)


def test_small_inputs_take_the_plain_path_and_large_the_blocked(monkeypatch):
    calls = []
    real = _blocked.forward
    monkeypatch.setattr(_blocked, "forward", lambda *a: calls.append(a[0].shape) or real(*a))
    small, _, _, _ = make_data((8, 4))
    big, gamma, beta, _ = make_data((_blocked.MIN_ELEMENTS // 4, 4))
    batchnorm_forward(small, np.ones(4), np.zeros(4))
    batchnorm_forward(big, gamma, beta)
    assert calls == [big.shape], f"blocked kernel called for {calls}"
