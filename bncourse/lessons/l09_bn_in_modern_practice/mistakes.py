"""The wrong implementations behind notebook 09's ``Mistake`` s (same signatures as the exercises).

* ``rms_*`` — ``rmsnorm_forward``; * ``gbn_*`` — ``ghost_batchnorm_forward``;
* ``ws_*`` — ``weight_standardize``.  NumPy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bncourse.validation import Array

__all__ = [
    "gbn_interleaved", "gbn_size_as_count", "gbn_unbiased", "gbn_whole_batch",
    "rms_axis0", "rms_centered", "rms_eps_outside", "rms_no_gamma", "rms_no_sqrt",
    "ws_centered_only", "ws_over_outputs", "ws_spatial_only", "ws_unbiased",
]


def _rms(x: Array, gamma: Array, eps: float, axis: int = -1, sqrt: bool = True) -> tuple[Array, None]:
    ms = np.mean(x * x, axis=axis, keepdims=True) + eps
    return gamma * x / (np.sqrt(ms) if sqrt else ms), None


def rms_centered(x: Array, gamma: Array, eps: float = 1e-5) -> tuple[Array, None]:
    """Subtracts the mean first (that is layer norm without β)."""
    xc = x - x.mean(axis=-1, keepdims=True)
    return gamma * xc / np.sqrt(np.mean(xc * xc, axis=-1, keepdims=True) + eps), None


def rms_axis0(x: Array, gamma: Array, eps: float = 1e-5) -> tuple[Array, None]:
    """The mean square over the batch axis."""
    return _rms(x, gamma, eps, axis=0)


def rms_eps_outside(x: Array, gamma: Array, eps: float = 1e-5) -> tuple[Array, None]:
    """ε added after the square root."""
    return gamma * x / (np.sqrt(np.mean(x * x, axis=-1, keepdims=True)) + eps), None


def rms_no_sqrt(x: Array, gamma: Array, eps: float = 1e-5) -> tuple[Array, None]:
    """Divides by the mean square, not its root."""
    return _rms(x, gamma, eps, sqrt=False)


def rms_no_gamma(x: Array, gamma: Array, eps: float = 1e-5) -> tuple[Array, None]:
    """Forgets γ."""
    return _rms(x, np.ones_like(gamma), eps)


def _gbn(xg: Array, gamma: Array, beta: Array, eps: float, ddof: int = 0) -> Array:
    mu = xg.mean(axis=1, keepdims=True)
    var = xg.var(axis=1, ddof=ddof, keepdims=True)
    return (xg - mu) / np.sqrt(var + eps)


def gbn_whole_batch(x: Array, gamma: Array, beta: Array, ghost_size: int, eps: float = 1e-5) -> tuple[Array, Any]:
    """Plain batch norm over the whole batch (ghost_size ignored)."""
    return gamma * _gbn(x[None], gamma, beta, eps)[0] + beta, None


def gbn_size_as_count(x: Array, gamma: Array, beta: Array, ghost_size: int, eps: float = 1e-5) -> tuple[Array, Any]:
    """ghost_size used as the number of ghost batches."""
    N, D = x.shape
    return gamma * _gbn(x.reshape(ghost_size, N // ghost_size, D), gamma, beta, eps).reshape(N, D) + beta, None


def gbn_interleaved(x: Array, gamma: Array, beta: Array, ghost_size: int, eps: float = 1e-5) -> tuple[Array, Any]:
    """Ghost batches made of every (N/ghost_size)-th example instead of consecutive ones."""
    N, D = x.shape
    xg = x.reshape(ghost_size, N // ghost_size, D).transpose(1, 0, 2)
    return gamma * _gbn(xg, gamma, beta, eps).transpose(1, 0, 2).reshape(N, D) + beta, None


def gbn_unbiased(x: Array, gamma: Array, beta: Array, ghost_size: int, eps: float = 1e-5) -> tuple[Array, Any]:
    """Unbiased variance within each ghost batch."""
    N, D = x.shape
    return gamma * _gbn(x.reshape(N // ghost_size, ghost_size, D), gamma, beta, eps, ddof=1).reshape(N, D) + beta, None


def _ws(w: Array, axes: tuple[int, ...], eps: float, ddof: int = 0, scale: bool = True) -> Array:
    wc = w - w.mean(axis=axes, keepdims=True)
    return wc / np.sqrt(w.var(axis=axes, ddof=ddof, keepdims=True) + eps) if scale else wc


def ws_over_outputs(w: Array, eps: float = 1e-5) -> Array:
    """Statistics over the output axis 0."""
    return _ws(w, (0,), eps)


def ws_spatial_only(w: Array, eps: float = 1e-5) -> Array:
    """Statistics over each kernel's positions only (axes 2, 3), one per (output, input) pair."""
    return _ws(w, tuple(range(2, w.ndim)) if w.ndim > 2 else (1,), eps)


def ws_unbiased(w: Array, eps: float = 1e-5) -> Array:
    """Unbiased variance (divides by fan-in − 1)."""
    return _ws(w, tuple(range(1, w.ndim)), eps, ddof=1)


def ws_centered_only(w: Array, eps: float = 1e-5) -> Array:
    """Subtracts the mean but does not divide by the standard deviation."""
    return _ws(w, tuple(range(1, w.ndim)), eps, scale=False)
