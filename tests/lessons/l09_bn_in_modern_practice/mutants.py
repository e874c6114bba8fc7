"""Mutants for notebook 09's exercises, written the way a student would write them."""

from __future__ import annotations

import numpy as np

# ------------------------------------------------------------------ rmsnorm_forward


def rms_layernorm_copy(x, gamma, eps=1e-5):
    mu = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    return gamma * (x - mu) / np.sqrt(var + eps), None


def rms_batch_axis(x, gamma, eps=1e-5):
    ms = (x**2).mean(axis=0, keepdims=True)
    return gamma * x / np.sqrt(ms + eps), ms


def rms_eps_after(x, gamma, eps=1e-5):
    r = np.sqrt((x**2).mean(axis=-1, keepdims=True))
    return gamma * x / (r + eps), r


def rms_ms(x, gamma, eps=1e-5):
    ms = np.mean(np.square(x), axis=-1, keepdims=True) + eps
    return gamma * x / ms, ms


def rms_forgot_gain(x, gamma, eps=1e-5):
    r = np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    return x / r, r


def rms_correct_loop(x, gamma, eps=1e-5):
    flat = x.reshape(-1, x.shape[-1])
    out = np.empty_like(flat)
    for i, row in enumerate(flat):
        out[i] = gamma * row / np.sqrt(np.dot(row, row) / row.size + eps)
    return out.reshape(x.shape), None


MUTANTS = [
    ("rmsnorm_forward", "layer norm", rms_layernorm_copy),
    ("rmsnorm_forward", "over the batch axis", rms_batch_axis),
    ("rmsnorm_forward", "after the square root", rms_eps_after),
    ("rmsnorm_forward", "divide by the mean square", rms_ms),
    ("rmsnorm_forward", "learned gain", rms_forgot_gain),
]
CORRECT = [("rmsnorm_forward", rms_correct_loop)]

# ---------------------------------------------------------- ghost_batchnorm_forward


def gbn_plain_bn(x, gamma, beta, ghost_size, eps=1e-5):
    mu, var = x.mean(0), x.var(0)
    xh = (x - mu) / np.sqrt(var + eps)
    return gamma * xh + beta, xh


def gbn_num_ghosts(x, gamma, beta, ghost_size, eps=1e-5):
    out = np.empty_like(x)
    for part in np.array_split(np.arange(len(x)), ghost_size):
        c = x[part]
        out[part] = gamma * (c - c.mean(0)) / np.sqrt(c.var(0) + eps) + beta
    return out, None


def gbn_strided(x, gamma, beta, ghost_size, eps=1e-5):
    k = len(x) // ghost_size
    out = np.empty_like(x)
    for j in range(k):
        c = x[j::k]
        out[j::k] = gamma * (c - c.mean(0)) / np.sqrt(c.var(0) + eps) + beta
    return out, None


def gbn_ddof(x, gamma, beta, ghost_size, eps=1e-5):
    out = np.empty_like(x)
    for s in range(0, len(x), ghost_size):
        c = x[s:s + ghost_size]
        out[s:s + ghost_size] = gamma * (c - c.mean(0)) / np.sqrt(c.var(0, ddof=1) + eps) + beta
    return out, None


def gbn_correct_loop(x, gamma, beta, ghost_size, eps=1e-5):
    out = np.empty_like(x)
    for s in range(0, len(x), ghost_size):
        c = x[s:s + ghost_size]
        m = c.sum(axis=0) / len(c)
        v = ((c - m) ** 2).sum(axis=0) / len(c)
        out[s:s + ghost_size] = gamma * (c - m) / np.sqrt(v + eps) + beta
    return out, {"ghost_size": ghost_size}


MUTANTS += [
    ("ghost_batchnorm_forward", "whole batch", gbn_plain_bn),
    ("ghost_batchnorm_forward", "number of ghost batches", gbn_num_ghosts),
    ("ghost_batchnorm_forward", "every k-th example", gbn_strided),
    ("ghost_batchnorm_forward", "unbiased", gbn_ddof),
]
CORRECT += [("ghost_batchnorm_forward", gbn_correct_loop)]

# --------------------------------------------------------------- weight_standardize


def ws_axis0(w, eps=1e-5):
    return (w - w.mean(0)) / np.sqrt(w.var(0) + eps)


def ws_per_kernel(w, eps=1e-5):
    axes = (1,) if w.ndim == 2 else (2, 3)
    return (w - w.mean(axis=axes, keepdims=True)) / np.sqrt(w.var(axis=axes, keepdims=True) + eps)


def ws_ddof(w, eps=1e-5):
    flat = w.reshape(len(w), -1)
    out = (flat - flat.mean(1, keepdims=True)) / np.sqrt(flat.var(1, ddof=1, keepdims=True) + eps)
    return out.reshape(w.shape)


def ws_center_only(w, eps=1e-5):
    flat = w.reshape(len(w), -1)
    return (flat - flat.mean(1, keepdims=True)).reshape(w.shape)


def ws_correct_flat(w, eps=1e-5):
    flat = w.reshape(w.shape[0], -1)
    m = flat.mean(axis=1, keepdims=True)
    s = np.sqrt(((flat - m) ** 2).mean(axis=1, keepdims=True) + eps)
    return ((flat - m) / s).reshape(w.shape)


MUTANTS += [
    ("weight_standardize", "output axis 0", ws_axis0),
    ("weight_standardize", "per (output, input) kernel", ws_per_kernel),
    ("weight_standardize", "unbiased", ws_ddof),
    ("weight_standardize", "do not divide", ws_center_only),
]
CORRECT += [("weight_standardize", ws_correct_flat)]
