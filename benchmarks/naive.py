"""The closed form as it was before the fast path: one NumPy expression per formula line.

Kept only to measure the speed-up of :mod:`bncourse.reference._fast` in the same run
(``numpy-naive`` in the report).  Same math and the same float64 accumulation of float32
sums; every ``*``, ``-``, ``+`` is a full pass with a fresh temporary, and the spatial
case goes through the ``(N·H·W, C)`` transpose and back, which copies the data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from bncourse.reference import normalize

Array = NDArray[np.floating[Any]]
Cache = tuple[Array, Array, Array]


def _acc(dtype: np.dtype[Any]) -> np.dtype[Any]:
    return np.dtype(np.float64) if dtype.itemsize < 8 else dtype


def forward(x: Array, gamma: Array, beta: Array, eps: float = 1e-5) -> tuple[Array, Cache]:
    """``y = γ (x − μ)/√(σ² + ε) + β`` over axis 0 of ``(N, D)``; cache ``(x̂, 1/σ, γ)``."""
    x_hat, norm = normalize(x, axes=(0,), eps=eps)
    out = gamma * x_hat + beta
    return out, (x_hat, norm.inv_std.reshape(-1), gamma)


def backward(dout: Array, cache: Cache) -> tuple[Array, Array, Array]:
    """``dx = (γ/(m σ)) (m dy − Σ dy − x̂ Σ dy x̂)``, ``dγ = Σ dy x̂``, ``dβ = Σ dy``."""
    x_hat, inv_std, gamma = cache
    m = dout.shape[0]
    acc = _acc(dout.dtype)
    dbeta = dout.sum(axis=0, dtype=acc).astype(dout.dtype)
    dgamma = np.sum(dout * x_hat, axis=0, dtype=acc).astype(dout.dtype)
    dx = (gamma * inv_std / m) * (m * dout - dbeta - x_hat * dgamma)
    return np.ascontiguousarray(dx), dgamma, dbeta


def _to_rows(a: Array) -> Array:
    return a.transpose(0, 2, 3, 1).reshape(-1, a.shape[1])


def _from_rows(rows: Array, shape: tuple[int, ...]) -> Array:
    N, C, H, W = shape
    return np.ascontiguousarray(rows.reshape(N, H, W, C).transpose(0, 3, 1, 2))


def spatial_forward(x: Array, gamma: Array, beta: Array, eps: float = 1e-5) -> tuple[Array, Cache]:
    """:func:`forward` on the ``(N·H·W, C)`` rows of ``(N, C, H, W)``, reshaped back."""
    out, cache = forward(_to_rows(x), gamma, beta, eps)
    return _from_rows(out, x.shape), cache


def spatial_backward(dout: Array, cache: Cache) -> tuple[Array, Array, Array]:
    """:func:`backward` on the ``(N·H·W, C)`` rows, reshaped back."""
    dx, dgamma, dbeta = backward(_to_rows(dout), cache)
    return _from_rows(dx, dout.shape), dgamma, dbeta
