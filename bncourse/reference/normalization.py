"""One kernel, many normalizations: ``normalize(x, axes)`` and the layers built on it.

Batch, layer, instance and group normalization all compute the same thing -- subtract
the mean and divide by the standard deviation -- and differ only in the axes the
statistics are taken over:

============================  =======================================================
batchnorm ``(N, D)``          ``axes=(0,)``
spatial batchnorm             ``axes=(0, 2, 3)`` on ``(N, C, H, W)``
layernorm                     every axis except 0
instancenorm                  ``axes=(2, 3)`` on ``(N, C, H, W)`` (groupnorm with G = C)
groupnorm                     reshape to ``(N, G, C // G, H, W)``, ``axes=(2, 3, 4)``
============================  =======================================================

Each ``*_forward`` returns ``(out, cache)`` and each ``*_backward(dout, cache)`` returns
``(dx, dgamma, dbeta)``; the caches are ``NamedTuple`` s named after the math.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from bncourse import validation
from bncourse.conventions import EPS
from bncourse.errors import BNCourseError
from bncourse.validation import FloatArray

__all__ = [
    "GroupNormCache",
    "LayerNormCache",
    "NormalizeCache",
    "groupnorm_backward",
    "groupnorm_forward",
    "instancenorm_backward",
    "instancenorm_forward",
    "layernorm_backward",
    "layernorm_forward",
    "normalize",
    "normalize_backward",
]



def accumulator(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The dtype to sum in: float64 for float16/float32 inputs (as torch's CPU kernels do).

    NumPy adds rows one after another when it reduces over a non-contiguous axis, so a
    float32 sum over m rows has an error growing with m; summing in float64 and
    rounding once keeps float32 results as accurate as torch's.
    """
    return np.dtype(np.float64) if dtype.itemsize < 8 else dtype


class NormalizeCache(NamedTuple):
    """What :func:`normalize_backward` needs.  Statistics keep the reduced axes (size 1)."""

    x_hat: FloatArray
    """``(x - mean) * inv_std``, shaped like ``x``."""
    x_centered: FloatArray
    """``x - mean``, shaped like ``x``."""
    inv_std: FloatArray
    """``1 / sqrt(var + eps)``, size 1 along ``axes``."""
    mean: FloatArray
    """Mean over ``axes``, size 1 along ``axes``."""
    var: FloatArray
    """Biased variance over ``axes`` (divide by m), size 1 along ``axes``."""
    axes: tuple[int, ...]
    """The reduced axes, sorted and non-negative."""
    eps: float


def normalize(x: ArrayLike, axes: tuple[int, ...] | int, eps: float = EPS) -> tuple[
    FloatArray, NormalizeCache
]:
    r"""Standardize ``x`` over ``axes``: the kernel every normalization layer shares.

    .. math::
        \mu = \frac1m \sum_{i \in \text{axes}} x_i, \quad
        \sigma^2 = \frac1m \sum_{i \in \text{axes}} (x_i - \mu)^2, \quad
        \hat x = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}

    where m is the number of elements reduced per statistic (the product of the sizes
    of ``axes``).  The variance is the biased one.

    Shapes:
        x: any shape; ``axes``: any distinct axes of x (negative allowed).

    Returns:
        ``(x_hat, cache)``: ``x_hat`` shaped like ``x`` (same dtype, contiguous) and a
        :class:`NormalizeCache` for :func:`normalize_backward`.

    Raises:
        DTypeError: x is not floating point.
        ShapeError: ``axes`` are out of range, repeated or empty.
        ParameterError: ``eps <= 0``.
    """
    fn = "normalize"
    x = validation.as_float_array(x, "x", fn)
    axes = validation.check_axes(axes, x.ndim, fn)
    eps = validation.check_eps(eps, fn)

    acc = accumulator(x.dtype)
    mu = x.mean(axis=axes, keepdims=True, dtype=acc).astype(x.dtype)  # μ = (1/m) Σ x
    x_centered = x - mu  # x − μ
    var = np.mean(x_centered * x_centered, axis=axes, keepdims=True, dtype=acc)  # σ² (biased)
    inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype)  # 1/√(σ² + ε)
    var = var.astype(x.dtype)
    x_hat = np.ascontiguousarray(x_centered * inv_std)  # x̂ = (x − μ)/√(σ² + ε)
    return x_hat, NormalizeCache(x_hat, x_centered, inv_std, mu, var, axes, eps)


