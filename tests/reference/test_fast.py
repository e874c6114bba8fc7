"""The fast path of batch norm (bncourse.reference._fast) against the reference and torch.

``bncourse.reference`` is the formulas as written, at every size; ``_fast`` has entry
points with the same signatures, checks and cache that run cache-blocked kernels (for
the benchmarks only).  These tests hold the two to the same numbers -- float64 to
~1e-12, float32 to rounding -- and to torch, on shapes past ``MIN_ELEMENTS`` (several
blocks and a remainder), on small shapes, and with tiny blocks forced by monkeypatch.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch.nn import functional

from bncourse import reference
from bncourse.errors import BNCourseError
from bncourse.reference import _fast

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)
NAMES = ("out", "dx", "dgamma", "dbeta")
CACHE_ARRAYS = ("x_hat", "x_centered", "inv_std", "gamma", "mean", "var")


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
    x_hat, norm = reference.normalize(x, axes=axes, eps=eps)
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


def pair(module, ndim):
    """(forward, backward) of ``module`` (reference or _fast) for 2-D or 4-D input."""
    if ndim == 2:
        return module.batchnorm_forward, module.batchnorm_backward_alt
    return module.spatial_batchnorm_forward, module.spatial_batchnorm_backward


def run(module, x, gamma, beta, dout):
    """``((out, dx, dgamma, dbeta), cache)`` from ``module``'s forward and closed-form backward."""
    forward, backward = pair(module, x.ndim)
    out, cache = forward(x, gamma, beta)
    return (out, *backward(dout, cache)), cache


def scaled_error(a, b):
    """max |a − b| / max(1, max |b|), in float64."""
    b64 = np.asarray(b, np.float64)
    return float(np.abs(np.asarray(a, np.float64) - b64).max()) / max(1.0, float(np.abs(b64).max()))


# (1031, 70): 4 full blocks of 256 rows and a remainder of 7; (9, 3, 70, 70): blocks of 4 images.
LARGE = [(1031, 70), (9, 3, 70, 70)]
# (13, 5) runs the reference in _fast's 2-D entry points; the spatial ones are blocked at any size.
SMALL = [(13, 5), (2, 1), (7, 3, 2, 5), (1, 2, 1, 2)]
SHAPES = LARGE + SMALL


def test_large_shapes_take_the_blocked_path():
    for shape in LARGE:
        assert np.prod(shape) >= _fast.MIN_ELEMENTS, f"{shape} must be past MIN_ELEMENTS"
        assert len(list(_fast._blocks(np.empty(shape)))) > 1, f"{shape} must span several blocks"


@pytest.mark.parametrize("shape", SHAPES)
def test_fast_matches_the_reference_in_float64(shape):
    x, gamma, beta, dout = make_data(shape, 1)
    fast, fast_cache = run(_fast, x, gamma, beta, dout)
    ref, ref_cache = run(reference, x, gamma, beta, dout)
    for name, a, b in zip(NAMES, fast, ref, strict=True):
        assert a.dtype == np.float64 and a.shape == b.shape, f"{shape} {name}: {a.dtype} {a.shape}"
        assert a.flags.c_contiguous, f"{shape} {name} not C-contiguous"
        assert scaled_error(a, b) <= 1e-12, f"{shape} {name}: {scaled_error(a, b):.1e}"
    assert type(fast_cache) is reference.BatchNormCache
    assert fast_cache.eps == ref_cache.eps
    for name in CACHE_ARRAYS:
        a, b = getattr(fast_cache, name), getattr(ref_cache, name)
        assert a.shape == b.shape and a.dtype == b.dtype, f"{shape} cache.{name}: {a.shape} {b.shape}"
        assert scaled_error(a, b) <= 1e-12, f"{shape} cache.{name}: {scaled_error(a, b):.1e}"


@pytest.mark.parametrize("shape", SHAPES)
def test_fast_matches_torch_in_float64(shape):
    x, gamma, beta, dout = make_data(shape, 2)
    fast, _ = run(_fast, x, gamma, beta, dout)
    for name, a, t in zip(NAMES, fast, torch_bn(x, gamma, beta, dout), strict=True):
        np.testing.assert_allclose(a, t, rtol=0, atol=1e-10, err_msg=f"{shape} {name} vs torch")


