"""Mutants of notebook 06's exercises (spatial BN forward/backward, folding BN), written as
a student might: loops over channels, einsum, other reshapes.

The backward mutants receive the reference cache (``check(..., namespace={})`` uses the
exercise's namespace, i.e. the reference forward): a ``BatchNormCache`` with ``x_hat``
``(N, C, H, W)`` and ``inv_std``, ``gamma``, ``mean``, ``var`` ``(C,)``.
"""

from __future__ import annotations

import numpy as np

# ----------------------------------------------------------------- spatial_bn_forward


def forward_loop(x, gamma, beta, eps=1e-5):
    out = np.empty_like(x)
    for c in range(x.shape[1]):
        v = x[:, c]
        mu = v.sum() / v.size
        var = ((v - mu) ** 2).sum() / v.size
        out[:, c] = gamma[c] * (v - mu) / np.sqrt(var + eps) + beta[c]
    return out, None


def forward_moveaxis(x, gamma, beta, eps=1e-5):
    n, c, h, w = x.shape
    rows = np.moveaxis(x, 1, -1).reshape(n * h * w, c)
    mu = rows.mean(0)
    xc = rows - mu
    var = (xc * xc).mean(0)
    y = gamma * xc / np.sqrt(var + eps) + beta
    return np.moveaxis(y.reshape(n, h, w, c), -1, 1), (rows, mu, var)


def forward_over_batch_only(x, gamma, beta, eps=1e-5):
    n = x.shape[0]
    flat = x.reshape(n, -1)  # 1-D BN on (N, C·H·W)
    y = (flat - flat.mean(0)) / np.sqrt(flat.var(0) + eps)
    y = y.reshape(x.shape)
    return gamma[None, :, None, None] * y + beta[None, :, None, None], None


def forward_over_n_and_c(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=(0, 1))
    var = x.var(axis=(0, 1))
    y = (x - mu) / np.sqrt(var + eps)
    return gamma[:, None, None] * y + beta[:, None, None], None


def forward_global(x, gamma, beta, eps=1e-5):
    y = (x - np.mean(x)) / np.sqrt(np.var(x) + eps)
    return gamma[:, None, None] * y + beta[:, None, None], None


def forward_instance(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=(2, 3), keepdims=True)
    sd = np.sqrt(x.var(axis=(2, 3), keepdims=True) + eps)
    return gamma[:, None, None] * (x - mu) / sd + beta[:, None, None], None


def forward_layer(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=(1, 2, 3), keepdims=True)
    sd = np.sqrt(x.var(axis=(1, 2, 3), keepdims=True) + eps)
    return gamma[:, None, None] * (x - mu) / sd + beta[:, None, None], None


def forward_reshape_only(x, gamma, beta, eps=1e-5):
    N, C, H, W = x.shape
    xr = x.reshape(N * H * W, C)
    xn = (xr - xr.mean(axis=0)) / np.sqrt(xr.var(axis=0) + eps)
    return (xn * gamma + beta).reshape(N, C, H, W), None


def forward_unbiased(x, gamma, beta, eps=1e-5):
    m = x.shape[0] * x.shape[2] * x.shape[3]
    mu = x.mean(axis=(0, 2, 3), keepdims=True)
    var = ((x - mu) ** 2).sum(axis=(0, 2, 3), keepdims=True) / (m - 1)
    return gamma[:, None, None] * (x - mu) / np.sqrt(var + eps) + beta[:, None, None], None


def forward_no_eps(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=(0, 2, 3), keepdims=True)
    sd = x.std(axis=(0, 2, 3), keepdims=True)
    return gamma[:, None, None] * (x - mu) / sd + beta[:, None, None], None


# ----------------------------------------------------------------- spatial_bn_backward


def _to_rows(a):
    return a if a.ndim == 2 else a.transpose(0, 2, 3, 1).reshape(-1, a.shape[1])


def _from_rows(r, shape):
    n, c, h, w = shape
    return r.reshape(n, h, w, c).transpose(0, 3, 1, 2)


