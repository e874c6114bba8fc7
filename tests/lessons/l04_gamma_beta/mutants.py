"""Mutants of notebook 04's exercises, written as a student might (loops, other formulas)."""

from __future__ import annotations

import numpy as np

from bncourse.reference import batchnorm_backward_alt, batchnorm_forward


def identity_loop(x, eps=1e-5):
    n, d = x.shape
    gamma = np.empty(d, dtype=x.dtype)
    beta = np.empty(d, dtype=x.dtype)
    for j in range(d):
        mu = sum(x[:, j]) / n
        var = sum((x[:, j] - mu) ** 2) / n
        gamma[j] = (var + eps) ** 0.5
        beta[j] = mu
    return gamma, beta


def identity_no_eps(x, eps=1e-5):
    return np.sqrt(((x - x.mean(0)) ** 2).mean(0)), x.mean(0)


def identity_unbiased(x, eps=1e-5):
    n = x.shape[0]
    var = ((x - x.mean(0)) ** 2).sum(0) / (n - 1)
    return np.sqrt(var + eps).astype(x.dtype), x.mean(0)


def identity_var(x, eps=1e-5):
    return x.var(0) + np.asarray(eps, dtype=x.dtype), x.mean(0)


def identity_swapped(x, eps=1e-5):
    return x.mean(0), np.sqrt(x.var(0) + np.asarray(eps, dtype=x.dtype))


def bias_grad_manual(x, W, b, gamma, beta, dout, eps=1e-5):
    z = x @ W.T + b
    mu = z.mean(0)
    var = z.var(0)
    xhat = (z - mu) / np.sqrt(var + eps)
    m = z.shape[0]
    dxhat = dout * gamma
    dz = (m * dxhat - dxhat.sum(0) - xhat * (dxhat * xhat).sum(0)) / (m * np.sqrt(var + eps))
    return dz.T @ x, dz.sum(0)


def bias_grad_no_bn(x, W, b, gamma, beta, dout, eps=1e-5):
    return dout.T @ x, dout.sum(0)


def bias_grad_constant_stats(x, W, b, gamma, beta, dout, eps=1e-5):
    z = x @ W.T + b
    dz = dout * gamma / np.sqrt(z.var(0) + eps)
    return dz.T @ x, dz.sum(0)


def bias_grad_not_summed(x, W, b, gamma, beta, dout, eps=1e-5):
    _, cache = batchnorm_forward(x @ W.T + b, gamma, beta, eps)
    dz, _, _ = batchnorm_backward_alt(dout, cache)
    return dz.T @ x, dz


def scale_loop(x, W, gamma, beta, dout, scales, eps=1e-5):
    base, _ = batchnorm_forward(x @ W.T, gamma, beta, eps)
    diffs = np.zeros(len(scales), dtype=x.dtype)
    norms = np.zeros(len(scales), dtype=x.dtype)
    for k in range(len(scales)):
        Wa = scales[k] * W
        out, cache = batchnorm_forward(x @ Wa.T, gamma, beta, eps)
        dz, _, _ = batchnorm_backward_alt(dout, cache)
        diffs[k] = np.max(np.abs(out - base))
        norms[k] = np.linalg.norm(dz.T @ x)
    return diffs, norms


def scale_wrt_W(x, W, gamma, beta, dout, scales, eps=1e-5):
    diffs, norms = scale_loop(x, W, gamma, beta, dout, scales, eps)
    return diffs, norms * scales  # chain rule to W instead of a·W


def scale_constant_stats(x, W, gamma, beta, dout, scales, eps=1e-5):
    base, _ = batchnorm_forward(x @ W.T, gamma, beta, eps)
    diffs, norms = [], []
    for a in scales:
        z = x @ (a * W).T
        out, _ = batchnorm_forward(z, gamma, beta, eps)
        dz = dout * gamma / np.sqrt(z.var(axis=0) + eps)  # mu, sigma treated as constants
        diffs.append(np.abs(out - base).max())
        norms.append(np.linalg.norm(dz.T @ x))
    return np.array(diffs, dtype=x.dtype), np.array(norms, dtype=x.dtype)


MUTANTS = [
    ("recover_identity", "+ε", identity_no_eps),
    ("recover_identity", "biased variance", identity_unbiased),
    ("recover_identity", "not the variance itself", identity_var),
    ("recover_identity", "swapped", identity_swapped),
    ("bias_grad_through_bn", "first backpropagate through batch norm", bias_grad_no_bn),
    ("bias_grad_through_bn", "treats μ and σ as constants", bias_grad_constant_stats),
    ("bias_grad_through_bn", "summed over the batch", bias_grad_not_summed),
    ("scale_invariance_check", "not the scaled weights", scale_wrt_W),
    ("scale_invariance_check", "treats μ and σ as constants", scale_constant_stats),
]

CORRECT = [
    ("recover_identity", identity_loop),
    ("bias_grad_through_bn", bias_grad_manual),
    ("scale_invariance_check", scale_loop),
]