@pytest.mark.parametrize("shape", SHAPES)
def test_float32_fast_agrees_with_the_reference_to_rounding_and_stays_float32(shape):
    x, gamma, beta, dout = make_data(shape, 3, np.float32)
    before = [a.copy() for a in (x, gamma, beta, dout)]
    fast, fast_cache = run(_fast, x, gamma, beta, dout)
    ref, ref_cache = run(reference, x, gamma, beta, dout)
    for name, a, b in zip(("x", "gamma", "beta", "dout"), (x, gamma, beta, dout), before, strict=True):
        np.testing.assert_array_equal(a, b, err_msg=f"{name} was mutated")
    # the two sum in a different order (and dx factors γ/√(σ²+ε) differently): a few ulps
    tol = 16 * np.finfo(np.float32).eps
    for name, a, b in zip(NAMES, fast, ref, strict=True):
        assert a.dtype == np.float32 and a.flags.c_contiguous, f"{shape} {name}: {a.dtype}"
        assert scaled_error(a, b) <= tol, f"{shape} {name}: {scaled_error(a, b):.1e}"
    for name in CACHE_ARRAYS:
        a, b = getattr(fast_cache, name), getattr(ref_cache, name)
        assert a.dtype == np.float32 and a.shape == b.shape, f"cache.{name}: {a.dtype} {a.shape}"
        assert scaled_error(a, b) <= tol, f"{shape} cache.{name}: {scaled_error(a, b):.1e}"


@pytest.mark.parametrize("shape", LARGE)
def test_large_float32_inputs_are_as_accurate_as_torch(shape):
    x, gamma, beta, dout = make_data(shape, 4, np.float32)
    truth = plain(*(a.astype(np.float64) for a in (x, gamma, beta, dout)))
    theirs = torch_bn(x, gamma, beta, dout)
    for module in (_fast, reference):
        ours, _ = run(module, x, gamma, beta, dout)
        for name, a, b, t in zip(NAMES, ours, truth, theirs, strict=True):
            err, torch_err = scaled_error(a, b), scaled_error(t, b)
            # sums accumulate in float64: at least as accurate as torch, up to rounding
            assert err <= max(2 * torch_err, 1e-6), (
                f"{module.__name__} {shape} {name}: error {err:.2e} vs torch {torch_err:.2e}")


@pytest.mark.parametrize("shape", LARGE)
def test_caches_are_interchangeable(shape):
    x, gamma, beta, dout = make_data(shape, 5)
    fwd_ref, bwd_ref = pair(reference, len(shape))
    fwd_fast, bwd_fast = pair(_fast, len(shape))
    _, ref_cache = fwd_ref(x, gamma, beta)
    _, fast_cache = fwd_fast(x, gamma, beta)
    expected = bwd_ref(dout, ref_cache)
    for grads in (bwd_fast(dout, ref_cache), bwd_ref(dout, fast_cache)):
        for name, a, b in zip(NAMES[1:], grads, expected, strict=True):
            assert scaled_error(a, b) <= 1e-12, f"{shape} {name}"


def test_graph_backward_agrees_with_the_blocked_closed_form():
    x, gamma, beta, dout = make_data(LARGE[0], 6)
    _, cache = _fast.batchnorm_forward(x, gamma, beta)
    for a, b in zip(reference.batchnorm_backward(dout, cache),
                    _fast.batchnorm_backward_alt(dout, cache), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10 * max(1.0, np.abs(b).max()))


def test_fortran_ordered_input_gives_contiguous_results():
    x, gamma, beta, dout = make_data(LARGE[0], 7)
    out, cache = _fast.batchnorm_forward(np.asfortranarray(x), gamma, beta)
    dx, _, _ = _fast.batchnorm_backward_alt(np.asfortranarray(dout), cache)
    ref, _ = run(reference, x, gamma, beta, dout)
    for name, a, b in (("out", out, ref[0]), ("dx", dx, ref[1])):
        assert a.flags.c_contiguous, f"{name} not C-contiguous"
        assert scaled_error(a, b) <= 1e-12, name


