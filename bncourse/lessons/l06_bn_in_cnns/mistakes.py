"""The wrong implementations behind notebook 06's ``Mistake`` s, and their helpers.

Each public function here is one plausible slip in an exercise of notebook 06, with the
same signature as the function the student writes: when a student's outputs match its
outputs, :mod:`bncourse.lessons.l06_bn_in_cnns.exercises` shows that ``Mistake``'s
diagnosis.  The diagnoses themselves (and the order in which the mistakes are tried) are
declared there; this module holds only the code.

* ``fwd_*`` — ``spatial_batchnorm_forward``;
* ``bwd_*`` — ``spatial_batchnorm_backward``; they receive the reference cache (a
  :class:`~bncourse.reference.BatchNormCache` whose ``x_hat`` is ``(N, C, H, W)`` — rows
  ``(N·H·W, C)`` are accepted too — and whose ``inv_std``, ``gamma`` are ``(C,)``), which
  is what the exercise's namespace provides;
* ``fold_*`` — ``fold_batchnorm``.

NumPy only (no torch, no matplotlib).
"""

from __future__ import annotations

import numpy as np

from bncourse import reference
from bncourse.validation import Array

__all__ = [
    "bwd_constant_stats",
    "bwd_m_is_n",
    "bwd_no_transpose",
    "bwd_swapped",
    "fold_input_axis",
    "fold_mean_not_scaled",
    "fold_no_beta",
    "fold_no_eps",
    "fold_no_gamma",
    "fold_no_mean",
    "fold_no_sqrt",
    "fwd_instance_norm",
    "fwd_layer_norm",
    "fwd_missing_eps",
    "fwd_no_transpose",
    "fwd_per_pixel_statistics",
    "fwd_per_position_statistics",
    "fwd_statistics_over_everything",
    "fwd_unbiased_variance",
]



# --------------------------------------------------------------------------- spatial_batchnorm_forward


def _fwd_axes(x: Array, gamma: Array, beta: Array, eps: float, *, axes: tuple[int, ...] | None = (0, 2, 3),
              ddof: int = 0, with_eps: bool = True) -> tuple[Array, None]:
    """Normalization of ``(N, C, H, W)`` over ``axes`` (the defaults are right), per-channel affine."""
    mu = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, ddof=ddof, keepdims=True)
    with np.errstate(all="ignore"):  # N = 1 with ddof = 1, or var = 0 without ε
        x_hat = (x - mu) / np.sqrt(var + eps if with_eps else var)
    g, b = gamma.reshape(1, -1, 1, 1), beta.reshape(1, -1, 1, 1)
    return (g * x_hat + b).astype(x.dtype), None


def fwd_per_position_statistics(x: Array, gamma: Array, beta: Array, eps: float) -> tuple[Array, None]:
    """Each (c, h, w) position normalized over the batch only (1-D BN on the flattened image)."""
    return _fwd_axes(x, gamma, beta, eps, axes=(0,))


def fwd_per_pixel_statistics(x: Array, gamma: Array, beta: Array, eps: float) -> tuple[Array, None]:
    """Statistics per pixel position, reduced over N and C."""
    return _fwd_axes(x, gamma, beta, eps, axes=(0, 1))


def fwd_statistics_over_everything(x: Array, gamma: Array, beta: Array, eps: float) -> tuple[Array, None]:
    """One μ and σ² over the whole array."""
    return _fwd_axes(x, gamma, beta, eps, axes=None)


def fwd_instance_norm(x: Array, gamma: Array, beta: Array, eps: float) -> tuple[Array, None]:
    """Each example's channel normalized over (H, W) only."""
    return _fwd_axes(x, gamma, beta, eps, axes=(2, 3))


def fwd_layer_norm(x: Array, gamma: Array, beta: Array, eps: float) -> tuple[Array, None]:
    """Each example normalized over (C, H, W)."""
    return _fwd_axes(x, gamma, beta, eps, axes=(1, 2, 3))


def fwd_no_transpose(x: Array, gamma: Array, beta: Array, eps: float) -> tuple[Array, None]:
    """``(N, C, H, W) -> (N·H·W, C)`` by a reshape without moving C last (channels mixed)."""
    rows = x.reshape(-1, x.shape[1])
    x_hat = (rows - rows.mean(axis=0)) / np.sqrt(rows.var(axis=0) + eps)
    return (gamma * x_hat + beta).reshape(x.shape).astype(x.dtype), None


def fwd_unbiased_variance(x: Array, gamma: Array, beta: Array, eps: float) -> tuple[Array, None]:
    """The variance divides by m − 1 (ddof=1)."""
    return _fwd_axes(x, gamma, beta, eps, ddof=1)


def fwd_missing_eps(x: Array, gamma: Array, beta: Array, eps: float) -> tuple[Array, None]:
    """Divides by √σ², without ε."""
    return _fwd_axes(x, gamma, beta, eps, with_eps=False)


# --------------------------------------------------------------------------- spatial_batchnorm_backward


def _rows(a: Array) -> Array:
    """``(N, C, H, W) -> (N·H·W, C)``; a 2-D array is taken to be rows already."""
    return a if a.ndim == 2 else a.transpose(0, 2, 3, 1).reshape(-1, a.shape[1])


def _unrows(rows: Array, shape: tuple[int, ...]) -> Array:
    """``(N·H·W, C) -> (N, C, H, W)``, the inverse of :func:`_rows`."""
    n, c, h, w = shape
    return rows.reshape(n, h, w, c).transpose(0, 3, 1, 2)