def backward_staged(dout, cache):
    """Through the graph (not the closed form), per channel with einsum."""
    x_hat, inv_std, gamma = _to_rows(cache.x_hat), cache.inv_std, cache.gamma
    dy = _to_rows(dout)
    m = dy.shape[0]
    dbeta = np.einsum("mc->c", dy)
    dgamma = np.einsum("mc,mc->c", dy, x_hat)
    dxhat = dy * gamma
    dvar = np.sum(dxhat * x_hat, axis=0) * (-0.5) * inv_std**2
    dmu = -np.sum(dxhat, axis=0) * inv_std
    dx = dxhat * inv_std + dvar * 2.0 * x_hat / (m * inv_std) + dmu / m
    return _from_rows(dx, dout.shape), dgamma, dbeta


def backward_constant_stats(dout, cache):
    dx = dout * (cache.gamma * cache.inv_std)[None, :, None, None]
    dy = _to_rows(dout)
    return dx, (dy * _to_rows(cache.x_hat)).sum(0), dy.sum(0)


def backward_m_batch(dout, cache):
    n = dout.shape[0]
    dy = _to_rows(dout)
    xh = _to_rows(cache.x_hat)
    dx = cache.gamma * cache.inv_std * (dy - dy.sum(0) / n - xh * (dy * xh).sum(0) / n)
    return _from_rows(dx, dout.shape), (dy * xh).sum(0), dy.sum(0)


def backward_reshape_only(dout, cache):
    N, C, H, W = dout.shape
    dy = dout.reshape(-1, C)
    xh = _to_rows(cache.x_hat)
    m = N * H * W
    dgamma = (dy * xh).sum(0)
    dbeta = dy.sum(0)
    dx = cache.gamma * cache.inv_std / m * (m * dy - dbeta - xh * dgamma)
    return dx.reshape(N, C, H, W), dgamma, dbeta


def backward_swapped(dout, cache):
    dx, dgamma, dbeta = backward_staged(dout, cache)
    return dx, dbeta, dgamma


def backward_not_summed(dout, cache):
    dx, _, _ = backward_staged(dout, cache)
    xh = _from_rows(_to_rows(cache.x_hat), dout.shape)
    return dx, (dout * xh).sum(axis=0), dout.sum(axis=0)  # summed over N only: shape (C, H, W)


def backward_unsummed(dout, cache):
    dx, _, _ = backward_staged(dout, cache)
    xh = _from_rows(_to_rows(cache.x_hat), dout.shape)
    return dx, dout * xh, dout.copy()  # (N, C, H, W)


# ----------------------------------------------------------------- fold_bn


def fold_loop(weight, bias, gamma, beta, running_mean, running_var, eps=1e-5):
    w = weight.copy()
    b = np.zeros(weight.shape[0], dtype=weight.dtype) if bias is None else bias.copy()
    for o in range(weight.shape[0]):
        s = gamma[o] / np.sqrt(running_var[o] + eps)
        w[o] = weight[o] * s
        b[o] = (b[o] - running_mean[o]) * s + beta[o]
    return w, b


def fold_einsum(weight, bias, gamma, beta, running_mean, running_var, eps=1e-5):
    s = gamma / np.sqrt(running_var + eps)
    w = np.einsum("o...,o->o...", weight, s)
    b0 = 0.0 if bias is None else bias
    return w, (beta + (b0 - running_mean) * s).astype(weight.dtype)


def fold_input_axis(weight, bias, gamma, beta, running_mean, running_var, eps=1e-5):
    s = gamma / np.sqrt(running_var + eps)
    # conv: axis 1; linear: `weight * s` broadcasts along the last (input) axis
    w = weight * s[None, :, None, None] if weight.ndim == 4 else weight * s
    b = (bias - running_mean) * s + beta if bias is not None else beta - running_mean * s
    return w, b


