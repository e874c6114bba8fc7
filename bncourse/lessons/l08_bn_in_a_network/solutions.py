"""The instructor's solutions of notebook 08's exercises (``softmax_cross_entropy``,
``linear_backward``, ``network_backward``, ``batchnorm_layer_forward``).

Each is named as its exercise id; :mod:`bncourse.lessons.l08_bn_in_a_network.exercises`
checks students' code against them.  NumPy only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from bncourse.validation import FloatArray

__all__ = ["batchnorm_layer_forward", "linear_backward", "network_backward", "softmax_cross_entropy"]


def softmax_cross_entropy(logits: FloatArray, y: Any) -> tuple[float, FloatArray]:
    r"""Mean cross-entropy of ``softmax(logits)`` against integer labels, and its gradient.

    .. math::
        p = \mathrm{softmax}(z), \quad L = -\frac1N \sum_n \log p_{n, y_n}, \quad
        \frac{\partial L}{\partial z} = \frac{p - \mathrm{onehot}(y)}{N}

    Shapes: logits ``(N, C)``, y ``(N,)`` ints → ``(loss, dlogits)`` with dlogits ``(N, C)``.
    """
    rows = np.arange(logits.shape[0])
    shifted = logits - np.max(logits, axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_p[rows, y].mean()
    dlogits = np.exp(log_p)
    dlogits[rows, y] -= 1
    return float(loss), (dlogits / len(rows)).astype(logits.dtype)


def linear_backward(dout: FloatArray, x: FloatArray, W: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""Backward of ``out = x @ W + b``: the bias is broadcast over the batch, so its gradient is a sum.

    .. math::
        dx = dout\,W^\top, \quad dW = x^\top dout, \quad db = \sum_n dout_n

    Shapes: dout ``(N, M)``, x ``(N, D)``, W ``(D, M)`` → dx ``(N, D)``, dW ``(D, M)``, db ``(M,)``.
    """
    dx = dout @ W.T
    dW = x.T @ dout
    db = dout.sum(axis=0)
    return dx, dW, db


def network_backward(
    dlogits: FloatArray,
    tape: Mapping[str, Any],
    params: Mapping[str, FloatArray],
    linear_backward: Callable[..., Any],
    bn_backward: Callable[..., Any],
) -> dict[str, FloatArray]:
    r"""Backward through ``x → Linear → BN → tanh → Linear → BN → tanh → Linear → logits``.

    ``tape`` holds the forward pass's ``x``, ``h1``, ``h2`` (tanh outputs) and ``bn1``,
    ``bn2`` (the BN layers' caches); ``params`` holds ``W1, b1, gamma1, beta1, W2, b2,
    gamma2, beta2, W3, b3``.  Returns the gradient of the loss with respect to every
    parameter and to ``h2, z2, a2, h1, z1, a1`` (a: linear output, z: BN output,
    h = tanh(z)); tanh'(z) = 1 − h².
    """
    g: dict[str, FloatArray] = {}
    g["h2"], g["W3"], g["b3"] = linear_backward(dlogits, tape["h2"], params["W3"])
    g["z2"] = g["h2"] * (1 - tape["h2"] ** 2)
    g["a2"], g["gamma2"], g["beta2"] = bn_backward(g["z2"], tape["bn2"])
    g["h1"], g["W2"], g["b2"] = linear_backward(g["a2"], tape["h1"], params["W2"])
    g["z1"] = g["h1"] * (1 - tape["h1"] ** 2)
    g["a1"], g["gamma1"], g["beta1"] = bn_backward(g["z1"], tape["bn1"])
    _, g["W1"], g["b1"] = linear_backward(g["a1"], tape["x"], params["W1"])
    return g


def batchnorm_layer_forward(
    x: FloatArray,
    gamma: FloatArray,
    beta: FloatArray,
    running_mean: FloatArray,
    running_var: FloatArray,
    training: bool,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""One BN layer's forward in training or evaluation mode, with PyTorch's running statistics.

    Training: normalize with the batch's mean and biased variance; return updated running
    statistics ``(1 − momentum)·running + momentum·batch`` (unbiased variance, ·m/(m−1)).
    Evaluation: normalize with the running statistics and return them unchanged.

    Shapes: x ``(N, D)``; gamma, beta, running_mean, running_var ``(D,)``.
    Returns ``(out, running_mean, running_var)``, new arrays (inputs are not modified).
    """
    if training:
        m = x.shape[0]
        mu, var = x.mean(axis=0), x.var(axis=0)
        new_mean = (1 - momentum) * running_mean + momentum * mu
        new_var = (1 - momentum) * running_var + momentum * var * m / (m - 1)
    else:
        mu, var = running_mean, running_var
        new_mean, new_var = running_mean.copy(), running_var.copy()
    out = gamma * (x - mu) / np.sqrt(var + eps) + beta
    return out.astype(x.dtype), new_mean.astype(running_mean.dtype), new_var.astype(running_var.dtype)
