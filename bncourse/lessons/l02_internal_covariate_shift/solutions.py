"""The instructor's solutions of notebook 02's exercises (``activation_percentiles``,
``gradient_predictiveness``, ``saturated_fraction``).

Each function is named as its exercise id;
:mod:`bncourse.lessons.l02_internal_covariate_shift.exercises` checks students' code against
them.  NumPy only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from bncourse.errors import ShapeError
from bncourse.validation import FloatArray

__all__ = ["activation_percentiles", "gradient_predictiveness", "saturated_fraction"]



def activation_percentiles(z: FloatArray, qs: Sequence[float] = (15.0, 50.0, 85.0)) -> FloatArray:
    """Percentiles of every unit's input over a batch (linear interpolation, as ``np.percentile``).

    Args:
        z: (N, D) pre-activations of D units for N examples.
        qs: percentiles in [0, 100], e.g. (15, 50, 85) as in the BN paper's Figure 1.

    Returns:
        (len(qs), D) array: row k holds the qs[k]-th percentile of each unit, in z's dtype.
    """
    z = np.asarray(z)
    if z.ndim != 2:
        raise ShapeError(f"activation_percentiles expects z of shape (N, D), got shape {z.shape}")
    return np.percentile(z, list(qs), axis=0).astype(z.dtype, copy=False)


def gradient_predictiveness(
    grad_fn: Callable[[FloatArray], FloatArray], w: FloatArray, etas: FloatArray
) -> FloatArray:
    """How well the gradient at w predicts the gradient after a step along it.

    .. math::  d(\\eta) = \\lVert \\nabla L(w - \\eta\\, g) - g \\rVert_2, \\qquad g = \\nabla L(w)

    (Santurkar et al. 2018's "gradient predictiveness": small distances over a range of
    step sizes mean a smooth, predictable landscape.)

    Args:
        grad_fn: maps parameters (P,) to the gradient (P,).
        w: (P,) parameters.
        etas: (K,) step sizes.

    Returns:
        (K,) distances, in w's dtype.
    """
    w = np.asarray(w)
    g = grad_fn(w)
    return np.array([np.linalg.norm(grad_fn(w - eta * g) - g) for eta in etas], dtype=w.dtype)


def saturated_fraction(z: FloatArray, threshold: float = 0.05) -> float:
    r"""The fraction of sigmoid inputs in the flat tails: where the slope is below ``threshold``.

    .. math::
        s(z) = \mathrm{sigmoid}(z) = \frac{1}{1 + e^{-z}}, \quad s'(z) = s(z)\,(1 - s(z)) \le \tfrac14,
        \quad \text{fraction} = \frac{1}{|z|} \#\{\, i : s'(z_i) < \text{threshold} \,\}

    Shapes:
        z: any shape, e.g. (N, D) pre-activations of D sigmoid units for N examples.

    Returns:
        A Python float in [0, 1] (0.05 marks |z| > 2.94; a unit there passes less than a
        fifth of the largest possible gradient).
    """
    s = 1.0 / (1.0 + np.exp(-np.asarray(z)))
    return float(np.mean(s * (1.0 - s) < threshold))
