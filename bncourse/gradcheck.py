"""Gradient checking: centered differences and the relative error the course reports.

Usage, as in CS231n::

    dx_num = numerical_gradient(lambda x: batchnorm_forward(x, gamma, beta)[0], x, dout)
    rel_error(dx_num, dx)        # ~1e-8 or below for a correct float64 backward
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bncourse.errors import ParameterError, ShapeError
from bncourse.reference import _checks

__all__ = ["numerical_gradient", "rel_error"]


def numerical_gradient(
    f: Callable[[NDArray[np.float64]], ArrayLike],
    x: ArrayLike,
    dout: ArrayLike | None = None,
    h: float = 1e-5,
) -> NDArray[np.float64]:
    r"""The gradient of ``L = Σ f(x) · dout`` with respect to x, by centered differences.

    .. math::
        \frac{\partial L}{\partial x_i} \approx
        \sum \frac{f(x + h e_i) - f(x - h e_i)}{2h} \cdot dout

    Each entry costs two calls of f; the error is O(h²).  Computed in float64 on a copy
    of x, so neither x nor anything f holds is changed.  With ``dout=None``, f must
    return a scalar (then L = f(x)).

    Shapes:
        x: any shape; f(x): any shape, matching dout.

    Returns:
        The numerical gradient, float64, shaped like x.

    Raises:
        ShapeError: f(x) does not have the shape of dout (or is not a scalar).
        ParameterError: ``h <= 0``.
    """
    fn = "numerical_gradient"
    if not float(h) > 0:
        raise ParameterError(f"{fn}: h must be > 0, got h={h!r}")
    x_work = np.array(x, dtype=np.float64)  # our own copy
    weights = None
    if dout is not None:
        weights = np.asarray(_checks.as_float_array(dout, "dout", fn), dtype=np.float64)

    def loss(point: NDArray[np.float64]) -> float:
        y = np.asarray(f(point), dtype=np.float64)
        if weights is None:
            if y.size != 1:
                raise ShapeError(f"{fn}: with dout=None, f must return a scalar, got {y.shape}")
            return float(y.reshape(()))
        if y.shape != weights.shape:
            raise ShapeError(f"{fn}: f(x) has shape {y.shape}, dout has shape {weights.shape}")
        return float(np.sum(y * weights))

    grad = np.zeros_like(x_work)
    flat_x, flat_grad = x_work.reshape(-1), grad.reshape(-1)  # views
    for i in range(flat_x.size):
        original = flat_x[i]
        flat_x[i] = original + h
        loss_plus = loss(x_work.copy())
        flat_x[i] = original - h
        loss_minus = loss(x_work.copy())
        flat_x[i] = original
        flat_grad[i] = (loss_plus - loss_minus) / (2.0 * h)
    return grad


def rel_error(a: ArrayLike, b: ArrayLike) -> float:
    r"""CS231n's relative error: the largest elementwise ``|a − b| / max(1e-8, |a| + |b|)``.

    .. math::
        \max_i \frac{|a_i - b_i|}{\max(10^{-8}, |a_i| + |b_i|)}

    Scale-free, so one threshold fits any magnitude: about 1e-7 or less for a correct
    float64 gradient against :func:`numerical_gradient`.  Entries where both a and b are
    near zero can dominate it; compare such arrays with an absolute tolerance.

    Shapes:
        a, b: the same shape.

    Returns:
        The maximum relative error, a Python float (0.0 for empty arrays).
    """
    a_ = np.asarray(a, dtype=np.float64)
    b_ = np.asarray(b, dtype=np.float64)
    if a_.shape != b_.shape:
        raise ShapeError(f"rel_error: shapes differ, got {a_.shape} and {b_.shape}")
    if a_.size == 0:
        return 0.0
    denom: NDArray[Any] = np.maximum(1e-8, np.abs(a_) + np.abs(b_))
    return float(np.max(np.abs(a_ - b_) / denom))
