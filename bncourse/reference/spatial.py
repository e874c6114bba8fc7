"""Spatial batch normalization for ``(N, C, H, W)``: a reshape around the 1-D version.

Every position (n, h, w) of a channel is one more example of that channel, so
``(N, C, H, W)`` becomes ``(N·H·W, C)``, the vanilla functions of
:mod:`bncourse.reference.batchnorm` run on it, and the result is reshaped back.  This is
``normalize(x, axes=(0, 2, 3))``, with one γ and β per channel.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bncourse.conventions import EPS
from bncourse.errors import BNCourseError
from bncourse.reference import _checks
from bncourse.reference.batchnorm import (
    BatchNormCache,
    batchnorm_backward_alt,
    batchnorm_forward,
)

__all__ = ["spatial_batchnorm_backward", "spatial_batchnorm_forward"]

FloatArray = NDArray[np.floating[Any]]

_LAYOUT = "(N, C, H, W)"


def _to_rows(a: FloatArray) -> FloatArray:
    """``(N, C, H, W) -> (N·H·W, C)``: one row per position, one column per channel."""
    return a.transpose(0, 2, 3, 1).reshape(-1, a.shape[1])


def _from_rows(rows: FloatArray, shape: tuple[int, ...]) -> FloatArray:
    """Inverse of :func:`_to_rows` for an ``(N, C, H, W)`` ``shape``; contiguous result."""
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

    Same as ``torch.nn.BatchNorm2d`` in training mode.

    Shapes:
        x: ``(N, C, H, W)`` with N·H·W > 1; gamma, beta: ``(C,)``.

    Returns:
        ``(out, cache)``: out ``(N, C, H, W)``; ``cache`` is the :class:`BatchNormCache`
        of the ``(N·H·W, C)`` view (its ``mean`` and ``var`` are per channel).
    """
    fn = "spatial_batchnorm_forward"
    x = _checks.as_float_array(x, "x", fn)
    _checks.check_ndim(x.shape, (4,), "x", fn, _LAYOUT)
    _checks.check_batch_size(x.shape, (0, 2, 3), fn)
    try:
        out, cache = batchnorm_forward(_to_rows(x), gamma, beta, eps)
    except BNCourseError as e:
        raise type(e)(f"{fn} on x.shape={x.shape}: {e}") from e
    return _from_rows(out, x.shape), cache


def spatial_batchnorm_backward(
    dout: ArrayLike, cache: BatchNormCache
) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""Backward pass of :func:`spatial_batchnorm_forward` (the closed form on ``(N·H·W, C)``).

    .. math::
        \frac{\partial L}{\partial x} = \frac{\gamma_c}{m \sqrt{\sigma^2_c + \epsilon}}
            \Big( m \, dy - \sum dy - \hat x \sum dy \, \hat x \Big), \quad m = NHW

    with the sums per channel over ``(N, H, W)``; dγ and dβ are those two sums.

    Shapes:
        dout: ``(N, C, H, W)``.

    Returns:
        ``(dx, dgamma, dbeta)``: dx ``(N, C, H, W)``; dgamma, dbeta ``(C,)`` summed over
        ``(N, H, W)``.
    """
    fn = "spatial_batchnorm_backward"
    dout = _checks.as_float_array(dout, "dout", fn)
    _checks.check_ndim(dout.shape, (4,), "dout", fn, _LAYOUT)
    try:
        dx, dgamma, dbeta = batchnorm_backward_alt(_to_rows(dout), cache)
    except BNCourseError as e:
        raise type(e)(f"{fn} on dout.shape={dout.shape}: {e}") from e
    return _from_rows(dx, dout.shape), dgamma, dbeta
