"""Mutants of notebook 03's exercises: batchnorm_forward, batchnorm_backward, batchnorm_backward_alt, numerical_gradient.

Written the way students write them (loops, other formulas, other cache layouts) and
independently of the ``Mistake`` implementations in
:mod:`bncourse.lessons.l03_forward_backward.mistakes`.

The backward mutants are checked with the exercise's default namespace, i.e. with
``bncourse.reference.batchnorm_forward``, so they read its cache (``cache.x_hat``,
``cache.inv_std``, ...).  Pairs of a student forward with its own cache layout are tested
in ``tests/lessons/l03_forward_backward/test_exercises.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Impl = Callable[..., Any]

# ------------------------------------------------------------------ bn_forward


def fwd_unbiased(x, gamma, beta, eps=1e-5):
    mu = np.mean(x, axis=0)
    var = np.var(x, axis=0, ddof=1)
    xh = (x - mu) / np.sqrt(var + eps)
    return gamma * xh + beta, (xh, var)


def fwd_no_eps_loop(x, gamma, beta, eps=1e-5):
    out = np.empty_like(x)
    for d in range(x.shape[1]):
        col = x[:, d]
        m = col.sum() / len(col)
        s = np.sqrt(((col - m) ** 2).sum() / len(col))
        out[:, d] = gamma[d] * (col - m) / s + beta[d]
    return out, None


def fwd_divide_by_var_plus_eps(x, gamma, beta, eps=1e-5):
    mu = x.mean(0)
    var = ((x - mu) ** 2).mean(0)
    return gamma * (x - mu) / (var + eps) + beta, {}


def fwd_seed003(x, gamma, beta, eps=1e-5):
    mu = x.mean(0)
    sigma = ((x - mu) ** 2).mean(0)  # "sigma" = the variance, as the seed writes it
    return gamma * ((x - mu) / sigma) + beta, {}


def fwd_eps_outside(x, gamma, beta, eps=1e-5):
    mu = x.mean(0)
    std = np.sqrt(((x - mu) ** 2).mean(0))
    return gamma * (x - mu) / (std + eps) + beta, {}


def fwd_axis1(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=1, keepdims=True)
    var = x.var(axis=1, keepdims=True)
    return gamma * (x - mu) / np.sqrt(var + eps) + beta, None


def fwd_all(x, gamma, beta, eps=1e-5):
    return gamma * (x - x.mean()) / np.sqrt(x.var() + eps) + beta, None


def fwd_affine_swapped(x, gamma, beta, eps=1e-5):
    xh = (x - x.mean(0)) / np.sqrt(x.var(0) + eps)
    return xh * beta + gamma, None


def fwd_cache_first(x, gamma, beta, eps=1e-5):
    xh = (x - x.mean(0)) / np.sqrt(x.var(0) + eps)
    return (xh, gamma), gamma * xh + beta


def fwd_no_cache(x, gamma, beta, eps=1e-5):
    return gamma * (x - x.mean(0)) / np.sqrt(x.var(0) + eps) + beta


def fwd_float64_loop(x, gamma, beta, eps=1e-5):
    out = np.zeros(x.shape)  # float64 whatever x is
    for d in range(x.shape[1]):
        col = x[:, d]
        out[:, d] = gamma[d] * (col - col.mean()) / np.sqrt(col.var() + eps) + beta[d]
    return out, None


def fwd_in_place(x, gamma, beta, eps=1e-5):
    x -= x.mean(axis=0)
    x /= np.sqrt((x**2).mean(axis=0) + eps)
    return gamma * x + beta, None


def fwd_transposed(x, gamma, beta, eps=1e-5):
    xh = (x - x.mean(0)) / np.sqrt(x.var(0) + eps)
    return (gamma * xh + beta).T.copy(), None


# ------------------------------------------------------------------ bn_forward, correct


def fwd_loop(x, gamma, beta, eps=1e-5):
    n, d = x.shape
    out = np.empty_like(x)
    cache = []
    for j in range(d):
        mu = sum(x[i, j] for i in range(n)) / n
        var = sum((x[i, j] - mu) ** 2 for i in range(n)) / n
        for i in range(n):
            out[i, j] = gamma[j] * (x[i, j] - mu) / np.sqrt(var + eps) + beta[j]
        cache.append((mu, var))
    return out, cache


class _Cache:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def fwd_object_cache(x, gamma, beta, eps=1e-5):
    mu = np.einsum("nd->d", x) / x.shape[0]
    xc = x - mu
    inv = (np.einsum("nd,nd->d", xc, xc) / x.shape[0] + eps) ** -0.5
    return xc * (inv * gamma) + beta, _Cache(xc=xc, inv=inv, gamma=gamma)


# ------------------------------------------------------------------ bn_backward (reference cache)


def bwd_constants(dout, cache):
    dx = dout * cache.gamma / np.sqrt(cache.var + cache.eps)
    return dx, np.sum(dout * cache.x_hat, axis=0), np.sum(dout, axis=0)


def bwd_unsummed(dout, cache):
    m = dout.shape[0]
    g, xh, s = cache.gamma, cache.x_hat, cache.inv_std
    dx = g * s / m * (m * dout - dout.sum(0) - xh * (dout * xh).sum(0))
    return dx, dout * xh, dout


def bwd_keepdims(dout, cache):
    m = dout.shape[0]
    g, xh, s = cache.gamma, cache.x_hat, cache.inv_std
    db = dout.sum(axis=0, keepdims=True)
    dg = (dout * xh).sum(axis=0, keepdims=True)
    return g * s / m * (m * dout - db - xh * dg), dg, db


def bwd_mean_only(dout, cache):
    # the gradient flows through mu but sigma is held constant
    m = dout.shape[0]
    dxh = dout * cache.gamma
    dxc = dxh * cache.inv_std
    dx = dxc - dxc.sum(0) / m
    return dx, (dout * cache.x_hat).sum(0), dout.sum(0)


def bwd_swapped(dout, cache):
    m = dout.shape[0]
    g, xh, s = cache.gamma, cache.x_hat, cache.inv_std
    dbeta = dout.sum(0)
    dgamma = (dout * xh).sum(0)
    return g * s / m * (m * dout - dbeta - xh * dgamma), dbeta, dgamma


def bwd_mean(dout, cache):
    m = dout.shape[0]
    g, xh, s = cache.gamma, cache.x_hat, cache.inv_std
    dx = g * s / m * (m * dout - dout.sum(0) - xh * (dout * xh).sum(0))
    return dx, (dout * xh).mean(0), dout.mean(0)


def bwd_two_outputs(dout, cache):
    m = dout.shape[0]
    g, xh, s = cache.gamma, cache.x_hat, cache.inv_std
    return g * s / m * (m * dout - dout.sum(0) - xh * (dout * xh).sum(0)), (dout * xh).sum(0)


def bwd_forgot_gamma(dout, cache):
    m = dout.shape[0]
    xh, s = cache.x_hat, cache.inv_std
    dx = s / m * (m * dout - dout.sum(0) - xh * (dout * xh).sum(0))
    return dx, (dout * xh).sum(0), dout.sum(0)


def fwd_no_affine(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=0)
    xhat = (x - mu) / np.sqrt(x.var(axis=0) + eps)
    return xhat.astype(x.dtype), (xhat, gamma, 1 / np.sqrt(x.var(axis=0) + eps))


def bwd_no_mean_path(dout, cache):
    # the sigma^2 path is there, the mu path (-sum(dy)/m) is forgotten
    m = dout.shape[0]
    g, xh, s = cache.gamma, cache.x_hat, cache.inv_std
    dx = g * s * (dout - xh * (dout * xh).sum(0) / m)
    return dx, (dout * xh).sum(0), dout.sum(0)


def bwd_graph_unbiased_var(dout, cache):
    # staged graph, but d(var)/dx written with the unbiased 1/(m-1)
    m = dout.shape[0]
    xc, s, g = cache.x_centered, cache.inv_std, cache.gamma
    dxhat = dout * g
    dvar = np.sum(dxhat * xc, axis=0) * -0.5 * s**3
    dxc = dxhat * s + dvar * 2 * xc / (m - 1)
    dmu = -np.sum(dxc, axis=0)
    return dxc + dmu / m, np.sum(dout * cache.x_hat, axis=0), np.sum(dout, axis=0)


# ------------------------------------------------------------------ bn_backward, correct


def bwd_graph_loops(dout, cache):
    """Node by node, each sum written as a loop over the batch."""
    n, d = dout.shape
    xc, s, g = cache.x_centered, cache.inv_std, cache.gamma
    dx = np.empty_like(dout)
    for j in range(d):
        dxh = [dout[i, j] * g[j] for i in range(n)]
        dinv = sum(dxh[i] * xc[i, j] for i in range(n))
        dvar = -0.5 * s[j] ** 3 * dinv
        dxc = [dxh[i] * s[j] + 2.0 * xc[i, j] * dvar / n for i in range(n)]
        dmu = -sum(dxc)
        for i in range(n):
            dx[i, j] = dxc[i] + dmu / n
    return dx, (dout * cache.x_hat).sum(0), dout.sum(0)


def bwd_jacobian(dout, cache):
    """dx = J^T dout with the explicit per-feature Jacobian J = γ s/m (m I − 1 1ᵀ − x̂ x̂ᵀ)."""
    n, d = dout.shape
    dx = np.empty_like(dout)
    for j in range(d):
        xh = cache.x_hat[:, j]
        J = cache.gamma[j] * cache.inv_std[j] / n * (n * np.eye(n) - np.ones((n, n)) - np.outer(xh, xh))
        dx[:, j] = J.T @ dout[:, j]
    return dx, np.einsum("nd,nd->d", dout, cache.x_hat), dout.sum(0)


# ------------------------------------------------------------------ grad_check


def num_forward_difference(f, x, dout, h=1e-5):
    grad = np.zeros_like(x)
    fx = np.sum(f(x) * dout)
    for i in range(x.size):
        xp = x.copy().ravel()
        xp[i] += h
        grad.flat[i] = (np.sum(f(xp.reshape(x.shape)) * dout) - fx) / h
    return grad


def num_no_dout(f, x, dout, h=1e-5):
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        grad[i] = (np.sum(f(xp)) - np.sum(f(xm))) / (2 * h)
    return grad


def num_divide_by_h(f, x, dout, h=1e-5):
    grad = np.zeros_like(x)
    for i in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        grad[i] = np.sum((f(xp) - f(xm)) * dout) / h
    return grad


def num_no_restore(f, x, dout, h=1e-5):
    grad = np.zeros_like(x)
    for i in np.ndindex(*x.shape):
        x[i] += h
        lp = np.sum(f(x) * dout)
        x[i] -= 2 * h
        lm = np.sum(f(x) * dout)
        grad[i] = (lp - lm) / (2 * h)  # x[i] is left at x - h
    return grad


def num_in_place_restored(f, x, dout, h=1e-5):
    grad = np.zeros_like(x)
    for i in np.ndindex(*x.shape):
        old = x[i]
        x[i] = old + h
        lp = np.sum(f(x) * dout)
        x[i] = old - h
        lm = np.sum(f(x) * dout)
        x[i] = old
        grad[i] = (lp - lm) / (2 * h)
    return grad


def num_vectorized_rows(f, x, dout, h=1e-5):
    flat = x.reshape(-1).astype(np.float64)
    grad = np.empty_like(flat)
    for k in range(flat.size):
        e = np.zeros_like(flat)
        e[k] = h
        up = f((flat + e).reshape(x.shape))
        down = f((flat - e).reshape(x.shape))
        grad[k] = np.vdot(up - down, dout) / (2 * h)
    return grad.reshape(x.shape)


MUTANTS: list[tuple[str, str, Impl]] = [
    ("batchnorm_forward", "N-1", fwd_unbiased),
    ("batchnorm_forward", "ε is missing", fwd_no_eps_loop),
    ("batchnorm_forward", "var + eps: divide by the standard deviation", fwd_divide_by_var_plus_eps),
    ("batchnorm_forward", "sloppy formula", fwd_seed003),
    ("batchnorm_forward", "inside the square root", fwd_eps_outside),
    ("batchnorm_forward", "axis=1", fwd_axis1),
    ("batchnorm_forward", "whole array", fwd_all),
    ("batchnorm_forward", "swapped", fwd_affine_swapped),
    ("batchnorm_forward", "return out, cache", fwd_cache_first),
    ("batchnorm_forward", "single array", fwd_no_cache),
    ("batchnorm_forward", "dtype not preserved", fwd_float64_loop),
    ("batchnorm_forward", "in place", fwd_in_place),
    ("batchnorm_forward", "wrong shape", fwd_transposed),
    ("batchnorm_backward", "constants", bwd_constants),
    ("batchnorm_backward", "sum over the batch axis", bwd_unsummed),
    ("batchnorm_backward", "keepdims", bwd_keepdims),
    ("batchnorm_backward", "path through σ²", bwd_mean_only),
    ("batchnorm_backward", "swapped", bwd_swapped),
    ("batchnorm_backward", "averaged over the batch", bwd_mean),
    ("batchnorm_backward", "three arrays", bwd_two_outputs),
    ("batchnorm_backward", "factor γ", bwd_forgot_gamma),
    ("batchnorm_backward_alt", "constants", bwd_constants),
    ("batchnorm_backward_alt", "sum over the batch axis", bwd_unsummed),
    ("batchnorm_backward_alt", "path through σ²", bwd_mean_only),
    ("batchnorm_backward_alt", "swapped", bwd_swapped),
    ("batchnorm_backward_alt", "averaged over the batch", bwd_mean),
    ("batchnorm_backward_alt", "factor γ", bwd_forgot_gamma),
    ("batchnorm_forward", "y = gamma * x_hat + beta", fwd_no_affine),
    ("batchnorm_backward", "path through μ", bwd_no_mean_path),
    ("batchnorm_backward_alt", "path through μ", bwd_no_mean_path),
    ("batchnorm_backward", "1/(m−1)", bwd_graph_unbiased_var),
    ("batchnorm_backward_alt", "1/(m−1)", bwd_graph_unbiased_var),
    ("numerical_gradient", "centered difference", num_forward_difference),
    ("numerical_gradient", "dout is ignored", num_no_dout),
    ("numerical_gradient", "divide by 2*h", num_divide_by_h),
    ("numerical_gradient", "left x changed", num_no_restore),
]

CORRECT: list[tuple[str, Impl]] = [
    ("batchnorm_forward", fwd_loop),
    ("batchnorm_forward", fwd_object_cache),
    ("batchnorm_backward", bwd_graph_loops),
    ("batchnorm_backward", bwd_jacobian),
    ("batchnorm_backward_alt", bwd_jacobian),
    ("batchnorm_backward_alt", bwd_graph_loops),
    ("numerical_gradient", num_in_place_restored),
    ("numerical_gradient", num_vectorized_rows),
]