def normalize_backward(dx_hat: ArrayLike, cache: NormalizeCache) -> FloatArray:
    r"""Gradient of :func:`normalize` with respect to ``x``, in closed form.

    .. math::
        \frac{\partial L}{\partial x} = \frac{1}{\sqrt{\sigma^2 + \epsilon}}
        \Big( g - \operatorname{mean}(g) - \hat x \, \operatorname{mean}(g \, \hat x) \Big),
        \qquad g = \frac{\partial L}{\partial \hat x}

    with the means over the normalized axes (m elements each).  This is
    ``(inv_std / m) * (m * g - sum(g) - x_hat * sum(g * x_hat))``.

    Shapes:
        dx_hat: like the ``x`` given to :func:`normalize`.

    Returns:
        dx, shaped like ``x`` (same dtype, contiguous).

    Raises:
        ShapeError: ``dx_hat`` does not have the shape of ``x``.
    """
    fn = "normalize_backward"
    x_hat, inv_std, axes = cache.x_hat, cache.inv_std, cache.axes
    g = validation.as_float_array(dx_hat, "dx_hat", fn).astype(x_hat.dtype, copy=False)
    validation.check_shape(g.shape, x_hat.shape, "dx_hat", fn)

    acc = accumulator(g.dtype)
    g_mean = g.mean(axis=axes, keepdims=True, dtype=acc).astype(g.dtype)  # mean(g)
    gx_mean = np.mean(g * x_hat, axis=axes, keepdims=True, dtype=acc).astype(g.dtype)  # mean(g x̂)
    return np.ascontiguousarray(inv_std * (g - g_mean - x_hat * gx_mean))


# --------------------------------------------------------------------------- layernorm


class LayerNormCache(NamedTuple):
    """Cache of :func:`layernorm_forward`: the kernel's cache plus ``gamma``."""

    norm: NormalizeCache
    gamma: FloatArray


def layernorm_forward(
    x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, eps: float = EPS
) -> tuple[FloatArray, LayerNormCache]:
    r"""Layer normalization: each example normalized over all its features.

    .. math::
        y = \gamma \odot \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta

    with μ, σ² (biased) over every axis except 0, per example.  The same as
    ``torch.nn.LayerNorm(x.shape[1:], eps)``: γ and β are elementwise, shaped like one
    example.  Independent of the batch, so identical in training and evaluation.

    Shapes:
        x: ``(N, D)`` or ``(N, *F)``; gamma, beta: ``x.shape[1:]``.

    Returns:
        ``(out, cache)``: ``out`` shaped like x; ``cache`` for :func:`layernorm_backward`.

    Raises:
        ShapeError, DTypeError, ParameterError: on bad input (messages say which).
    """
    fn = "layernorm_forward"
    x = validation.as_float_array(x, "x", fn)
    validation.check_min_ndim(x.shape, 2, "x", fn, "(N, D) or (N, *F)")
    gamma = validation.as_param(gamma, "gamma", fn, x.shape[1:], x.dtype)
    beta = validation.as_param(beta, "beta", fn, x.shape[1:], x.dtype)
    eps = validation.check_eps(eps, fn)

    x_hat, norm = normalize(x, axes=tuple(range(1, x.ndim)), eps=eps)
    out = gamma * x_hat + beta  # y = γ x̂ + β
    return np.ascontiguousarray(out), LayerNormCache(norm, gamma)


