"""normalize, layer norm, group norm and batch renorm stand-ins against the solutions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bncourse import oracle, reference
from bncourse.errors import ParameterError

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)
TOL64 = 1e-10


def assert_close(ours, theirs, tol=TOL64):
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=0, atol=tol)


@SETTINGS
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4), data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_normalize_matches_the_solution_on_any_axes(shape, data, seed):
    axes = tuple(data.draw(st.sets(st.integers(-len(shape), len(shape) - 1), min_size=1, max_size=len(shape))
                           .filter(lambda s: len({a % len(shape) for a in s}) == len(s))))
    x = 2.0 * np.random.default_rng(seed).standard_normal(shape) + 1.0
    out, cache = oracle.normalize(x, axes)
    assert cache is None
    assert_close([out], [reference.normalize(x, axes)[0]])


def test_normalize_float32_and_errors():
    x = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)
    out, _ = oracle.normalize(x, (0, 2), eps=1e-3)
    assert_close([out], [reference.normalize(x, (0, 2), eps=1e-3)[0]], tol=1e-5)
    with pytest.raises(ValueError, match="axes must be distinct"):
        oracle.normalize(x, (0, -3))


@SETTINGS
@given(N=st.integers(1, 6), F=st.lists(st.integers(1, 4), min_size=1, max_size=3), seed=st.integers(0, 2**32 - 1))
def test_layernorm_matches_the_solution(N, F, seed):
    rng = np.random.default_rng(seed)
    shape = (N, *F)
    x, dout = 3.0 * rng.standard_normal(shape) + 1.0, rng.standard_normal(shape)
    gamma, beta = rng.uniform(0.5, 1.5, F), rng.standard_normal(F)
    out, cache = oracle.layernorm_forward(x, gamma, beta)
    ref_out, ref_cache = reference.layernorm_forward(x, gamma, beta)
    assert_close([out], [ref_out])
    assert_close(oracle.layernorm_backward(dout, cache), reference.layernorm_backward(dout, ref_cache))


@pytest.mark.parametrize(("shape", "G"), [((2, 6, 3, 3), 2), ((3, 4, 5), 4), ((2, 6, 2, 2), 1), ((4, 8), 2)])
def test_groupnorm_matches_the_solution(shape, G):
    rng = np.random.default_rng(G)
    x, dout = 2.0 * rng.standard_normal(shape) - 1.0, rng.standard_normal(shape)
    C = shape[1]
    gamma, beta = rng.uniform(0.5, 1.5, C), rng.standard_normal(C)
    out, cache = oracle.groupnorm_forward(x, gamma, beta, G)
    ref_out, ref_cache = reference.groupnorm_forward(x, gamma, beta, G)
    assert_close([out], [ref_out])
    assert_close(oracle.groupnorm_backward(dout, cache), reference.groupnorm_backward(dout, ref_cache))
    out32, _ = oracle.groupnorm_forward(x.astype(np.float32), gamma, beta, G)
    assert out32.dtype == np.float32
    with pytest.raises(ParameterError, match=f"C={C} not divisible by G={C + 1}"):
        oracle.groupnorm_forward(x, gamma, beta, C + 1)


@SETTINGS
@given(N=st.integers(2, 8), D=st.integers(1, 5), seed=st.integers(0, 2**32 - 1),
       limits=st.sampled_from([(1.0, 0.0), (1.5, 0.5), (3.0, 5.0), (100.0, 100.0)]),
       momentum=st.sampled_from([0.0, 0.01, 0.1, 1.0]))
def test_batch_renorm_matches_the_solution(N, D, seed, limits, momentum):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, D) + rng.uniform(0.3, 3, D) * rng.standard_normal((N, D))
    gamma, beta, dout = rng.uniform(0.5, 1.5, D), rng.standard_normal(D), rng.standard_normal((N, D))
    rm, rv = rng.standard_normal(D), rng.uniform(0.1, 4.0, D)
    before = (rm.copy(), rv.copy())
    ours = oracle.batch_renorm_forward(x, gamma, beta, rm, rv, *limits, momentum=momentum)
    theirs = reference.batch_renorm_forward(x, gamma, beta, rm, rv, *limits, momentum=momentum)
    assert ours._fields == theirs._fields
    assert_close(ours[:5], theirs[:5])
    np.testing.assert_array_equal(rm, before[0])
    np.testing.assert_array_equal(rv, before[1])
    assert_close(oracle.batch_renorm_backward(dout, ours.cache), reference.batch_renorm_backward(dout, theirs.cache))


def test_batch_renorm_float32_and_errors():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    res = oracle.batch_renorm_forward(x, np.ones(3, np.float32), np.zeros(3, np.float32), np.zeros(3, np.float32),
                                      np.ones(3, np.float32), 2.0, 1.0)
    assert [a.dtype for a in res[:5]] == [np.float32] * 5
    with pytest.raises(ParameterError, match="r_max must be >= 1"):
        oracle.batch_renorm_forward(x, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), 0.5, 1.0)
    with pytest.raises(ParameterError, match="momentum must be a number in"):
        oracle.batch_renorm_forward(x, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), 1.5, 1.0, momentum=None)
