"""Gradient checking by centered differences (compare with :func:`bncourse.validation.rel_error`).

Usage, as in CS231n::

    dx_num = numerical_gradient(lambda x: batchnorm_forward(x, gamma, beta)[0], x, dout)
    rel_error(dx_num, dx)        # ~1e-8 or below for a correct float64 backward
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bncourse import validation
from bncourse.errors import ParameterError, ShapeError

__all__ = ["numerical_gradient"]


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
        weights = np.asarray(validation.as_float_array(dout, "dout", fn), dtype=np.float64)

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