def fold_no_mean(weight, bias, gamma, beta, running_mean, running_var, eps=1e-5):
    w, _ = fold_loop(weight, bias, gamma, beta, running_mean, running_var, eps)
    b = 0.0 if bias is None else bias
    return w, (b * gamma / np.sqrt(running_var + eps) + beta).astype(weight.dtype)


def fold_mean_unscaled(weight, bias, gamma, beta, running_mean, running_var, eps=1e-5):
    w, _ = fold_loop(weight, bias, gamma, beta, running_mean, running_var, eps)
    b = 0.0 if bias is None else bias
    return w, (b * gamma / np.sqrt(running_var + eps) + beta - running_mean).astype(weight.dtype)


def fold_no_beta(weight, bias, gamma, beta, running_mean, running_var, eps=1e-5):
    w, _ = fold_loop(weight, bias, gamma, beta, running_mean, running_var, eps)
    b = 0.0 if bias is None else bias
    return w, ((b - running_mean) * gamma / np.sqrt(running_var + eps)).astype(weight.dtype)


def fold_no_eps(weight, bias, gamma, beta, running_mean, running_var, eps=1e-5):
    return fold_loop(weight, bias, gamma, beta, running_mean, running_var, 0.0)


def fold_no_sqrt(weight, bias, gamma, beta, running_mean, running_var, eps=1e-5):
    s = gamma / (running_var + eps)
    b = np.zeros_like(gamma) if bias is None else bias
    return weight * s.reshape((-1,) + (1,) * (weight.ndim - 1)), (b - running_mean) * s + beta


def fold_no_gamma(weight, bias, gamma, beta, running_mean, running_var, eps=1e-5):
    return fold_loop(weight, bias, np.ones_like(gamma), beta, running_mean, running_var, eps)


def fold_bias_none(weight, bias, gamma, beta, running_mean, running_var, eps=1e-5):
    s = gamma / np.sqrt(running_var + eps)
    w = weight * s.reshape((-1,) + (1,) * (weight.ndim - 1))
    if bias is None:
        return w, None
    return w, (bias - running_mean) * s + beta


MUTANTS = [
    ("spatial_batchnorm_forward", "over the batch only", forward_over_batch_only),
    ("spatial_batchnorm_forward", "per pixel position", forward_over_n_and_c),
    ("spatial_batchnorm_forward", "whole array", forward_global),
    ("spatial_batchnorm_forward", "instance norm", forward_instance),
    ("spatial_batchnorm_forward", "layer norm", forward_layer),
    ("spatial_batchnorm_forward", "without moving C last", forward_reshape_only),
    ("spatial_batchnorm_forward", "unbiased", forward_unbiased),
    ("spatial_batchnorm_forward", "ε is missing", forward_no_eps),
    ("spatial_batchnorm_backward", "treated μ and σ² as constants", backward_constant_stats),
    ("spatial_batchnorm_backward", "m = N·H·W", backward_m_batch),
    ("spatial_batchnorm_backward", "without moving C last", backward_reshape_only),
    ("spatial_batchnorm_backward", "swapped", backward_swapped),
    ("spatial_batchnorm_backward", "sums over N, H and W", backward_not_summed),
    ("spatial_batchnorm_backward", "sums over N, H and W", backward_unsummed),
    ("fold_batchnorm", "output", fold_input_axis),
    ("fold_batchnorm", "ignores the running mean", fold_no_mean),
    ("fold_batchnorm", "subtracted μ after scaling", fold_mean_unscaled),
    ("fold_batchnorm", "β is missing", fold_no_beta),
    ("fold_batchnorm", "ε is missing", fold_no_eps),
    ("fold_batchnorm", "standard deviation", fold_no_sqrt),
    ("fold_batchnorm", "γ is missing", fold_no_gamma),
    ("fold_batchnorm", "bias None", fold_bias_none),
]

CORRECT = [
    ("spatial_batchnorm_forward", forward_loop),
    ("spatial_batchnorm_forward", forward_moveaxis),
    ("spatial_batchnorm_backward", backward_staged),
    ("fold_batchnorm", fold_loop),
    ("fold_batchnorm", fold_einsum),
]
