"""Wrong implementations of notebook 08's exercises, one per known mistake.

Each has the signature of its exercise and makes one mistake a student is likely to make;
:mod:`bncourse.lessons.l08_bn_in_a_network.exercises` wraps each in a ``Mistake`` with its
diagnosis.  They are not course code to learn from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from bncourse.lessons.l08_bn_in_a_network import solutions
from bncourse.validation import FloatArray

# ---------------------------------------------------------------------------- softmax_cross_entropy


def _probs(logits: FloatArray) -> FloatArray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def ce_no_onehot(logits: FloatArray, y: Any) -> tuple[float, FloatArray]:
    loss, _ = solutions.softmax_cross_entropy(logits, y)
    return loss, (_probs(logits) / logits.shape[0]).astype(logits.dtype)


def ce_not_divided(logits: FloatArray, y: Any) -> tuple[float, FloatArray]:
    loss, d = solutions.softmax_cross_entropy(logits, y)
    return loss, d * logits.shape[0]


def ce_divided_twice(logits: FloatArray, y: Any) -> tuple[float, FloatArray]:
    loss, d = solutions.softmax_cross_entropy(logits, y)
    return loss, d / logits.shape[0]


def ce_summed_loss(logits: FloatArray, y: Any) -> tuple[float, FloatArray]:
    loss, d = solutions.softmax_cross_entropy(logits, y)
    return loss * logits.shape[0], d


# ---------------------------------------------------------------------------- linear_backward


def lin_bias_not_summed(dout: FloatArray, x: FloatArray, W: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    dx, dW, _db = solutions.linear_backward(dout, x, W)
    return dx, dW, dout.copy()


def lin_bias_averaged(dout: FloatArray, x: FloatArray, W: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    dx, dW, db = solutions.linear_backward(dout, x, W)
    return dx, dW, db / dout.shape[0]


def lin_bias_first_row(dout: FloatArray, x: FloatArray, W: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    dx, dW, _db = solutions.linear_backward(dout, x, W)
    return dx, dW, dout[0].copy()


def lin_weight_averaged(dout: FloatArray, x: FloatArray, W: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    dx, dW, db = solutions.linear_backward(dout, x, W)
    return dx, dW / dout.shape[0], db


def lin_weight_transposed(dout: FloatArray, x: FloatArray, W: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    dx, _dW, db = solutions.linear_backward(dout, x, W)
    return dx, dout.T @ x, db


def lin_dx_not_transposed(dout: FloatArray, x: FloatArray, W: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    _dx, dW, db = solutions.linear_backward(dout, x, W)
    return dout @ W, dW, db


# ---------------------------------------------------------------------------- network_backward


def _wrong_net(dlogits: FloatArray, tape: Mapping[str, Any], params: Mapping[str, FloatArray],
               linear_backward: Callable[..., Any], bn_backward: Callable[..., Any], *,
               act: Callable[[FloatArray, FloatArray], FloatArray], scale: float = 1.0,
               skip_bn: bool = False) -> dict[str, FloatArray]:
    g: dict[str, FloatArray] = {}
    below = {2: tape["h1"], 1: tape["x"]}
    upstream = dlogits * scale
    g["h2"], g["W3"], g["b3"] = linear_backward(upstream, tape["h2"], params["W3"])
    for k in (2, 1):
        g[f"z{k}"] = act(g[f"h{k}"], tape[f"h{k}"])
        if skip_bn:
            g[f"a{k}"] = g[f"z{k}"]
            g[f"gamma{k}"] = np.zeros_like(params[f"gamma{k}"])
            g[f"beta{k}"] = np.zeros_like(params[f"beta{k}"])
        else:
            g[f"a{k}"], g[f"gamma{k}"], g[f"beta{k}"] = bn_backward(g[f"z{k}"], tape[f"bn{k}"])
        d_below, g[f"W{k}"], g[f"b{k}"] = linear_backward(g[f"a{k}"], below[k], params[f"W{k}"])
        if k == 2:
            g["h1"] = d_below
    return g


def net_no_tanh(dlogits: FloatArray, tape: Mapping[str, Any], params: Mapping[str, FloatArray],
                linear_backward: Callable[..., Any], bn_backward: Callable[..., Any]) -> dict[str, FloatArray]:
    return _wrong_net(dlogits, tape, params, linear_backward, bn_backward, act=lambda d, h: d)


def net_tanh_wrong(dlogits: FloatArray, tape: Mapping[str, Any], params: Mapping[str, FloatArray],
                   linear_backward: Callable[..., Any], bn_backward: Callable[..., Any]) -> dict[str, FloatArray]:
    return _wrong_net(dlogits, tape, params, linear_backward, bn_backward, act=lambda d, h: d * (1 - h))


def net_divided_again(dlogits: FloatArray, tape: Mapping[str, Any], params: Mapping[str, FloatArray],
                      linear_backward: Callable[..., Any], bn_backward: Callable[..., Any]) -> dict[str, FloatArray]:
    return _wrong_net(dlogits, tape, params, linear_backward, bn_backward, act=lambda d, h: d * (1 - h**2),
                      scale=1.0 / dlogits.shape[0])


def net_skips_bn(dlogits: FloatArray, tape: Mapping[str, Any], params: Mapping[str, FloatArray],
                 linear_backward: Callable[..., Any], bn_backward: Callable[..., Any]) -> dict[str, FloatArray]:
    return _wrong_net(dlogits, tape, params, linear_backward, bn_backward, act=lambda d, h: d * (1 - h**2),
                      skip_bn=True)


# ---------------------------------------------------------------------------- batchnorm_layer_forward


def layer_updates_in_eval(x: FloatArray, gamma: FloatArray, beta: FloatArray, running_mean: FloatArray,
                          running_var: FloatArray, training: bool, momentum: float = 0.1,
                          eps: float = 1e-5) -> tuple[FloatArray, FloatArray, FloatArray]:
    out, _, _ = solutions.batchnorm_layer_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps)
    with np.errstate(divide="ignore", invalid="ignore"):  # a single example: m − 1 = 0
        _, rm, rv = solutions.batchnorm_layer_forward(x, gamma, beta, running_mean, running_var, True, momentum, eps)
    return out, rm, rv


def layer_batch_stats_in_eval(x: FloatArray, gamma: FloatArray, beta: FloatArray, running_mean: FloatArray,
                              running_var: FloatArray, training: bool, momentum: float = 0.1,
                              eps: float = 1e-5) -> tuple[FloatArray, FloatArray, FloatArray]:
    _, rm, rv = solutions.batchnorm_layer_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps)
    out = gamma * (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps) + beta
    return out.astype(x.dtype), rm, rv


def layer_biased_running(x: FloatArray, gamma: FloatArray, beta: FloatArray, running_mean: FloatArray,
                         running_var: FloatArray, training: bool, momentum: float = 0.1,
                         eps: float = 1e-5) -> tuple[FloatArray, FloatArray, FloatArray]:
    out, rm, rv = solutions.batchnorm_layer_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps)
    if training:
        rv = ((1 - momentum) * running_var + momentum * x.var(axis=0)).astype(running_var.dtype)
    return out, rm, rv


def layer_momentum_side(x: FloatArray, gamma: FloatArray, beta: FloatArray, running_mean: FloatArray,
                        running_var: FloatArray, training: bool, momentum: float = 0.1,
                        eps: float = 1e-5) -> tuple[FloatArray, FloatArray, FloatArray]:
    return solutions.batchnorm_layer_forward(x, gamma, beta, running_mean, running_var, training, 1 - momentum, eps)
