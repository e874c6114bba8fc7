"""bncourse.reference batch norm (N, D) and spatial (N, C, H, W) against two oracles.

Oracles: PyTorch autograd through ``torch.nn.functional.batch_norm`` (float64 and
float32) and float64 centered differences (``bncourse.reference.gradcheck.numerical_gradient``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch.nn import functional

from bncourse.reference import (
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    batchnorm_inference,
    normalize,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)
from bncourse.reference.gradcheck import numerical_gradient

TOL = {np.float64: 1e-10, np.float32: 1e-5}  # max abs error vs torch
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)


def make_data(shape, seed, dtype=np.float64):
    """x, gamma, beta, dout for channels on axis 1, well conditioned.

    Each channel of x is standardized over its reduced axes, then given a batch std in
    [0.5, 3] and a mean in [-2, 2], so eps/var <= 4e-5 and float32 rounding is not
    amplified by a tiny variance; |gamma| lies in [0.5, 2] with random signs.
    """
    rng = np.random.default_rng(seed)
    C = shape[1]
    axes = (0, *range(2, len(shape)))
    bshape = (1, C) + (1,) * (len(shape) - 2)
    z = rng.standard_normal(shape)
    z = (z - z.mean(axis=axes, keepdims=True)) / z.std(axis=axes, keepdims=True)
    x = z * rng.uniform(0.5, 3.0, bshape) + rng.uniform(-2, 2, bshape)
    gamma = rng.uniform(0.5, 2.0, C) * rng.choice([-1.0, 1.0], C)
    beta = rng.standard_normal(C)
    dout = rng.standard_normal(shape)
    return tuple(a.astype(dtype) for a in (x, gamma, beta, dout))


def torch_batchnorm(x, gamma, beta, dout, eps=1e-5):
    """(out, dx, dgamma, dbeta) from torch autograd, training-mode batch norm."""
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    out = functional.batch_norm(xt, None, None, gt, bt, training=True, eps=eps)
    out.backward(torch.tensor(dout))
    return tuple(t.detach().numpy() for t in (out, xt.grad, gt.grad, bt.grad))


def assert_matches_torch(ours, theirs, dtype, what):
    names = ("out", "dx", "dgamma", "dbeta")
    for name, a, b in zip(names, ours, theirs, strict=True):
        assert a.dtype == dtype, f"{what}: {name} dtype {a.dtype}, expected {dtype}"
        assert a.shape == b.shape, f"{what}: {name} shape {a.shape} vs torch {b.shape}"
        np.testing.assert_allclose(a, b, rtol=0, atol=TOL[dtype], err_msg=f"{what}: {name}")


# ------------------------------------------------------------------------- parity


@SETTINGS
@given(
    N=st.integers(2, 32),
    D=st.integers(1, 8),
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from([np.float64, np.float32]),
    backward=st.sampled_from([batchnorm_backward, batchnorm_backward_alt]),
)
def test_batchnorm_matches_torch(N, D, seed, dtype, backward):
    x, gamma, beta, dout = make_data((N, D), seed, dtype)
    out, cache = batchnorm_forward(x, gamma, beta)
    dx, dgamma, dbeta = backward(dout, cache)
    assert_matches_torch((out, dx, dgamma, dbeta), torch_batchnorm(x, gamma, beta, dout), dtype,
                         f"{backward.__name__} {(N, D)} {dtype.__name__}")


@pytest.mark.parametrize("shape", [(2, 1), (2, 5), (3, 1), (64, 16)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batchnorm_edge_shapes_match_torch(shape, dtype):
    x, gamma, beta, dout = make_data(shape, 0, dtype)
    out, cache = batchnorm_forward(x, gamma, beta)
    for backward in (batchnorm_backward, batchnorm_backward_alt):
        grads = backward(dout, cache)
        assert_matches_torch((out, *grads), torch_batchnorm(x, gamma, beta, dout), dtype,
                             f"{backward.__name__} {shape}")


@SETTINGS
@given(
    N=st.integers(1, 4),
    C=st.integers(1, 4),
    H=st.integers(1, 5),
    W=st.integers(1, 5),
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from([np.float64, np.float32]),
)
def test_spatial_batchnorm_matches_torch(N, C, H, W, seed, dtype):
    assume(N * H * W > 1)  # N·H·W = 1 is an error, tested in test_reference_errors
    x, gamma, beta, dout = make_data((N, C, H, W), seed, dtype)
    out, cache = spatial_batchnorm_forward(x, gamma, beta)
    dx, dgamma, dbeta = spatial_batchnorm_backward(dout, cache)
    assert_matches_torch((out, dx, dgamma, dbeta), torch_batchnorm(x, gamma, beta, dout), dtype,
                         f"spatial {(N, C, H, W)} {dtype.__name__}")
    assert out.flags.c_contiguous and dx.flags.c_contiguous, "spatial: contiguous results"


def test_spatial_is_normalize_over_0_2_3():
    x, gamma, beta, _ = make_data((3, 4, 5, 3), 1)
    out, _ = spatial_batchnorm_forward(x, gamma, beta)
    x_hat, _ = normalize(x, axes=(0, 2, 3))
    expected = gamma.reshape(1, -1, 1, 1) * x_hat + beta.reshape(1, -1, 1, 1)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12,
                               err_msg="spatial_batchnorm_forward vs normalize(axes=(0, 2, 3))")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_inference_matches_torch_eval(dtype):
    rng = np.random.default_rng(3)
    x, gamma, beta, _ = make_data((7, 5), 3, dtype)
    running_mean = rng.standard_normal(5).astype(dtype)
    running_var = rng.uniform(0.1, 3.0, 5).astype(dtype)
    out = batchnorm_inference(x, gamma, beta, running_mean, running_var)
    expected = functional.batch_norm(*(torch.tensor(a) for a in (x, running_mean, running_var, gamma, beta)),
                            training=False, eps=1e-5).numpy()
    assert out.dtype == dtype, "batchnorm_inference: dtype preserved"
    np.testing.assert_allclose(out, expected, rtol=0, atol=TOL[dtype],
                               err_msg="batchnorm_inference vs torch eval")
    one = batchnorm_inference(x[:1], gamma, beta, running_mean, running_var)
    np.testing.assert_allclose(one, out[:1], rtol=0, atol=TOL[dtype],
                               err_msg="batchnorm_inference: one example alone = in a batch")


# ------------------------------------------------------------------ gradient checks


@pytest.mark.parametrize("shape", [(2, 1), (4, 3), (9, 2)])
def test_centered_difference_gradients(shape):
    x, gamma, beta, dout = make_data(shape, 7)
    _, cache = batchnorm_forward(x, gamma, beta)
    numeric = {
        "dx": numerical_gradient(lambda x_: batchnorm_forward(x_, gamma, beta)[0], x, dout),
        "dgamma": numerical_gradient(lambda g_: batchnorm_forward(x, g_, beta)[0], gamma, dout),
        "dbeta": numerical_gradient(lambda b_: batchnorm_forward(x, gamma, b_)[0], beta, dout),
    }
    for backward in (batchnorm_backward, batchnorm_backward_alt):
        for name, analytic in zip(("dx", "dgamma", "dbeta"), backward(dout, cache), strict=True):
            np.testing.assert_allclose(analytic, numeric[name], rtol=1e-6, atol=1e-8,
                                       err_msg=f"{backward.__name__}: {name} vs centered differences")


def test_spatial_centered_difference_gradients():
    x, gamma, beta, dout = make_data((2, 2, 3, 3), 11)
    _, cache = spatial_batchnorm_forward(x, gamma, beta)
    dx, dgamma, _ = spatial_batchnorm_backward(dout, cache)
    dx_num = numerical_gradient(lambda x_: spatial_batchnorm_forward(x_, gamma, beta)[0], x, dout)
    dg_num = numerical_gradient(lambda g_: spatial_batchnorm_forward(x, g_, beta)[0], gamma, dout)
    np.testing.assert_allclose(dx, dx_num, rtol=1e-6, atol=1e-8, err_msg="spatial: dx")
    np.testing.assert_allclose(dgamma, dg_num, rtol=1e-6, atol=1e-8, err_msg="spatial: dgamma")


@SETTINGS
@given(N=st.integers(2, 40), D=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_graph_backward_equals_closed_form(N, D, seed):
    x, gamma, beta, dout = make_data((N, D), seed)
    _, cache = batchnorm_forward(x, gamma, beta)
    for name, a, b in zip(("dx", "dgamma", "dbeta"), batchnorm_backward(dout, cache),
                          batchnorm_backward_alt(dout, cache), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12, err_msg=f"graph vs closed form: {name}")


# ----------------------------------------------------------------------- properties


@SETTINGS
@given(N=st.integers(2, 40), D=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_output_mean_is_beta_and_std_is_abs_gamma(N, D, seed):
    x, gamma, beta, _ = make_data((N, D), seed)
    out, cache = batchnorm_forward(x, gamma, beta)
    np.testing.assert_allclose(out.mean(axis=0), beta, rtol=0, atol=1e-10,
                               err_msg="per-feature output mean = beta")
    # biased std of y is |gamma| * sqrt(var / (var + eps))
    expected_std = np.abs(gamma) * np.sqrt(cache.var / (cache.var + cache.eps))
    np.testing.assert_allclose(out.std(axis=0), expected_std, rtol=1e-10, atol=1e-12,
                               err_msg="per-feature output std = |gamma| (up to eps)")
    np.testing.assert_allclose(out.std(axis=0), np.abs(gamma), rtol=1e-4,
                               err_msg="per-feature output std ≈ |gamma|")


@SETTINGS
@given(N=st.integers(2, 40), D=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_dx_is_orthogonal_to_ones_and_x_hat(N, D, seed):
    x, gamma, beta, dout = make_data((N, D), seed)
    _, cache = batchnorm_forward(x, gamma, beta)
    dx, _, _ = batchnorm_backward_alt(dout, cache)
    scale = np.abs(dout).sum(axis=0) * np.abs(gamma) * cache.inv_std
    np.testing.assert_allclose(dx.sum(axis=0) / scale, 0, atol=1e-12, err_msg="Σ dx = 0")
    # Σ dx·x̂ = γ·inv_std·Σ(dy·x̂)·(1 − mean(x̂²)) and mean(x̂²) = var/(var + eps):
    # zero up to eps/(var + eps), exactly zero only for eps = 0
    dgamma = (dout * cache.x_hat).sum(axis=0)
    expected = gamma * cache.inv_std * dgamma * cache.eps / (cache.var + cache.eps)
    np.testing.assert_allclose((dx * cache.x_hat).sum(axis=0) / scale, expected / scale,
                               rtol=0, atol=1e-12, err_msg="Σ dx·x_hat = γ·inv_std·dgamma·ε/(σ²+ε)")
    np.testing.assert_allclose((dx * cache.x_hat).sum(axis=0) / scale, 0, atol=1e-4,
                               err_msg="Σ dx·x_hat ≈ 0")


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), a=st.floats(0.1, 10.0), b=st.floats(-10.0, 10.0))
def test_output_invariant_to_affine_input_change(seed, a, b):
    x, gamma, beta, _ = make_data((16, 4), seed)
    out, _ = batchnorm_forward(x, gamma, beta)
    # exact identity: scaling x by a scales var by a², so eps must scale with it
    out_ab, _ = batchnorm_forward(a * x + b, gamma, beta, eps=a * a * 1e-5)
    np.testing.assert_allclose(out_ab, out, rtol=0, atol=1e-10,
                               err_msg="BN_{a²·eps}(a·x + b) = BN_eps(x)")
    # with the same eps it holds up to eps/var: |Δy| <= |γ x̂|·|1 − a·√((var+ε)/(a²var+ε))|
    out_same_eps, cache = batchnorm_forward(a * x + b, gamma, beta)
    var = cache.var / (a * a)
    bound = np.abs(out - beta) * np.abs(1 - a * np.sqrt((var + 1e-5) / (a * a * var + 1e-5)))
    assert np.all(np.abs(out_same_eps - out) <= bound * (1 + 1e-6) + 1e-10), "BN(a·x + b) ≈ BN(x)"
    np.testing.assert_allclose(out_same_eps, out, rtol=0, atol=1e-2, err_msg="BN(a·x + b) ≈ BN(x)")


# --------------------------------------------------------------- dtype, copy, cache


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved_inputs_unchanged_results_contiguous(dtype):
    x, gamma, beta, dout = make_data((6, 3), 5, dtype)
    x_f = np.asfortranarray(x)  # a non-contiguous layout must still give C-contiguous results
    before = [a.copy() for a in (x_f, gamma, beta, dout)]
    out, cache = batchnorm_forward(x_f, gamma, beta)
    grads = batchnorm_backward(np.asfortranarray(dout), cache)
    grads_alt = batchnorm_backward_alt(dout, cache)
    for name, a in zip(("out", "dx", "dgamma", "dbeta", "dx_alt"), (out, *grads, grads_alt[0]),
                       strict=True):
        assert a.dtype == dtype, f"{name}: dtype {a.dtype}, expected {dtype}"
        assert a.flags.c_contiguous, f"{name} not C-contiguous"
    for name, a, b in zip(("x", "gamma", "beta", "dout"), (x_f, gamma, beta, dout), before,
                          strict=True):
        np.testing.assert_array_equal(a, b, err_msg=f"{name} was mutated")


def test_float64_gamma_with_float32_x_keeps_float32():
    x, gamma, beta, _ = make_data((5, 3), 2, np.float32)
    out, cache = batchnorm_forward(x, gamma.astype(np.float64), beta.astype(np.float64))
    assert out.dtype == np.float32, f"out dtype {out.dtype}"
    assert cache.gamma.dtype == np.float32, f"cache.gamma dtype {cache.gamma.dtype}"


def test_cache_fields_named_after_the_math():
    x, gamma, beta, _ = make_data((8, 3), 4)
    _, cache = batchnorm_forward(x, gamma, beta, eps=1e-3)
    assert cache._fields == ("x_hat", "x_centered", "inv_std", "gamma", "mean", "var", "eps")
    np.testing.assert_allclose(cache.mean, x.mean(axis=0), rtol=1e-12, err_msg="cache.mean")
    np.testing.assert_allclose(cache.var, x.var(axis=0), rtol=1e-12, err_msg="cache.var (biased)")
    np.testing.assert_allclose(cache.inv_std, 1 / np.sqrt(x.var(axis=0) + 1e-3), rtol=1e-12,
                               err_msg="cache.inv_std")
    np.testing.assert_allclose(cache.x_centered, x - x.mean(axis=0), rtol=0, atol=1e-12,
                               err_msg="cache.x_centered")
    assert cache.eps == 1e-3, f"cache.eps {cache.eps}"
