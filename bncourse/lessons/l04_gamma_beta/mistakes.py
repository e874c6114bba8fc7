"""Wrong implementations of notebook 04's exercises, one per known mistake.

Each function has the signature of its exercise (``recover_identity``,
``bias_grad_through_bn`` or ``scale_invariance_check``) and makes one mistake a student is
likely to make; :mod:`bncourse.lessons.l04_gamma_beta.exercises` wraps each in a
``Mistake`` with its diagnosis, shown when a student's outputs match its outputs.  They are
not course code to learn from.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bncourse.lessons.l04_gamma_beta import solutions
from bncourse.reference import batchnorm_forward

__all__ = [
    "bias_constant_stats",
    "bias_skip_bn",
    "id_no_eps",
    "id_no_sqrt",
    "id_swapped",
    "id_unbiased",
    "scale_constant_stats",
    "scale_wrt_unscaled",
]


# --- recover_identity ------------------------------------------------------------------

def id_no_eps(x: Any, eps: float = 1e-5) -> tuple[Any, Any]:
    """gamma = std, without the +eps."""
    return x.std(axis=0), x.mean(axis=0)


def id_unbiased(x: Any, eps: float = 1e-5) -> tuple[Any, Any]:
    """The unbiased variance."""
    return np.sqrt(x.var(axis=0, ddof=1) + eps).astype(x.dtype), x.mean(axis=0)


def id_no_sqrt(x: Any, eps: float = 1e-5) -> tuple[Any, Any]:
    """gamma = var + eps, without the square root."""
    return (x.var(axis=0) + eps).astype(x.dtype), x.mean(axis=0)


def id_swapped(x: Any, eps: float = 1e-5) -> tuple[Any, Any]:
    """gamma and beta returned in each other's place."""
    gamma, beta = solutions.recover_identity(x, eps)
    return beta, gamma


# --- bias_grad_through_bn --------------------------------------------------------------

def bias_constant_stats(x: Any, W: Any, b: Any, gamma: Any, beta: Any, dout: Any, eps: float = 1e-5) -> tuple[Any, Any]:
    """BN backward that treats μ and σ as constants."""
    z = x @ W.T + b
    dz = dout * gamma / np.sqrt(z.var(axis=0) + eps)
    return dz.T @ x, dz.sum(axis=0)


def bias_skip_bn(x: Any, W: Any, b: Any, gamma: Any, beta: Any, dout: Any, eps: float = 1e-5) -> tuple[Any, Any]:
    """dout passed straight to the linear layer, skipping BN's backward."""
    return dout.T @ x, dout.sum(axis=0)


# --- scale_invariance_check ------------------------------------------------------------

def scale_wrt_unscaled(x: Any, W: Any, gamma: Any, beta: Any, dout: Any, scales: Any, eps: float = 1e-5) -> tuple[Any, Any]:
    """The gradient with respect to W instead of the scaled weights a·W."""
    diff, norm = solutions.scale_invariance_check(x, W, gamma, beta, dout, scales, eps)
    return diff, norm * scales


def scale_constant_stats(x: Any, W: Any, gamma: Any, beta: Any, dout: Any, scales: Any, eps: float = 1e-5) -> tuple[Any, Any]:
    """BN backward that treats μ and σ as constants."""
    out_1, _ = batchnorm_forward(x @ W.T, gamma, beta, eps)
    diffs, norms = [], []
    for a in scales:
        z = x @ (a * W).T
        out_a, cache = batchnorm_forward(z, gamma, beta, eps)
        dz = dout * gamma * cache.inv_std
        diffs.append(np.abs(out_a - out_1).max())
        norms.append(np.sqrt(np.sum((dz.T @ x) ** 2)))
    return np.array(diffs, dtype=x.dtype), np.array(norms, dtype=x.dtype)