def layernorm_backward(
    dout: ArrayLike, cache: LayerNormCache
) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""Backward pass of :func:`layernorm_forward`.

    .. math::
        \frac{\partial L}{\partial \beta} = \sum_n dy_n, \quad
        \frac{\partial L}{\partial \gamma} = \sum_n dy_n \odot \hat x_n, \quad
        \frac{\partial L}{\partial x} = \text{normalize\_backward}(\gamma \odot dy)

    Shapes:
        dout: like x.

    Returns:
        ``(dx, dgamma, dbeta)``: dx like x; dgamma, dbeta like ``x.shape[1:]``.
    """
    fn = "layernorm_backward"
    x_hat = cache.norm.x_hat
    dout = validation.as_float_array(dout, "dout", fn).astype(x_hat.dtype, copy=False)
    validation.check_shape(dout.shape, x_hat.shape, "dout", fn)

    acc = accumulator(dout.dtype)
    dbeta = dout.sum(axis=0, dtype=acc).astype(dout.dtype)  # ∂L/∂β = Σ_n dy
    dgamma = np.sum(dout * x_hat, axis=0, dtype=acc).astype(dout.dtype)  # ∂L/∂γ = Σ_n dy x̂
    dx = normalize_backward(dout * cache.gamma, cache.norm)  # ∂L/∂x̂ = γ dy
    return dx, dgamma, dbeta


# --------------------------------------------------------------------------- groupnorm


class GroupNormCache(NamedTuple):
    """Cache of :func:`groupnorm_forward`.

    ``norm`` is the kernel's cache on the grouped view ``(N, G, C // G, *S)``;
    ``x_hat`` is the normalized input in the shape of ``x``.
    """

    x_hat: FloatArray
    gamma: FloatArray
    norm: NormalizeCache


def _channel_shape(ndim: int, num_channels: int) -> tuple[int, ...]:
    """``(1, C, 1, ..., 1)``: how a per-channel vector broadcasts against ``(N, C, *S)``."""
    return (1, num_channels) + (1,) * (ndim - 2)


def groupnorm_forward(
    x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, num_groups: int, eps: float = EPS
) -> tuple[FloatArray, GroupNormCache]:
    r"""Group normalization (Wu & He, 2018): per example, over groups of channels.

    The C channels are split into G groups of C/G consecutive channels; μ and σ²
    (biased) are taken over each group's channels and all spatial positions:

    .. math::
        x \to (N, G, C/G, *S), \quad \hat x = \text{normalize}(x, \text{axes}=(2, 3, \dots)),
        \quad y_{nc} = \gamma_c \hat x_{nc} + \beta_c

    G = 1 is layer norm over ``(C, *S)`` with per-channel γ; G = C is instance norm.
    Matches ``torch.nn.GroupNorm(num_groups, C, eps)``.

    Shapes:
        x: ``(N, C, H, W)`` or ``(N, C, *S)``; gamma, beta: ``(C,)``.

    Returns:
        ``(out, cache)``: out shaped like x; cache for :func:`groupnorm_backward`.

    Raises:
        ParameterError: ``num_groups`` does not divide C ("C=6 not divisible by G=4").
        ShapeError, DTypeError: on bad shapes or dtypes.
    """
    fn = "groupnorm_forward"
    x = validation.as_float_array(x, "x", fn)
    validation.check_min_ndim(x.shape, 2, "x", fn, "(N, C, H, W) or (N, C, *S)")
    N, C = x.shape[:2]
    G = validation.check_num_groups(C, num_groups, fn)
    gamma = validation.as_param(gamma, "gamma", fn, (C,), x.dtype)
    beta = validation.as_param(beta, "beta", fn, (C,), x.dtype)
    eps = validation.check_eps(eps, fn)

    grouped = x.reshape(N, G, C // G, *x.shape[2:])
    x_hat, norm = normalize(grouped, axes=tuple(range(2, grouped.ndim)), eps=eps)
    x_hat = x_hat.reshape(x.shape)
    shape = _channel_shape(x.ndim, C)
    out = gamma.reshape(shape) * x_hat + beta.reshape(shape)  # y = γ_c x̂ + β_c
    return out, GroupNormCache(x_hat, gamma, norm)


def groupnorm_backward(
    dout: ArrayLike, cache: GroupNormCache
) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""Backward pass of :func:`groupnorm_forward`.

    .. math::
        \frac{\partial L}{\partial \beta_c} = \sum_{n, s} dy_{ncs}, \quad
        \frac{\partial L}{\partial \gamma_c} = \sum_{n, s} dy_{ncs} \hat x_{ncs}, \quad
        \frac{\partial L}{\partial x} = \text{normalize\_backward}(\gamma_c \, dy)

    Shapes:
        dout: like x ``(N, C, *S)``.

    Returns:
        ``(dx, dgamma, dbeta)``: dx like x; dgamma, dbeta ``(C,)``.
    """
    fn = "groupnorm_backward"
    x_hat, gamma = cache.x_hat, cache.gamma
    dout = validation.as_float_array(dout, "dout", fn).astype(x_hat.dtype, copy=False)
    validation.check_shape(dout.shape, x_hat.shape, "dout", fn)

    reduce = (0, *range(2, dout.ndim))  # every axis except the channel axis
    acc = accumulator(dout.dtype)
    dbeta = dout.sum(axis=reduce, dtype=acc).astype(dout.dtype)  # Σ dy
    dgamma = np.sum(dout * x_hat, axis=reduce, dtype=acc).astype(dout.dtype)  # Σ dy x̂
    dx_hat = dout * gamma.reshape(_channel_shape(dout.ndim, gamma.shape[0]))
    dx = normalize_backward(dx_hat.reshape(cache.norm.x_hat.shape), cache.norm)
    return dx.reshape(dout.shape), dgamma, dbeta


