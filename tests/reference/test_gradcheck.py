"""bncourse.reference.gradcheck: centered differences and CS231n's relative error."""

from __future__ import annotations

import numpy as np
import pytest

from bncourse.errors import ParameterError, ShapeError
from bncourse.reference.gradcheck import numerical_gradient
from bncourse.validation import rel_error


def test_numerical_gradient_of_known_functions():
    rng = np.random.default_rng(0)
    x, dout = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    A = rng.standard_normal((4, 4))
    np.testing.assert_allclose(numerical_gradient(np.sin, x, dout), np.cos(x) * dout,
                               rtol=1e-8, atol=1e-10, err_msg="d sin = cos")
    np.testing.assert_allclose(numerical_gradient(lambda z: z @ A, x, dout), dout @ A.T,
                               rtol=1e-8, atol=1e-10, err_msg="d (x A) = dout Aᵀ")
    np.testing.assert_allclose(numerical_gradient(lambda z: np.sum(z**3), x), 3 * x**2,
                               rtol=1e-8, atol=1e-9, err_msg="scalar f, dout=None")


def test_numerical_gradient_works_on_a_copy_in_float64():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    x_before = x.copy()
    seen = []

    def f(z):
        seen.append(z.dtype)
        z += 1.0  # a careless f that mutates its argument must not corrupt the result
        return 2 * z

    grad = numerical_gradient(f, x, np.ones((2, 3)))
    np.testing.assert_array_equal(x, x_before, err_msg="x mutated")
    np.testing.assert_allclose(grad, 2.0, rtol=1e-9, err_msg="d(2x + 2) = 2")
    assert set(seen) == {np.dtype(np.float64)}, f"f called with {set(seen)}, expected float64"
    assert grad.dtype == np.float64 and grad.shape == (2, 3), f"{grad.dtype} {grad.shape}"


def test_rel_error_is_cs231n_formula():
    a, b = np.array([1.0, 2.0, 0.0]), np.array([1.1, 2.0, 0.0])
    np.testing.assert_allclose(rel_error(a, b), 0.1 / 2.1, rtol=1e-12, err_msg="max |a−b|/(|a|+|b|)")
    assert rel_error(a, a) == 0.0, "identical arrays"
    assert rel_error(np.zeros(2), np.full(2, 1e-9)) == pytest.approx(0.1), "floor of 1e-8"
    assert rel_error(np.zeros((0, 3)), np.zeros((0, 3))) == 0.0, "empty arrays"


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: numerical_gradient(np.sin, np.ones(3), np.ones(3), h=0.0), ParameterError,
         r"h must be > 0, got h=0.0"),
        (lambda: numerical_gradient(np.sin, np.ones(3), np.ones(4)), ShapeError,
         r"f\(x\) has shape \(3,\), dout has shape \(4,\)"),
        (lambda: numerical_gradient(np.sin, np.ones(3)), ShapeError,
         r"with dout=None, f must return a scalar, got \(3,\)"),
        (lambda: rel_error(np.ones(3), np.ones(2)), ShapeError,
         r"rel_error: shapes differ, got \(3,\) and \(2,\)"),
    ],
)
def test_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()
