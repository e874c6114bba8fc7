"""normalize(x, axes) and the layers derived from it (layer, group, instance norm)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch.nn import functional

from bncourse.reference import (
    batchnorm_forward,
    groupnorm_backward,
    groupnorm_forward,
    instancenorm_backward,
    instancenorm_forward,
    layernorm_backward,
    layernorm_forward,
    normalize,
    normalize_backward,
)
from bncourse.reference.gradcheck import numerical_gradient

TOL = {np.float64: 1e-10, np.float32: 1e-5}
SETTINGS = settings(max_examples=20, deadline=None, derandomize=True)
dtypes = st.sampled_from([np.float64, np.float32])
seeds = st.integers(0, 2**32 - 1)


def randn(shape, seed, dtype=np.float64, scale=1.0, shift=0.0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * scale + shift).astype(dtype)


def torch_grads(fn, dout, *arrays):
    """(out, grad_0, grad_1, ...) of torch ``fn(*tensors)`` contracted with ``dout``."""
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    out.backward(torch.tensor(dout))
    return [out.detach().numpy()] + [t.grad.numpy() for t in tensors]


def assert_all_close(ours, theirs, names, dtype, what):
    for name, a, b in zip(names, ours, theirs, strict=True):
        assert a.dtype == dtype, f"{what}: {name} dtype {a.dtype}"
        assert a.shape == b.shape, f"{what}: {name} shape {a.shape} vs {b.shape}"
        np.testing.assert_allclose(a, b, rtol=0, atol=TOL[dtype], err_msg=f"{what}: {name}")


# ------------------------------------------------------------------------ normalize


@SETTINGS
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4), data=st.data(), seed=seeds)
def test_normalize_standardizes_and_backward_matches_torch(shape, data, seed):
    axes = tuple(data.draw(st.sets(st.integers(0, len(shape) - 1), min_size=1), label="axes"))
    x = randn(shape, seed, scale=2.0, shift=1.0)
    g = randn(shape, seed + 1)
    x_hat, cache = normalize(x, axes)
    mu = x.mean(axis=axes, keepdims=True)
    expected = (x - mu) / np.sqrt(x.var(axis=axes, keepdims=True) + 1e-5)
    np.testing.assert_allclose(x_hat, expected, rtol=0, atol=1e-12, err_msg=f"x_hat axes={axes}")

    def torch_normalize(xt):
        var, mean = torch.var_mean(xt, dim=axes, keepdim=True, correction=0)
        return (xt - mean) / torch.sqrt(var + 1e-5)

    _, dx_torch = torch_grads(torch_normalize, g, x)
    np.testing.assert_allclose(normalize_backward(g, cache), dx_torch, rtol=0, atol=1e-10,
                               err_msg=f"normalize_backward axes={axes} vs torch autograd")


def test_normalize_backward_centered_differences():
    x, g = randn((3, 4, 2), 0, scale=2.0), randn((3, 4, 2), 1)
    for axes in [(0,), (1, 2), (0, 2), (0, 1, 2)]:
        _, cache = normalize(x, axes)
        numeric = numerical_gradient(lambda x_, axes=axes: normalize(x_, axes)[0], x, g)
        np.testing.assert_allclose(normalize_backward(g, cache), numeric, rtol=1e-6, atol=1e-8,
                                   err_msg=f"normalize_backward axes={axes} vs centered differences")


def test_negative_axes_mean_the_same_axes():
    x = randn((2, 3, 4), 2)
    np.testing.assert_array_equal(normalize(x, (-1, 0))[0], normalize(x, (0, 2))[0],
                                  err_msg="axes (-1, 0) = (0, 2)")
    assert normalize(x, -1)[1].axes == (2,), "an int axis is accepted"


def test_the_normalizations_are_special_cases_of_normalize():
    x = randn((4, 6, 3, 2), 3, scale=1.5, shift=0.5)
    ones, zeros = np.ones(6), np.zeros(6)
    cases = {
        "batchnorm (N, D) = axes (0,)": (
            batchnorm_forward(x[:, :, 0, 0], ones, zeros)[0], normalize(x[:, :, 0, 0], (0,))[0]),
        "layernorm = all axes but 0": (
            layernorm_forward(x, np.ones(x.shape[1:]), np.zeros(x.shape[1:]))[0],
            normalize(x, (1, 2, 3))[0]),
        "instancenorm = axes (2, 3)": (
            instancenorm_forward(x, ones, zeros)[0], normalize(x, (2, 3))[0]),
        "groupnorm G=2 = reshape (N, G, C//G, H, W), axes (2, 3, 4)": (
            groupnorm_forward(x, ones, zeros, 2)[0],
            normalize(x.reshape(4, 2, 3, 3, 2), (2, 3, 4))[0].reshape(x.shape)),
        "groupnorm G=1 = layernorm with per-channel gamma": (
            groupnorm_forward(x, ones, zeros, 1)[0], normalize(x, (1, 2, 3))[0]),
    }
    for what, (a, b) in cases.items():
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12, err_msg=what)


# ------------------------------------------------------------------------ layernorm


@SETTINGS
@given(
    shape=st.lists(st.integers(1, 5), min_size=2, max_size=4).map(tuple),
    dtype=dtypes,
    seed=seeds,
)
def test_layernorm_matches_torch(shape, dtype, seed):
    # one value per example: var = 0 and inv_std = 1/sqrt(eps) ≈ 316 amplifies float32
    # rounding in torch beyond 1e-5 (the exact dx is 0); float64 still covers it
    assume(dtype == np.float64 or np.prod(shape[1:]) > 1)
    x = randn(shape, seed, dtype, scale=2.0, shift=-1.0)
    gamma, beta = randn(shape[1:], seed + 1, dtype), randn(shape[1:], seed + 2, dtype)
    dout = randn(shape, seed + 3, dtype)
    out, cache = layernorm_forward(x, gamma, beta)
    ours = (out, *layernorm_backward(dout, cache))
    theirs = torch_grads(lambda a, g, b: functional.layer_norm(a, shape[1:], g, b, eps=1e-5),
                         dout, x, gamma, beta)
    assert_all_close(ours, theirs, ("out", "dx", "dgamma", "dbeta"), dtype, f"layernorm {shape}")


def test_layernorm_centered_differences():
    x, dout = randn((3, 4), 0, scale=2.0), randn((3, 4), 1)
    gamma, beta = randn(4, 2), randn(4, 3)
    _, cache = layernorm_forward(x, gamma, beta)
    dx, dgamma, dbeta = layernorm_backward(dout, cache)
    numeric = {
        "dx": numerical_gradient(lambda a: layernorm_forward(a, gamma, beta)[0], x, dout),
        "dgamma": numerical_gradient(lambda g: layernorm_forward(x, g, beta)[0], gamma, dout),
        "dbeta": numerical_gradient(lambda b: layernorm_forward(x, gamma, b)[0], beta, dout),
    }
    for name, analytic in (("dx", dx), ("dgamma", dgamma), ("dbeta", dbeta)):
        np.testing.assert_allclose(analytic, numeric[name], rtol=1e-6, atol=1e-8,
                                   err_msg=f"layernorm_backward: {name} vs centered differences")


# ------------------------------------------------------------------------ groupnorm


@SETTINGS
@given(
    N=st.integers(1, 3),
    G=st.integers(1, 3),
    per_group=st.integers(1, 3),
    spatial=st.lists(st.integers(1, 4), min_size=0, max_size=2).map(tuple),
    dtype=dtypes,
    seed=seeds,
)
def test_groupnorm_matches_torch(N, G, per_group, spatial, dtype, seed):
    C = G * per_group
    shape = (N, C, *spatial)
    group_size = per_group * int(np.prod(spatial))
    assume(N * group_size > 1)  # torch.nn.functional.group_norm refuses this size
    assume(dtype == np.float64 or group_size > 1)  # see test_layernorm_matches_torch
    x = randn(shape, seed, dtype, scale=2.0, shift=0.5)
    gamma, beta, dout = randn(C, seed + 1, dtype), randn(C, seed + 2, dtype), randn(shape, seed, dtype)
    out, cache = groupnorm_forward(x, gamma, beta, G)
    ours = (out, *groupnorm_backward(dout, cache))
    theirs = torch_grads(lambda a, g, b: functional.group_norm(a, G, g, b, eps=1e-5), dout, x, gamma, beta)
    assert_all_close(ours, theirs, ("out", "dx", "dgamma", "dbeta"), dtype,
                     f"groupnorm {shape} G={G}")


def test_groupnorm_centered_differences():
    x, dout = randn((2, 4, 3, 2), 0, scale=2.0), randn((2, 4, 3, 2), 1)
    gamma, beta = randn(4, 2), randn(4, 3)
    _, cache = groupnorm_forward(x, gamma, beta, 2)
    dx, dgamma, _ = groupnorm_backward(dout, cache)
    dx_num = numerical_gradient(lambda a: groupnorm_forward(a, gamma, beta, 2)[0], x, dout)
    dg_num = numerical_gradient(lambda g: groupnorm_forward(x, g, beta, 2)[0], gamma, dout)
    np.testing.assert_allclose(dx, dx_num, rtol=1e-6, atol=1e-8, err_msg="groupnorm: dx")
    np.testing.assert_allclose(dgamma, dg_num, rtol=1e-6, atol=1e-8, err_msg="groupnorm: dgamma")


# --------------------------------------------------------------------- instancenorm


@pytest.mark.parametrize("shape", [(2, 3, 5), (3, 2, 4, 3), (1, 4, 2, 2)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_instancenorm_matches_torch(shape, dtype):
    C = shape[1]
    x = randn(shape, 0, dtype, scale=2.0, shift=1.0)
    gamma, beta, dout = randn(C, 1, dtype), randn(C, 2, dtype), randn(shape, 3, dtype)
    out, cache = instancenorm_forward(x, gamma, beta)
    ours = (out, *instancenorm_backward(dout, cache))
    theirs = torch_grads(lambda a, g, b: functional.instance_norm(a, weight=g, bias=b, eps=1e-5),
                         dout, x, gamma, beta)
    assert_all_close(ours, theirs, ("out", "dx", "dgamma", "dbeta"), dtype,
                     f"instancenorm {shape}")


def test_layer_and_group_norm_do_not_mutate_and_are_contiguous():
    x = np.asfortranarray(randn((3, 4, 2, 2), 5))
    x_copy = x.copy()
    gamma, beta = randn(4, 6), randn(4, 7)
    out, cache = groupnorm_forward(x, gamma, beta, 2)
    dx, _, _ = groupnorm_backward(np.asfortranarray(randn(x.shape, 8)), cache)
    out_ln, cache_ln = layernorm_forward(x, np.ones(x.shape[1:]), np.zeros(x.shape[1:]))
    dx_ln, _, _ = layernorm_backward(np.asfortranarray(randn(x.shape, 8)), cache_ln)
    np.testing.assert_array_equal(x, x_copy, err_msg="input mutated")
    for name, a in (("gn out", out), ("gn dx", dx), ("ln out", out_ln), ("ln dx", dx_ln)):
        assert a.flags.c_contiguous, f"{name} not C-contiguous"
