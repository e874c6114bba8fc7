"""weight_norm, spectral_norm and largest_singular_value stand-ins against the solutions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bncourse import oracle, reference
from bncourse.errors import ParameterError, ShapeError


@pytest.mark.parametrize(("shape", "dim"), [((5, 7), 0), ((5, 7), 1), ((4, 3, 2, 2), 0), ((4, 3, 2, 2), 2),
                                            ((5, 7), None), ((6,), 0)])
def test_weight_norm_matches_the_solution(shape, dim):
    rng = np.random.default_rng(len(shape))
    v = rng.standard_normal(shape)
    g = rng.uniform(0.5, 2.0, 1 if dim is None else shape[dim])
    ours = oracle.weight_norm(v, g, dim)
    np.testing.assert_allclose(ours, reference.weight_norm(v, g, dim), rtol=0, atol=1e-12)
    assert oracle.weight_norm(v.astype(np.float32), g, dim).dtype == np.float32


def test_weight_norm_errors():
    with pytest.raises(ParameterError, match="dim must be an integer"):
        oracle.weight_norm(np.ones((2, 3)), np.ones(2), 2)
    with pytest.raises(ShapeError, match="g must have 2 entries"):
        oracle.weight_norm(np.ones((2, 3)), np.ones(3), 0)


@pytest.mark.parametrize("n_iter", [0, 1, 3, 15])
@pytest.mark.parametrize(("shape", "dim"), [((6, 9), 0), ((4, 3, 3, 3), 0), ((4, 3, 3, 3), 1)])
@pytest.mark.parametrize("given_v", [False, True])
def test_spectral_norm_matches_the_solution(n_iter, shape, dim, given_v):
    rng = np.random.default_rng(n_iter)
    w = rng.standard_normal(shape)
    u = rng.standard_normal(shape[dim])
    kwargs = {"dim": dim}
    if given_v:
        kwargs["v"] = rng.standard_normal(w.size // shape[dim])
    state = torch.random.get_rng_state()
    ours = oracle.spectral_norm(w, u, n_iter, **kwargs)
    assert torch.equal(torch.random.get_rng_state(), state)  # torch's global RNG untouched
    theirs = reference.spectral_norm(w, u, n_iter, **kwargs)
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)


def test_spectral_norm_of_a_vector_and_float32():
    w, u = np.array([3.0, 4.0]), np.ones(1)
    for a, b in zip(oracle.spectral_norm(w, u), reference.spectral_norm(w, u), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-15)
    ours = oracle.spectral_norm(np.ones((3, 2), np.float32), np.ones(3), 2)
    assert [a.dtype for a in ours] == [np.float32] * 3
    with pytest.raises(ParameterError, match="n_power_iterations must be an integer >= 0"):
        oracle.spectral_norm(np.ones((3, 2)), np.ones(3), -1)
    with pytest.raises(ShapeError, match="u must have shape"):
        oracle.spectral_norm(np.ones((3, 2)), np.ones(2))


@pytest.mark.parametrize(("shape", "dim"), [((16, 32), 0), ((8, 3, 3, 3), 0), ((8, 3, 3, 3), 1), ((5, 2), 1)])
def test_largest_singular_value_matches_the_solution(shape, dim):
    w = np.random.default_rng(1).standard_normal(shape)
    ours = oracle.largest_singular_value(w, dim)
    assert isinstance(ours, float)
    assert ours == pytest.approx(reference.largest_singular_value(w, dim), rel=1e-13)
