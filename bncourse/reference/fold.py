"""Folding an inference-mode batch norm into the linear or conv layer before it."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from bncourse import validation
from bncourse.conventions import EPS
from bncourse.validation import FloatArray

__all__ = ["fold_batchnorm"]



def fold_batchnorm(
    weight: ArrayLike,
    bias: ArrayLike | None,
    gamma: ArrayLike,
    beta: ArrayLike,
    running_mean: ArrayLike,
    running_var: ArrayLike,
    eps: float = EPS,
) -> tuple[FloatArray, FloatArray]:
    r"""Fold ``BN(W x + b)`` (BN in evaluation mode) into one layer ``W' x + b'``.

    At test time batch norm is an affine map per output channel o,
    ``y_o = γ_o (z_o − μ_o) / √(var_o + ε) + β_o`` with ``z = W x + b``, so

    .. math::
        W' = W \cdot \frac{\gamma}{\sqrt{\mathrm{var} + \epsilon}}, \qquad
        b' = (b - \mu) \cdot \frac{\gamma}{\sqrt{\mathrm{var} + \epsilon}} + \beta

    where the scale multiplies every weight of output channel o (row o of a linear
    weight, filter o of a conv weight).  The folded layer gives the same outputs as
    the pair, with one layer's cost; it is valid only with the running statistics.

    Shapes:
        weight: linear ``(out, in)`` or conv ``(out, in, kh, kw)`` (any ``(out, ...)``);
        bias: ``(out,)`` or ``None`` (zeros); gamma, beta, running_mean, running_var:
        ``(out,)``.

    Returns:
        ``(weight, bias)``: new arrays, ``weight`` shaped like the input weight and
        ``bias`` ``(out,)``, in the dtype of ``weight``.

    Raises:
        ShapeError: weight has fewer than 2 axes, or a vector is not ``(out,)``.
        DTypeError, ParameterError: non-float input, ``eps <= 0``, negative variance.
    """
    fn = "fold_batchnorm"
    weight = validation.as_float_array(weight, "weight", fn)
    validation.check_min_ndim(weight.shape, 2, "weight", fn, "(out, in) or (out, in, kh, kw)")
    out_shape = (weight.shape[0],)
    dtype = weight.dtype
    if bias is None:
        bias = np.zeros(out_shape, dtype)
    bias = validation.as_param(bias, "bias", fn, out_shape, dtype)
    gamma = validation.as_param(gamma, "gamma", fn, out_shape, dtype)
    beta = validation.as_param(beta, "beta", fn, out_shape, dtype)
    running_mean = validation.as_param(running_mean, "running_mean", fn, out_shape, dtype)
    running_var = validation.as_param(running_var, "running_var", fn, out_shape, dtype)
    validation.check_nonnegative(running_var, "running_var", fn)
    eps = validation.check_eps(eps, fn)

    scale = gamma / np.sqrt(running_var + eps)  # γ / √(var + ε), one per output channel
    per_channel = (-1,) + (1,) * (weight.ndim - 1)
    weight_folded = weight * scale.reshape(per_channel)  # W' = W · γ/√(var + ε)
    bias_folded = (bias - running_mean) * scale + beta  # b' = (b − μ) · γ/√(var + ε) + β
    return np.ascontiguousarray(weight_folded), bias_folded
