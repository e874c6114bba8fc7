"""Spatial batch normalization for ``(N, C, H, W)``: the 1-D version with more examples.

Every position (n, h, w) of a channel is one more example of that channel, so spatial
batch norm is the batch norm of :mod:`bncourse.reference.batchnorm` on the
``(N·H·W, C)`` matrix of rows ``x[n, :, h, w]`` -- the same numbers as
``normalize(x, axes=(0, 2, 3))`` with one γ and β per channel.  The code says exactly
that: transpose the channels to the last axis, flatten the rest into rows, run
:func:`~bncourse.reference.batchnorm_forward` or
:func:`~bncourse.reference.batchnorm_backward_alt`, and put the result back in
``(N, C, H, W)``.  (The transpose copies the data; a cache-blocked version that avoids
the copy, for speed only, is in :mod:`bncourse.reference._fast`.)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from bncourse import validation
from bncourse.conventions import EPS
from bncourse.reference.batchnorm import (
    BatchNormCache,
    _check_dout,
    batchnorm_backward_alt,
    batchnorm_forward,
)
from bncourse.validation import FloatArray

__all__ = ["spatial_batchnorm_backward", "spatial_batchnorm_forward"]


_LAYOUT = "(N, C, H, W)"


def _to_rows(a: FloatArray) -> FloatArray:
    """``(N, C, H, W) -> (N·H·W, C)``: one row ``a[n, :, h, w]`` per position."""
    return a.transpose(0, 2, 3, 1).reshape(-1, a.shape[1])


def _from_rows(rows: FloatArray, shape: tuple[int, ...]) -> FloatArray:
    """``(N·H·W, C) -> (N, C, H, W)``, the inverse of :func:`_to_rows` (C-contiguous)."""
    N, C, H, W = shape
    return np.ascontiguousarray(rows.reshape(N, H, W, C).transpose(0, 3, 1, 2))


def spatial_batchnorm_forward(
    x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, eps: float = EPS
) -> tuple[FloatArray, BatchNormCache]:
    r"""Batch normalization of images: statistics per channel over ``(N, H, W)``.

    .. math::
        \mu_c = \frac{1}{NHW} \sum_{n,h,w} x_{nchw}, \quad
        \sigma^2_c = \frac{1}{NHW} \sum_{n,h,w} (x_{nchw} - \mu_c)^2, \quad
        y_{nchw} = \gamma_c \frac{x_{nchw} - \mu_c}{\sqrt{\sigma^2_c + \epsilon}} + \beta_c

    Same as ``torch.nn.BatchNorm2d`` in training mode, and the same numbers as
    :func:`~bncourse.reference.batchnorm_forward` on the ``(N·H·W, C)`` rows.

    Shapes:
        x: ``(N, C, H, W)`` with N·H·W > 1; gamma, beta: ``(C,)``.

    Returns:
        ``(out, cache)``: out ``(N, C, H, W)``; ``cache`` is a :class:`BatchNormCache`
        whose ``x_hat`` and ``x_centered`` are ``(N, C, H, W)`` and whose ``mean``,
        ``var``, ``inv_std`` and ``gamma`` are ``(C,)``.

    Raises:
        ShapeError: x is not 4-D, or gamma/beta are not ``(C,)``.
        DTypeError: an input is not floating point.
        BatchSizeError: N·H·W = 1.
        ParameterError: ``eps <= 0``.
    """
    x, gamma, beta, eps = _check_spatial_inputs(x, gamma, beta, eps, "spatial_batchnorm_forward")

    # μ_c, σ²_c over (n, h, w); x̂ = (x − μ)/√(σ² + ε); y = γ_c x̂ + β_c: batch norm of the rows
    out_rows, rows_cache = batchnorm_forward(_to_rows(x), gamma, beta, eps)
    cache = rows_cache._replace(
        x_hat=_from_rows(rows_cache.x_hat, x.shape),
        x_centered=_from_rows(rows_cache.x_centered, x.shape),
    )
    return _from_rows(out_rows, x.shape), cache


def _check_spatial_inputs(
    x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, eps: float, fn: str
) -> tuple[FloatArray, FloatArray, FloatArray, float]:
    """``(x, gamma, beta, eps)`` validated: x ``(N, C, H, W)`` with N·H·W > 1, γ, β ``(C,)``."""
    x = validation.as_float_array(x, "x", fn)
    validation.check_ndim(x.shape, (4,), "x", fn, _LAYOUT)
    validation.check_batch_size(x.shape, (0, 2, 3), fn)
    where = f"{fn} on x.shape={x.shape}"
    C = x.shape[1]
    gamma = validation.as_param(gamma, "gamma", where, (C,), x.dtype)
    beta = validation.as_param(beta, "beta", where, (C,), x.dtype)
    eps = validation.check_eps(eps, where)
    return x, gamma, beta, eps


def spatial_batchnorm_backward(
    dout: ArrayLike, cache: BatchNormCache
) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""Backward pass of :func:`spatial_batchnorm_forward`, in closed form.

    .. math::
        \frac{\partial L}{\partial x} = \frac{\gamma_c}{m \sqrt{\sigma^2_c + \epsilon}}
            \Big( m \, dy - \sum dy - \hat x \sum dy \, \hat x \Big), \quad m = NHW

    with the sums per channel over ``(N, H, W)``; dγ and dβ are those two sums.  The
    formula of :func:`~bncourse.reference.batchnorm_backward_alt`, on the
    ``(N·H·W, C)`` rows.

    Shapes:
        dout: ``(N, C, H, W)``.

    Returns:
        ``(dx, dgamma, dbeta)``: dx ``(N, C, H, W)``; dgamma, dbeta ``(C,)`` summed over
        ``(N, H, W)``.

    Raises:
        ShapeError: dout is not 4-D or not shaped like the forward's x.
        BNCourseError: ``cache`` is not the forward's :class:`BatchNormCache`.
    """
    dout = _check_spatial_dout(dout, cache, "spatial_batchnorm_backward")

    # the closed form on the rows; it reads only x̂, 1/√(σ² + ε) and γ from the cache
    rows_cache = cache._replace(x_hat=_to_rows(cache.x_hat))
    dx_rows, dgamma, dbeta = batchnorm_backward_alt(_to_rows(dout), rows_cache)
    return _from_rows(dx_rows, dout.shape), dgamma, dbeta


def _check_spatial_dout(dout: ArrayLike, cache: BatchNormCache, fn: str) -> FloatArray:
    """``dout`` validated: ``(N, C, H, W)``, the shape of the forward's x, the cache's dtype."""
    dout = validation.as_float_array(dout, "dout", fn)
    validation.check_ndim(dout.shape, (4,), "dout", fn, _LAYOUT)
    dout = _check_dout(dout, cache, fn)
    validation.check_ndim(cache.x_hat.shape, (4,), "cache.x_hat", fn, _LAYOUT)
    return dout
