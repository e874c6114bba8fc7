"""Batch norm at speed: cache-blocked kernels behind the reference's signatures (not taught).

The functions of :mod:`bncourse.reference` are the formulas as written, one NumPy
expression per line of math: the answer key.  This module computes the same results
faster, for the benchmarks (``benchmarks/kernels.py``); nothing in the course uses it.
Its entry points have the signatures, the input checks (the same
:mod:`bncourse.validation` helpers and error messages) and the
:class:`~bncourse.reference.BatchNormCache` of the reference functions, so either
forward's cache feeds either backward:

* :func:`batchnorm_forward`, :func:`batchnorm_backward_alt` -- ``(N, D)``; inputs of
  fewer than :data:`MIN_ELEMENTS` values are handed to the reference functions;
* :func:`spatial_batchnorm_forward`, :func:`spatial_batchnorm_backward` --
  ``(N, C, H, W)``, always blocked.

Batch norm on ``(N, D)`` and spatial batch norm on ``(N, C, H, W)`` are the same
computation: statistics per channel c (axis 1) over every other axis.  The kernels
(:func:`forward_kernel`, :func:`backward_kernel`) take ``(N, C)`` or the ``(N, C, H·W)``
view of an image batch, so the image case needs no ``(N·H·W, C)`` transpose (which
copies the data).

Written the obvious way, NumPy runs every ``*``, ``-`` and ``+`` of a formula as a separate
pass over memory with a fresh temporary.  These kernels instead walk the leading axis in
blocks of about :data:`BLOCK_BYTES` per array and do all the elementwise work of a pass
on one block before moving on, so the second and third operation find the block in
cache; results are written with ``out=`` into buffers allocated once, and products that
are only summed go into a block-sized scratch buffer.  Memory traffic per call:

* :func:`forward_kernel` -- reads x twice (the mean; centring + Σ(x−μ)²) and x − μ once
  (x̂ and y), and writes x − μ, x̂ and y once each (the cache needs both x − μ and x̂);
* :func:`backward_kernel` -- reads dy and x̂ twice (the two sums; dx) and writes dx once.

Accuracy: each block's partial sums are taken in the input dtype (NumPy sums the
contiguous spatial axis pairwise) and the partial sums are added in float64 (see
:func:`~bncourse.reference.normalization.accumulator`), so a float32 sum over m terms
has the error of a sum over one block, not over m.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bncourse.conventions import EPS
from bncourse.reference import batchnorm as reference_bn
from bncourse.reference import spatial as reference_spatial
from bncourse.reference.batchnorm import BatchNormCache
from bncourse.reference.normalization import accumulator
from bncourse.validation import FloatArray

__all__ = [
    "BLOCK_BYTES",
    "MIN_ELEMENTS",
    "backward_kernel",
    "batchnorm_backward_alt",
    "batchnorm_forward",
    "forward_kernel",
    "spatial_batchnorm_backward",
    "spatial_batchnorm_forward",
]


BLOCK_BYTES = 1 << 19
"""Target size of one block of one array (512 KiB): big enough that the Python loop's
cost per block is small (measured: 64 KiB blocks are 1.4× slower on (4096, 1024)),
small enough for the cache."""

MIN_ELEMENTS = 1 << 16
""":func:`batchnorm_forward` and :func:`batchnorm_backward_alt` use the kernels from this
many values up; below it the Python loop costs more than the passes it saves and they
call the reference functions.  The spatial entry points use the kernels at every size
(the reference's ``(N·H·W, C)`` transpose copies the data)."""

MAX_BLOCK_ROWS = 256
"""At most this many slices of the leading axis per block, which bounds the number of
terms a float32 partial sum adds (for ``(N, D)`` input, one term per row)."""


# ------------------------------------------------------------------------ entry points


def batchnorm_forward(
    x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, eps: float = EPS
) -> tuple[FloatArray, BatchNormCache]:
    """:func:`bncourse.reference.batchnorm_forward`, blocked from :data:`MIN_ELEMENTS` values up."""
    x, gamma, beta, eps = reference_bn._check_forward_inputs(x, gamma, beta, eps, "batchnorm_forward")
    if x.size < MIN_ELEMENTS:
        return reference_bn.batchnorm_forward(x, gamma, beta, eps)
    out, x_hat, x_centered, mean, var, inv_std = forward_kernel(x, gamma, beta, eps)
    return out, BatchNormCache(x_hat, x_centered, inv_std, gamma, mean, var, eps)


def batchnorm_backward_alt(
    dout: ArrayLike, cache: BatchNormCache
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """:func:`bncourse.reference.batchnorm_backward_alt`, blocked from :data:`MIN_ELEMENTS` values up."""
    dout = reference_bn._check_dout(dout, cache, "batchnorm_backward_alt")
    if dout.size < MIN_ELEMENTS:
        return reference_bn.batchnorm_backward_alt(dout, cache)
    return backward_kernel(dout, cache.x_hat, cache.gamma, cache.inv_std)


def spatial_batchnorm_forward(
    x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, eps: float = EPS
) -> tuple[FloatArray, BatchNormCache]:
    """:func:`bncourse.reference.spatial_batchnorm_forward` on the ``(N, C, H·W)`` view, blocked."""
    x, gamma, beta, eps = reference_spatial._check_spatial_inputs(
        x, gamma, beta, eps, "spatial_batchnorm_forward"
    )
    out, x_hat, x_centered, mean, var, inv_std = forward_kernel(_channels_view(x), gamma, beta, eps)
    cache = BatchNormCache(
        x_hat.reshape(x.shape), x_centered.reshape(x.shape), inv_std, gamma, mean, var, eps
    )
    return out.reshape(x.shape), cache


def spatial_batchnorm_backward(
    dout: ArrayLike, cache: BatchNormCache
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """:func:`bncourse.reference.spatial_batchnorm_backward` on the ``(N, C, H·W)`` view, blocked."""
    dout = reference_spatial._check_spatial_dout(dout, cache, "spatial_batchnorm_backward")
    dx, dgamma, dbeta = backward_kernel(
        _channels_view(dout), _channels_view(cache.x_hat), cache.gamma, cache.inv_std
    )
    return dx.reshape(dout.shape), dgamma, dbeta


def _channels_view(a: FloatArray) -> FloatArray:
    """``(N, C, H, W) -> (N, C, H·W)``: a view when ``a`` is contiguous, else a copy."""
    N, C, H, W = a.shape
    return a.reshape(N, C, H * W)


# ----------------------------------------------------------------------------- kernels


def _blocks(a: FloatArray) -> Iterator[slice]:
    """Slices of the leading axis of ``a``, about BLOCK_BYTES of ``a`` each."""
    N = a.shape[0]
    row_bytes = a.itemsize * (a.size // N if N else 0)
    rows = min(MAX_BLOCK_ROWS, max(1, BLOCK_BYTES // max(1, row_bytes)))
    for start in range(0, N, rows):
        yield slice(start, min(start + rows, N))


def _reduced_axes(a: FloatArray) -> tuple[int, ...]:
    """Every axis but the channel axis 1: ``(0,)`` for ``(N, C)``, ``(0, 2)`` for ``(N, C, S)``."""
    return (0, *range(2, a.ndim))


def _per_channel(v: NDArray[Any], like: FloatArray) -> FloatArray:
    """A ``(C,)`` vector in the dtype of ``like``, shaped to broadcast along its axis 1."""
    return np.asarray(v, dtype=like.dtype).reshape((1, -1) + (1,) * (like.ndim - 2))


def _m(a: FloatArray) -> int:
    """Number of values per channel: the product of the reduced axes' sizes."""
    return a.size // a.shape[1]


def _dot(a: FloatArray, b: FloatArray, scratch: FloatArray) -> NDArray[Any]:
    """``Σ a·b`` per channel (axis 1) of two blocks shaped alike, in their dtype.

    ``(N, C)``: einsum, which adds the block's rows one after another without forming
    ``a·b``.  ``(N, C, S)``: ``a·b`` goes into ``scratch`` (a block-sized buffer) and is
    summed over S first, which NumPy does pairwise along a contiguous axis -- S can be
    tens of thousands of terms, too many for a float32 running sum.
    """
    if a.ndim == 2:
        return np.einsum("nc,nc->c", a, b)
    prod = np.multiply(a, b, out=scratch[: len(a)])
    return prod.sum(axis=2).sum(axis=0)


def forward_kernel(
    x: FloatArray, gamma: FloatArray, beta: FloatArray, eps: float
) -> tuple[FloatArray, FloatArray, FloatArray, NDArray[Any], NDArray[Any], NDArray[Any]]:
    r"""Training-mode batch norm of ``(N, C)`` or ``(N, C, S)``, statistics per channel.

    .. math::
        \mu = \tfrac1m \textstyle\sum x, \quad \sigma^2 = \tfrac1m \sum (x - \mu)^2, \quad
        \hat x = (x - \mu) / \sqrt{\sigma^2 + \epsilon}, \quad y = \gamma \hat x + \beta,
        \quad m = N S

    with the sums over every axis but 1.  Inputs are trusted (validated by the caller);
    gamma and beta are ``(C,)`` in x's dtype.

    Returns:
        ``(out, x_hat, x_centered, mean, var, inv_std)``: the first three shaped like x,
        contiguous, in x's dtype; the last three ``(C,)`` in x's dtype.
    """
    dtype, axes, m = x.dtype, _reduced_axes(x), _m(x)
    acc = accumulator(dtype)

    total = np.zeros(x.shape[1], acc)
    for blk in _blocks(x):
        total += x[blk].sum(axis=axes)
    mean = (total / m).astype(dtype)  # μ
    mu = _per_channel(mean, x)

    x_centered = np.empty(x.shape, dtype)
    squares = np.zeros(x.shape[1], acc)
    scratch = np.empty_like(x[: next(_blocks(x)).stop])
    for blk in _blocks(x):
        xc = np.subtract(x[blk], mu, out=x_centered[blk])  # x − μ
        squares += _dot(xc, xc, scratch)  # Σ (x − μ)² of the block
    var64 = squares / m  # σ² (biased), in the accumulator dtype
    inv_std = (1.0 / np.sqrt(var64 + eps)).astype(dtype)  # 1/√(σ² + ε)

    x_hat, out = np.empty(x.shape, dtype), np.empty(x.shape, dtype)
    inv, g, b = (_per_channel(v, x) for v in (inv_std, gamma, beta))
    for blk in _blocks(x):
        np.multiply(x_centered[blk], inv, out=x_hat[blk])  # x̂
        np.multiply(x_hat[blk], g, out=out[blk])
        out[blk] += b  # y = γ x̂ + β
    return out, x_hat, x_centered, mean, var64.astype(dtype), inv_std


def backward_kernel(
    dout: FloatArray, x_hat: FloatArray, gamma: FloatArray, inv_std: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""Closed-form batch-norm backward on ``(N, C)`` or ``(N, C, S)``, sums per channel.

    .. math::
        d\beta = \textstyle\sum dy, \quad d\gamma = \sum dy \, \hat x, \quad
        dx = k \, dy - \frac{k \, d\gamma}{m} \hat x - \frac{k \, d\beta}{m}, \quad
        k = \frac{\gamma}{\sqrt{\sigma^2 + \epsilon}}, \ m = N S

    which is ``(γ / (m √(σ²+ε))) (m dy − Σ dy − x̂ Σ dy x̂)`` with the three per-channel
    factors computed once in the accumulator dtype.

    Returns:
        ``(dx, dgamma, dbeta)``: dx shaped like dout, contiguous; dgamma, dbeta ``(C,)``;
        all in the dtype of dout.
    """
    dtype, m = dout.dtype, _m(dout)
    acc = accumulator(dtype)
    axes = _reduced_axes(dout)
    dbeta64, dgamma64 = np.zeros(dout.shape[1], acc), np.zeros(dout.shape[1], acc)
    scratch = np.empty_like(dout[: next(_blocks(dout)).stop])
    for blk in _blocks(dout):
        dbeta64 += dout[blk].sum(axis=axes)  # Σ dy
        dgamma64 += _dot(dout[blk], x_hat[blk], scratch)  # Σ dy x̂
    dbeta, dgamma = dbeta64.astype(dtype), dgamma64.astype(dtype)

    k64 = gamma.astype(acc) * inv_std.astype(acc)  # γ / √(σ² + ε)
    k = _per_channel(k64, dout)
    k_dgamma = _per_channel(k64 * dgamma / m, dout)
    k_dbeta = _per_channel(k64 * dbeta / m, dout)

    dx = np.empty(dout.shape, dtype)
    for blk in _blocks(dout):
        dx_blk = np.multiply(dout[blk], k, out=dx[blk])  # k dy
        tmp = np.multiply(x_hat[blk], k_dgamma, out=scratch[: len(dx_blk)])
        dx_blk -= tmp  # − (k dγ / m) x̂
        dx_blk -= k_dbeta  # − k dβ / m
    return dx, dgamma, dbeta
