"""Spatial batch normalization for ``(N, C, H, W)``: the 1-D version with more examples.

Every position (n, h, w) of a channel is one more example of that channel, so spatial
batch norm is the batch norm of :mod:`bncourse.reference.batchnorm` on the
``(N·H·W, C)`` matrix of rows ``x[n, :, h, w]``: ``normalize(x, axes=(0, 2, 3))`` with one
γ and β per channel.  Building that matrix takes a transpose, which copies the whole
array (twice, with the way back), so the code instead views x as ``(N, C, H·W)`` --
free for a contiguous array -- and runs the same per-channel kernels
(:mod:`bncourse.reference._fast`) with the sums over axes (0, 2) of that view.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bncourse import validation
from bncourse.conventions import EPS
from bncourse.reference import _fast as _blocked
from bncourse.reference.batchnorm import BatchNormCache, _check_dout

__all__ = ["spatial_batchnorm_backward", "spatial_batchnorm_forward"]

FloatArray = NDArray[np.floating[Any]]

_LAYOUT = "(N, C, H, W)"


def _channels_view(a: FloatArray) -> FloatArray:
    """``(N, C, H, W) -> (N, C, H·W)``: a view when ``a`` is contiguous, else a copy."""
    N, C, H, W = a.shape
    return a.reshape(N, C, H * W)


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
    fn = "spatial_batchnorm_forward"
    x = validation.as_float_array(x, "x", fn)
    validation.check_ndim(x.shape, (4,), "x", fn, _LAYOUT)
    validation.check_batch_size(x.shape, (0, 2, 3), fn)
    where = f"{fn} on x.shape={x.shape}"
    C = x.shape[1]
    gamma = validation.as_param(gamma, "gamma", where, (C,), x.dtype)
    beta = validation.as_param(beta, "beta", where, (C,), x.dtype)
    eps = validation.check_eps(eps, where)

    # μ_c, σ²_c over (n, h, w); x̂ = (x − μ)/√(σ² + ε); y = γ_c x̂ + β_c
    out, x_hat, x_centered, mean, var, inv_std = _blocked.forward(
        _channels_view(x), gamma, beta, eps
    )
    cache = BatchNormCache(
        x_hat=x_hat.reshape(x.shape),
        x_centered=x_centered.reshape(x.shape),
        inv_std=inv_std,
        gamma=gamma,
        mean=mean,
        var=var,
        eps=eps,
    )
    return out.reshape(x.shape), cache


def spatial_batchnorm_backward(
    dout: ArrayLike, cache: BatchNormCache
) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""Backward pass of :func:`spatial_batchnorm_forward`, in closed form.

    .. math::
        \frac{\partial L}{\partial x} = \frac{\gamma_c}{m \sqrt{\sigma^2_c + \epsilon}}
            \Big( m \, dy - \sum dy - \hat x \sum dy \, \hat x \Big), \quad m = NHW

    with the sums per channel over ``(N, H, W)``; dγ and dβ are those two sums.  The
    formula of :func:`~bncourse.reference.batchnorm_backward_alt`, on the
    ``(N, C, H·W)`` view.

    Shapes:
        dout: ``(N, C, H, W)``.

    Returns:
        ``(dx, dgamma, dbeta)``: dx ``(N, C, H, W)``; dgamma, dbeta ``(C,)`` summed over
        ``(N, H, W)``.

    Raises:
        ShapeError: dout is not 4-D or not shaped like the forward's x.
        BNCourseError: ``cache`` is not the forward's :class:`BatchNormCache`.
    """
    fn = "spatial_batchnorm_backward"
    dout = validation.as_float_array(dout, "dout", fn)
    validation.check_ndim(dout.shape, (4,), "dout", fn, _LAYOUT)
    dout = _check_dout(dout, cache, fn)
    validation.check_ndim(cache.x_hat.shape, (4,), "cache.x_hat", fn, _LAYOUT)
    dx, dgamma, dbeta = _blocked.backward(
        _channels_view(dout), _channels_view(cache.x_hat), cache.gamma, cache.inv_std
    )
    return dx.reshape(dout.shape), dgamma, dbeta
