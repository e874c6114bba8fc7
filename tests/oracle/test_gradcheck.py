"""numerical_gradient's stand-in (SciPy) against the solution's centered differences."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bncourse import oracle
from bncourse.errors import ParameterError, ShapeError
from bncourse.reference.gradcheck import numerical_gradient

SETTINGS = settings(max_examples=20, deadline=None, derandomize=True)
FUNCTIONS = {
    "tanh": np.tanh,
    "cube": lambda x: x**3,
    "coupled": lambda x: np.sin(x) * x.sum(axis=0, keepdims=True),
}


@SETTINGS
@given(name=st.sampled_from(sorted(FUNCTIONS)), shape=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       seed=st.integers(0, 2**32 - 1), h=st.sampled_from([1e-3, 1e-5]))
def test_matches_the_solution(name, shape, seed, h):
    rng = np.random.default_rng(seed)
    x, dout = rng.standard_normal(shape), rng.standard_normal(shape)
    before = x.copy()
    ours = oracle.numerical_gradient(FUNCTIONS[name], x, dout, h)
    np.testing.assert_array_equal(x, before)
    assert ours.dtype == np.float64 and ours.shape == shape
    # SciPy divides by (x + h) − (x − h), the solution by 2h: they differ by ~1e-16·|x|/h relative
    np.testing.assert_allclose(ours, numerical_gradient(FUNCTIONS[name], x, dout, h), rtol=0, atol=1e-10)


def test_scalar_f_float32_input_and_errors():
    x = np.array([[0.5, -1.0], [2.0, 0.1]], dtype=np.float32)
    ours = oracle.numerical_gradient(lambda v: float(np.sum(v**2)), x)
    np.testing.assert_allclose(ours, numerical_gradient(lambda v: float(np.sum(v**2)), x), atol=1e-10)
    assert ours.dtype == np.float64
    with pytest.raises(ShapeError, match="f must return a scalar"):
        oracle.numerical_gradient(np.tanh, x)
    with pytest.raises(ShapeError, match=r"f\(x\) has shape"):
        oracle.numerical_gradient(np.tanh, x, np.ones(3))
    with pytest.raises(ParameterError, match="h must be > 0"):
        oracle.numerical_gradient(np.tanh, x, np.ones((2, 2)), h=0.0)


def test_f_may_modify_its_argument():
    def f(v):
        y = np.tanh(v)
        v[:] = 99.0
        return y

    x = np.linspace(-1, 1, 6).reshape(2, 3)
    np.testing.assert_allclose(oracle.numerical_gradient(f, x, np.ones_like(x)), 1 / np.cosh(x) ** 2, atol=1e-9)
