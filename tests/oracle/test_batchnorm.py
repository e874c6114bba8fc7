"""Batch-norm stand-ins (N, D) and (N, C, H, W), folding and notebook 04's, against the solutions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bncourse import oracle, reference
from bncourse.errors import BatchSizeError, ParameterError, ShapeError
from bncourse.lessons.l04_gamma_beta import solutions as l04

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)
TOL64 = 1e-10


def data(shape, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    C = shape[1]
    bshape = (1, C) + (1,) * (len(shape) - 2)
    x = rng.standard_normal(shape) * rng.uniform(0.5, 3.0, bshape) + rng.uniform(-2, 2, bshape)
    gamma = rng.uniform(0.5, 2.0, C) * rng.choice([-1.0, 1.0], C)
    return tuple(a.astype(dtype) for a in (x, gamma, rng.standard_normal(C), rng.standard_normal(shape)))


def assert_close(ours, theirs, tol=TOL64):
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=0, atol=tol)


@SETTINGS
@given(N=st.integers(2, 24), D=st.integers(1, 6), seed=st.integers(0, 2**32 - 1),
       backward=st.sampled_from(["batchnorm_backward", "batchnorm_backward_alt"]))
def test_batchnorm_forward_backward_match_the_solution(N, D, seed, backward):
    x, gamma, beta, dout = data((N, D), seed)
    out, cache = oracle.batchnorm_forward(x, gamma, beta)
    ref_out, ref_cache = reference.batchnorm_forward(x, gamma, beta)
    assert_close([out], [ref_out])
    assert_close(getattr(oracle, backward)(dout, cache), getattr(reference, backward)(dout, ref_cache))


@SETTINGS
@given(shape=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4), st.integers(2, 4)),
       seed=st.integers(0, 2**32 - 1))
def test_spatial_batchnorm_matches_the_solution(shape, seed):
    x, gamma, beta, dout = data(shape, seed)
    out, cache = oracle.spatial_batchnorm_forward(x, gamma, beta)
    ref_out, ref_cache = reference.spatial_batchnorm_forward(x, gamma, beta)
    assert_close([out], [ref_out])
    assert_close(oracle.spatial_batchnorm_backward(dout, cache), reference.spatial_batchnorm_backward(dout, ref_cache))


@pytest.mark.parametrize("shape", [(6, 3), (3, 2, 4, 5)])
def test_float32_stays_float32(shape):
    x, gamma, beta, dout = data(shape, 3, np.float32)
    fwd, bwd = ((oracle.batchnorm_forward, oracle.batchnorm_backward) if len(shape) == 2
                else (oracle.spatial_batchnorm_forward, oracle.spatial_batchnorm_backward))
    out, cache = fwd(x, gamma, beta)
    grads = bwd(dout, cache)
    assert [a.dtype for a in (out, *grads)] == [np.float32] * 4
    assert out.flags.c_contiguous and grads[0].flags.c_contiguous
    ref_out, ref_cache = (reference.batchnorm_forward if len(shape) == 2 else reference.spatial_batchnorm_forward)(
        x, gamma, beta)
    ref_grads = (reference.batchnorm_backward_alt if len(shape) == 2 else reference.spatial_batchnorm_backward)(
        dout, ref_cache)
    assert_close([out, *grads], [ref_out, *ref_grads], tol=1e-5)


def test_inference_matches_the_solution():
    rng = np.random.default_rng(4)
    for dtype, tol in ((np.float64, TOL64), (np.float32, 1e-5)):
        x, gamma, beta, _ = data((5, 4), 5, dtype)
        rm, rv = rng.standard_normal(4).astype(dtype), rng.uniform(0.1, 3.0, 4).astype(dtype)
        for eps in (1e-5, 1e-3):
            assert_close([oracle.batchnorm_inference(x, gamma, beta, rm, rv, eps)],
                         [reference.batchnorm_inference(x, gamma, beta, rm, rv, eps)], tol)
        assert_close([oracle.batchnorm_inference(x[:1], gamma, beta, rm, rv)],
                     [reference.batchnorm_inference(x[:1], gamma, beta, rm, rv)], tol)


def test_errors_are_the_solutions():
    x = np.ones((1, 3))
    with pytest.raises(BatchSizeError, match=r"batchnorm_forward: training batchnorm needs >1 value per channel, "
                                             r"got x.shape=\(1, 3\)"):
        oracle.batchnorm_forward(x, np.ones(3), np.zeros(3))
    with pytest.raises(ShapeError, match=r"gamma must have shape \(3,\)"):
        oracle.batchnorm_forward(np.ones((4, 3)), np.ones(2), np.zeros(3))
    with pytest.raises(ShapeError, match=r"expects x of shape \(N, C, H, W\)"):
        oracle.spatial_batchnorm_forward(np.ones((4, 3)), np.ones(3), np.zeros(3))
    with pytest.raises(ParameterError, match="running_var must be >= 0"):
        oracle.batchnorm_inference(np.ones((2, 1)), [1.0], [0.0], [0.0], [-1.0])
    with pytest.raises(ShapeError, match="dout must have shape"):
        _, cache = oracle.batchnorm_forward(np.eye(3), np.ones(3), np.zeros(3))
        oracle.batchnorm_backward(np.ones((2, 3)), cache)


# --------------------------------------------------------------------------- fold


@pytest.mark.parametrize("wshape", [(4, 3), (5, 5), (4, 3, 3, 3), (2, 3, 5), (4, 4, 1, 1)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_fold_batchnorm_matches_the_solution(wshape, with_bias):
    rng = np.random.default_rng(sum(wshape))
    out = wshape[0]
    w = rng.standard_normal(wshape)
    b = rng.standard_normal(out) if with_bias else None
    vecs = (rng.uniform(0.5, 2, out), rng.standard_normal(out), rng.standard_normal(out) * 3, rng.uniform(1e-6, 3, out))
    for dtype, tol in ((np.float64, TOL64), (np.float32, 1e-5)):
        args = (w.astype(dtype), None if b is None else b.astype(dtype), *(v.astype(dtype) for v in vecs))
        assert_close(oracle.fold_batchnorm(*args), reference.fold_batchnorm(*args), tol)


# --------------------------------------------------------------------------- notebook 04


@SETTINGS
@given(N=st.integers(2, 20), D=st.integers(1, 5), seed=st.integers(0, 2**32 - 1),
       scale=st.sampled_from([1e-3, 1.0, 100.0]))
def test_recover_identity_matches_the_solution(N, D, seed, scale):
    x = scale * np.random.default_rng(seed).standard_normal((N, D)) + 3.0
    assert_close(oracle.recover_identity(x), l04.recover_identity(x))


def _linear_data(seed, n=8, d_in=5, d=4, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return tuple(a.astype(dtype) for a in (
        rng.standard_normal((n, d_in)), rng.standard_normal((d, d_in)), rng.standard_normal(d),
        rng.uniform(0.5, 2, d), rng.standard_normal(d), rng.standard_normal((n, d))))


@pytest.mark.parametrize("seed", range(4))
def test_bias_grad_through_bn_matches_the_solution(seed):
    args = _linear_data(seed)
    assert_close(oracle.bias_grad_through_bn(*args), l04.bias_grad_through_bn(*args))
    args32 = _linear_data(seed, dtype=np.float32)
    assert_close(oracle.bias_grad_through_bn(*args32), l04.bias_grad_through_bn(*args32), tol=1e-4)


@pytest.mark.parametrize("seed", range(3))
def test_scale_invariance_check_matches_the_solution(seed):
    x, W, _, gamma, beta, dout = _linear_data(seed, n=16)
    scales = np.logspace(-3, 3, 7)
    ours, theirs = (f(x, W, gamma, beta, dout, scales)
                    for f in (oracle.scale_invariance_check, l04.scale_invariance_check))
    assert_close(ours, theirs, tol=1e-9)  # grad norms ~ 1e3 at a = 1e-3: 1e-12 relative
    x32, W32, _, g32, b32, d32 = _linear_data(seed, n=16, dtype=np.float32)
    out = oracle.scale_invariance_check(x32, W32, g32, b32, d32, scales)
    assert [a.dtype for a in out] == [np.float32, np.float32]