def bwd_constant_stats(dout: Array, c: reference.BatchNormCache) -> tuple[Array, Array, Array]:
    """μ and σ² treated as constants: dx = γ·dout/√(σ²+ε)."""
    dy, x_hat = _rows(dout), _rows(c.x_hat)
    return _unrows(dy * c.gamma * c.inv_std, dout.shape), (dy * x_hat).sum(0), dy.sum(0)


def bwd_m_is_n(dout: Array, c: reference.BatchNormCache) -> tuple[Array, Array, Array]:
    """m = N (the batch size) instead of N·H·W in dx."""
    dy, x_hat = _rows(dout), _rows(c.x_hat)
    m = dout.shape[0]  # the batch size instead of N·H·W
    dbeta, dgamma = dy.sum(0), (dy * x_hat).sum(0)
    dx = (c.gamma * c.inv_std / m) * (m * dy - dbeta - x_hat * dgamma)
    return _unrows(dx, dout.shape), dgamma, dbeta


def bwd_no_transpose(dout: Array, c: reference.BatchNormCache) -> tuple[Array, Array, Array]:
    """dout reshaped to ``(-1, C)`` without moving C last (channels mixed)."""
    dy = dout.reshape(-1, dout.shape[1])  # channels mixed
    x_hat = _rows(c.x_hat)
    m = dy.shape[0]
    dbeta, dgamma = dy.sum(0), (dy * x_hat).sum(0)
    dx = (c.gamma * c.inv_std / m) * (m * dy - dbeta - x_hat * dgamma)
    return dx.reshape(dout.shape), dgamma, dbeta


def bwd_swapped(dout: Array, c: reference.BatchNormCache) -> tuple[Array, Array, Array]:
    """dgamma and dbeta swapped."""
    dx, dgamma, dbeta = reference.spatial_batchnorm_backward(dout, c)
    return dx, dbeta, dgamma


# --------------------------------------------------------------------------- fold_batchnorm


def _fold(weight: Array, bias: Array | None, gamma: Array, beta: Array, mean: Array, var: Array,
          eps: float, *, axis: int = 0, with_eps: bool = True, sqrt: bool = True, use_gamma: bool = True,
          bias_rule: str = "ok") -> tuple[Array, Array]:
    """BN folded into the layer before it, with one slip switched on by a keyword (the defaults are right)."""
    b = np.zeros_like(gamma) if bias is None else bias
    denom = var + eps if with_eps else var
    with np.errstate(all="ignore"):
        s = (gamma if use_gamma else 1.0) / (np.sqrt(denom) if sqrt else denom)
    shape = [1] * weight.ndim
    shape[axis] = -1
    w_new = weight * s.reshape(shape)
    if bias_rule == "no_mean":
        b_new = b * s + beta
    elif bias_rule == "mean_unscaled":
        b_new = b * s + beta - mean
    elif bias_rule == "no_beta":
        b_new = (b - mean) * s
    else:
        b_new = (b - mean) * s + beta
    return w_new.astype(weight.dtype), b_new.astype(weight.dtype)


def fold_input_axis(weight: Array, bias: Array | None, gamma: Array, beta: Array, running_mean: Array,
                    running_var: Array, eps: float) -> tuple[Array, Array]:
    """The scale applied to W's input channels (axis 1) instead of its output channels."""
    return _fold(weight, bias, gamma, beta, running_mean, running_var, eps, axis=1)


def fold_no_mean(weight: Array, bias: Array | None, gamma: Array, beta: Array, running_mean: Array,
                 running_var: Array, eps: float) -> tuple[Array, Array]:
    """b' = b·s + β: the running mean ignored."""
    return _fold(weight, bias, gamma, beta, running_mean, running_var, eps, bias_rule="no_mean")


def fold_mean_not_scaled(weight: Array, bias: Array | None, gamma: Array, beta: Array, running_mean: Array,
                         running_var: Array, eps: float) -> tuple[Array, Array]:
    """b' = b·s + β − μ: μ subtracted after the scale."""
    return _fold(weight, bias, gamma, beta, running_mean, running_var, eps, bias_rule="mean_unscaled")


def fold_no_beta(weight: Array, bias: Array | None, gamma: Array, beta: Array, running_mean: Array,
                 running_var: Array, eps: float) -> tuple[Array, Array]:
    """b' = (b − μ)·s: β missing."""
    return _fold(weight, bias, gamma, beta, running_mean, running_var, eps, bias_rule="no_beta")


def fold_no_eps(weight: Array, bias: Array | None, gamma: Array, beta: Array, running_mean: Array,
                running_var: Array, eps: float) -> tuple[Array, Array]:
    """s = γ/√var, without ε."""
    return _fold(weight, bias, gamma, beta, running_mean, running_var, eps, with_eps=False)


def fold_no_sqrt(weight: Array, bias: Array | None, gamma: Array, beta: Array, running_mean: Array,
                 running_var: Array, eps: float) -> tuple[Array, Array]:
    """s = γ/(var + ε), without the square root."""
    return _fold(weight, bias, gamma, beta, running_mean, running_var, eps, sqrt=False)


def fold_no_gamma(weight: Array, bias: Array | None, gamma: Array, beta: Array, running_mean: Array,
                  running_var: Array, eps: float) -> tuple[Array, Array]:
    """s = 1/√(var + ε), without γ."""
    return _fold(weight, bias, gamma, beta, running_mean, running_var, eps, use_gamma=False)