# ------------------------------------------------------------------------ instancenorm


def instancenorm_forward(
    x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, eps: float = EPS
) -> tuple[FloatArray, GroupNormCache]:
    r"""Instance normalization: per example and per channel, over spatial positions.

    .. math::
        \hat x_{nc} = \frac{x_{nc} - \mu_{nc}}{\sqrt{\sigma^2_{nc} + \epsilon}}, \quad
        y_{nc} = \gamma_c \hat x_{nc} + \beta_c

    It is group normalization with one channel per group (G = C).  Matches
    ``torch.nn.functional.instance_norm(x, weight=gamma, bias=beta, eps=eps)``.

    Shapes:
        x: ``(N, C, L)``, ``(N, C, H, W)`` or ``(N, C, *S)`` (at least one spatial axis);
        gamma, beta: ``(C,)``.

    Returns:
        ``(out, cache)``: out like x; cache for :func:`instancenorm_backward`.
    """
    fn = "instancenorm_forward"
    x = validation.as_float_array(x, "x", fn)
    validation.check_min_ndim(x.shape, 3, "x", fn, "(N, C, H, W) or (N, C, *S)")
    try:
        return groupnorm_forward(x, gamma, beta, num_groups=x.shape[1], eps=eps)
    except BNCourseError as e:
        raise type(e)(f"{fn} (groupnorm with G = C): {e}") from e


def instancenorm_backward(
    dout: ArrayLike, cache: GroupNormCache
) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""Backward pass of :func:`instancenorm_forward` (that of groupnorm with G = C).

    .. math::
        \frac{\partial L}{\partial x_{nc}} = \text{normalize\_backward}(\gamma_c \, dy_{nc})
        \ \text{over the spatial axes}, \quad
        \frac{\partial L}{\partial \gamma_c} = \sum_{n,s} dy \, \hat x, \quad
        \frac{\partial L}{\partial \beta_c} = \sum_{n,s} dy

    Shapes:
        dout: like x ``(N, C, *S)``.

    Returns:
        ``(dx, dgamma, dbeta)``: dx like x; dgamma, dbeta ``(C,)``.
    """
    return groupnorm_backward(dout, cache)