@SETTINGS
@given(
    shape=st.one_of(
        st.tuples(st.integers(2, 40), st.integers(1, 6)),
        st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 5), st.integers(1, 5)),
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_blocked_kernels_equal_the_formulas(shape, seed):
    """Entry points and kernels (called directly, as _fast's 2-D entry points hand small
    inputs to the reference) give the reference's numbers."""
    assume(np.prod(shape) // shape[1] > 1)  # one value per channel is an error
    x, gamma, beta, dout = make_data(shape, seed)
    ref, ref_cache = run(reference, x, gamma, beta, dout)
    fast, _ = run(_fast, x, gamma, beta, dout)
    view = (lambda a: a) if len(shape) == 2 else (lambda a: a.reshape(shape[0], shape[1], -1))
    out, x_hat, _, _, _, inv_std = _fast.forward_kernel(view(x), gamma, beta, 1e-5)
    grads = _fast.backward_kernel(view(dout), x_hat, gamma, inv_std)
    kernel = (out.reshape(shape), grads[0].reshape(shape), *grads[1:])
    for name, a, b, k in zip(NAMES, fast, ref, kernel, strict=True):
        assert scaled_error(a, b) <= 1e-12, f"entry point {name}"
        assert scaled_error(k, b) <= 1e-12, f"kernel {name}"
    assert scaled_error(inv_std, ref_cache.inv_std) <= 1e-12, "inv_std"


@pytest.mark.parametrize("shape", [(13, 5), (7, 3, 2, 5)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tiny_blocks_give_the_same_result_as_one_block(monkeypatch, shape, dtype):
    x, gamma, beta, dout = make_data(shape, 8, dtype)
    view = (lambda a: a) if len(shape) == 2 else (lambda a: a.reshape(shape[0], shape[1], -1))
    one = _fast.forward_kernel(view(x), gamma, beta, 1e-5)
    monkeypatch.setattr(_fast, "BLOCK_BYTES", 1)  # one row (image) per block
    assert len(list(_fast._blocks(view(x)))) == shape[0]
    many = _fast.forward_kernel(view(x), gamma, beta, 1e-5)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for a, b in zip(one, many, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=tol)
    grads = _fast.backward_kernel(view(dout), many[1], gamma, many[5])
    for a, b in zip(grads, plain(x.astype(np.float64), gamma.astype(np.float64),
                                 beta.astype(np.float64), dout.astype(np.float64))[1:], strict=True):
        np.testing.assert_allclose(a.reshape(b.shape), b, rtol=0, atol=tol * 10)


def test_the_reference_never_runs_the_blocked_kernels(monkeypatch):
    def forbidden(*args):
        raise AssertionError("the reference called a blocked kernel")

    monkeypatch.setattr(_fast, "forward_kernel", forbidden)
    monkeypatch.setattr(_fast, "backward_kernel", forbidden)
    for shape in LARGE:
        x, gamma, beta, dout = make_data(shape, 9)
        run(reference, x, gamma, beta, dout)


X2, X4 = np.ones((4, 3)), np.arange(54.0).reshape(2, 3, 3, 3)
BAD_INPUTS = [
    ("batchnorm_forward", lambda m: m.batchnorm_forward(np.ones((4, 3, 1)), np.ones(3), np.zeros(3))),
    ("batchnorm_forward", lambda m: m.batchnorm_forward(np.ones((1, 3)), np.ones(3), np.zeros(3))),
    ("batchnorm_forward", lambda m: m.batchnorm_forward(X2, np.ones(2), np.zeros(3))),
    ("batchnorm_forward", lambda m: m.batchnorm_forward(np.ones((4, 3), int), np.ones(3), np.zeros(3))),
    ("batchnorm_forward", lambda m: m.batchnorm_forward(X2, np.ones(3), np.zeros(3), eps=0.0)),
    ("batchnorm_backward_alt", lambda m: m.batchnorm_backward_alt(X2, (1, 2, 3))),
    ("batchnorm_backward_alt",
     lambda m: m.batchnorm_backward_alt(np.ones((5, 3)), m.batchnorm_forward(X2, np.ones(3), np.zeros(3))[1])),
    ("spatial_batchnorm_forward", lambda m: m.spatial_batchnorm_forward(X2, np.ones(3), np.zeros(3))),
    ("spatial_batchnorm_forward",
     lambda m: m.spatial_batchnorm_forward(np.ones((1, 3, 1, 1)), np.ones(3), np.zeros(3))),
    ("spatial_batchnorm_forward", lambda m: m.spatial_batchnorm_forward(X4, np.ones(6), np.zeros(3))),
    ("spatial_batchnorm_backward",
     lambda m: m.spatial_batchnorm_backward(X2, m.spatial_batchnorm_forward(X4, np.ones(3), np.zeros(3))[1])),
    ("spatial_batchnorm_backward",
     lambda m: m.spatial_batchnorm_backward(X4[:1], m.spatial_batchnorm_forward(X4, np.ones(3), np.zeros(3))[1])),
]


@pytest.mark.parametrize(("fn", "call"), BAD_INPUTS, ids=[f"{fn}-{i}" for i, (fn, _) in enumerate(BAD_INPUTS)])
def test_bad_inputs_raise_the_reference_errors(fn, call):
    with pytest.raises(BNCourseError) as ref_err:
        call(reference)
    with pytest.raises(BNCourseError) as fast_err:
        call(_fast)
    assert type(fast_err.value) is type(ref_err.value)
    assert str(fast_err.value) == str(ref_err.value)
    assert fn in str(fast_err.value)
