"""The instructor's solutions of notebook 09's exercises (``rmsnorm_forward``,
``ghost_batchnorm_forward``, ``weight_standardize``).

Each function is named as its exercise id; :mod:`.exercises` checks students' code against
them.  NumPy only.
"""

from __future__ import annotations

import numpy as np

from bncourse.validation import FloatArray

__all__ = ["ghost_batchnorm_forward", "rmsnorm_forward", "weight_standardize"]


def rmsnorm_forward(x: FloatArray, gamma: FloatArray, eps: float = 1e-5) -> tuple[FloatArray, FloatArray]:
    """RMSNorm (Zhang & Sennrich 2019) over the last axis, no re-centering, no β.

    .. math::  \\mathrm{rms}(x) = \\sqrt{\\tfrac1D \\textstyle\\sum_j x_j^2 + \\epsilon}, \\qquad
               y = \\gamma \\, x / \\mathrm{rms}(x)

    Shapes: x (..., D), gamma (D,) → out like x; cache: the rms, shape (..., 1).
    """
    rms = np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    return gamma * (x / rms), rms


def ghost_batchnorm_forward(
    x: FloatArray, gamma: FloatArray, beta: FloatArray, ghost_size: int, eps: float = 1e-5
) -> tuple[FloatArray, FloatArray]:
    """Ghost batch norm (Hoffer et al. 2017), training mode: batch norm on each ghost batch.

    The batch is cut into N / ghost_size consecutive ghost batches of ``ghost_size``
    examples; each is normalized with its own mean and biased variance per feature.

    Shapes: x (N, D) with N divisible by ghost_size, gamma, beta (D,) → out (N, D);
    cache: x_hat (N, D).
    """
    N, D = x.shape
    xg = x.reshape(N // ghost_size, ghost_size, D)
    mu = xg.mean(axis=1, keepdims=True)
    var = xg.var(axis=1, keepdims=True)
    x_hat = ((xg - mu) / np.sqrt(var + eps)).reshape(N, D)
    return gamma * x_hat + beta, x_hat


def weight_standardize(w: FloatArray, eps: float = 1e-5) -> FloatArray:
    """Weight Standardization (Qiao et al. 2019): each output unit's weights to mean 0, variance 1.

    .. math::  \\hat W_i = (W_i - \\mu_i) / \\sqrt{\\sigma_i^2 + \\epsilon}

    with μ_i, σ_i² (biased) over all the fan-in of output unit i (axes 1, 2, ...).

    Shapes: w (C_out, C_in) or (C_out, C_in, kh, kw) → like w.
    """
    fan_in = tuple(range(1, w.ndim))
    w_centered = w - w.mean(axis=fan_in, keepdims=True)
    std = np.sqrt(np.mean(w_centered**2, axis=fan_in, keepdims=True) + eps)
    return w_centered / std
