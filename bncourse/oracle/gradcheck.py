"""Stand-in for ``numerical_gradient``: SciPy's finite differences, not a loop of our own."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize._numdiff import approx_derivative

from bncourse import validation
from bncourse.errors import ParameterError, ShapeError

__all__ = ["numerical_gradient"]


def numerical_gradient(
    f: Callable[[NDArray[np.float64]], ArrayLike],
    x: ArrayLike,
    dout: ArrayLike | None = None,
    h: float = 1e-5,
) -> NDArray[np.float64]:
    """The gradient of ``L = Σ f(x) · dout`` with respect to x by centered differences.

    ``scipy.optimize._numdiff.approx_derivative(L, x, method="3-point", abs_step=h)``:
    each entry is ``(L(x + h e_i) − L(x − h e_i)) / ((x_i + h) − (x_i − h))``.  SciPy
    divides by the step it actually took, which differs from 2h by rounding (≈1e-16·|x|),
    so results agree with a division by 2h to about 1e-11 relative.  f always gets a
    float64 copy shaped like x, so neither x nor anything f holds is changed.  With
    ``dout=None``, f must return a scalar (then L = f(x)).

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
    x0 = np.array(x, dtype=np.float64)  # our own copy
    shape = x0.shape
    weights = None if dout is None else np.asarray(validation.as_float_array(dout, "dout", fn), dtype=np.float64)

    def loss(flat: NDArray[np.float64]) -> float:
        y = np.asarray(f(flat.reshape(shape).copy()), dtype=np.float64)
        if weights is None:
            if y.size != 1:
                raise ShapeError(f"{fn}: with dout=None, f must return a scalar, got {y.shape}")
            return float(y.reshape(()))
        if y.shape != weights.shape:
            raise ShapeError(f"{fn}: f(x) has shape {y.shape}, dout has shape {weights.shape}")
        return float(np.sum(y * weights))  # L = Σ f(x)·dout

    flat0 = x0.reshape(-1)
    grad = approx_derivative(loss, flat0, method="3-point", abs_step=float(h), f0=loss(flat0))
    return np.asarray(grad, dtype=np.float64).reshape(shape)
