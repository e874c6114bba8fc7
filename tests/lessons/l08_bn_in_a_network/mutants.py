"""Mutants of notebook 08's exercises: ``softmax_cross_entropy``, ``linear_backward``,
``network_backward``, ``batchnorm_layer_forward``.

Written the way a student would (loops, other formulas), independently of the ``Mistake``
implementations in ``bncourse/lessons/l08_bn_in_a_network/mistakes.py``.
"""

from __future__ import annotations

import numpy as np

# ---------------------------------------------------------------------------- softmax_cross_entropy


def _softmax_rows(logits):
    out = np.empty(logits.shape, dtype=np.float64)
    for n in range(logits.shape[0]):
        e = np.exp(logits[n] - np.max(logits[n]))
        out[n] = e / e.sum()
    return out


def ce_correct_loop(logits, y):
    p = _softmax_rows(logits)
    N = logits.shape[0]
    loss = 0.0
    grad = p.copy()
    for n in range(N):
        z = logits[n].astype(np.float64) - np.max(logits[n])
        loss -= z[y[n]] - np.log(np.sum(np.exp(z)))
        grad[n, y[n]] -= 1.0
    return loss / N, (grad / N).astype(logits.dtype)


def ce_correct_logsumexp(logits, y):
    z = logits.astype(np.float64)
    m = z.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
    onehot = np.eye(z.shape[1])[y]
    loss = np.mean(lse - z[np.arange(len(y)), y])
    return float(loss), ((np.exp(z - lse[:, None]) - onehot) / len(y)).astype(logits.dtype)


def ce_forgets_onehot(logits, y):
    loss, _ = ce_correct_loop(logits, y)
    return loss, (_softmax_rows(logits) / len(y)).astype(logits.dtype)


def ce_no_mean_in_grad(logits, y):
    p = _softmax_rows(logits)
    p[np.arange(len(y)), y] -= 1
    return ce_correct_loop(logits, y)[0], p.astype(logits.dtype)


def ce_double_mean(logits, y):
    loss, g = ce_correct_logsumexp(logits, y)
    return loss, (g / len(y)).astype(logits.dtype)


def ce_sum_loss(logits, y):
    loss, g = ce_correct_loop(logits, y)
    return loss * len(y), g


def ce_unstable(logits, y):
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        e = np.exp(logits.astype(np.float64))
        p = e / e.sum(axis=1, keepdims=True)
        loss = -np.mean(np.log(p[np.arange(len(y)), y]))
    p[np.arange(len(y)), y] -= 1
    return float(loss), (p / len(y)).astype(logits.dtype)


# ---------------------------------------------------------------------------- linear_backward


def lin_correct_einsum(dout, x, W):
    return np.einsum("nm,dm->nd", dout, W), np.einsum("nd,nm->dm", x, dout), np.einsum("nm->m", dout)


def lin_correct_loop(dout, x, W):
    dW = np.zeros_like(W)
    db = np.zeros(W.shape[1], dtype=dout.dtype)
    for n in range(x.shape[0]):
        dW += np.outer(x[n], dout[n])
        db += dout[n]
    return dout @ W.T, dW, db


def lin_db_is_dout(dout, x, W):
    return dout @ W.T, x.T @ dout, dout


def lin_db_mean(dout, x, W):
    return dout @ W.T, x.T @ dout, dout.mean(axis=0)


def lin_db_row0(dout, x, W):
    return dout @ W.T, x.T @ dout, dout[0]


def lin_dW_mean(dout, x, W):
    return dout @ W.T, (x.T @ dout) / x.shape[0], dout.sum(axis=0)


def lin_dW_wrong_order(dout, x, W):
    return dout @ W.T, (x.T @ dout).T, dout.sum(axis=0)


def lin_dx_no_transpose(dout, x, W):
    return dout @ W, x.T @ dout, dout.sum(axis=0)


# ---------------------------------------------------------------------------- network_backward


def net_correct_loop(dlogits, tape, params, linear_backward, bn_backward):
    g = {}
    d = dlogits
    for k in (3, 2, 1):
        layer_in = tape["x"] if k == 1 else tape[f"h{k - 1}"]
        dx, g[f"W{k}"], g[f"b{k}"] = linear_backward(d, layer_in, params[f"W{k}"])
        if k > 1:
            j = k - 1
            g[f"h{j}"] = dx
            g[f"z{j}"] = dx * (1.0 - np.square(tape[f"h{j}"]))
            g[f"a{j}"], g[f"gamma{j}"], g[f"beta{j}"] = bn_backward(g[f"z{j}"], tape[f"bn{j}"])
            d = g[f"a{j}"]
    return g


def net_no_activation_grad(dlogits, tape, params, linear_backward, bn_backward):
    g = {}
    g["h2"], g["W3"], g["b3"] = linear_backward(dlogits, tape["h2"], params["W3"])
    g["z2"] = g["h2"]
    g["a2"], g["gamma2"], g["beta2"] = bn_backward(g["z2"], tape["bn2"])
    g["h1"], g["W2"], g["b2"] = linear_backward(g["a2"], tape["h1"], params["W2"])
    g["z1"] = g["h1"]
    g["a1"], g["gamma1"], g["beta1"] = bn_backward(g["z1"], tape["bn1"])
    _, g["W1"], g["b1"] = linear_backward(g["a1"], tape["x"], params["W1"])
    return g


def net_tanh_one_minus_h(dlogits, tape, params, linear_backward, bn_backward):
    g = net_correct_loop(dlogits, tape, params, linear_backward, bn_backward)
    g["z2"] = g["h2"] * (1 - tape["h2"])
    g["a2"], g["gamma2"], g["beta2"] = bn_backward(g["z2"], tape["bn2"])
    g["h1"], g["W2"], g["b2"] = linear_backward(g["a2"], tape["h1"], params["W2"])
    g["z1"] = g["h1"] * (1 - tape["h1"])
    g["a1"], g["gamma1"], g["beta1"] = bn_backward(g["z1"], tape["bn1"])
    _, g["W1"], g["b1"] = linear_backward(g["a1"], tape["x"], params["W1"])
    return g


def net_extra_mean(dlogits, tape, params, linear_backward, bn_backward):
    return net_correct_loop(dlogits / dlogits.shape[0], tape, params, linear_backward, bn_backward)


def net_bn_as_identity(dlogits, tape, params, linear_backward, bn_backward):
    def identity(dout, cache):
        return dout, np.zeros(dout.shape[1], dout.dtype), np.zeros(dout.shape[1], dout.dtype)

    return net_correct_loop(dlogits, tape, params, linear_backward, identity)


# ---------------------------------------------------------------------------- batchnorm_layer_forward


def layer_correct(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    rm, rv = running_mean.copy(), running_var.copy()
    if training:
        n = len(x)
        mean = np.sum(x, axis=0) / n
        var = np.sum((x - mean) ** 2, axis=0) / n
        rm = rm * (1 - momentum) + mean * momentum
        rv = rv * (1 - momentum) + (np.sum((x - mean) ** 2, axis=0) / (n - 1)) * momentum
    else:
        mean, var = running_mean, running_var
    out = (x - mean) * (gamma / np.sqrt(var + eps)) + beta
    return out.astype(x.dtype), rm.astype(running_mean.dtype), rv.astype(running_var.dtype)


def layer_always_updates(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    out, _, _ = layer_correct(x, gamma, beta, running_mean, running_var, training, momentum, eps)
    with np.errstate(divide="ignore", invalid="ignore"):
        _, rm, rv = layer_correct(x, gamma, beta, running_mean, running_var, True, momentum, eps)
    return out, rm, rv


def layer_eval_uses_batch(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    mean, var = x.mean(axis=0), x.var(axis=0)
    _, rm, rv = layer_correct(x, gamma, beta, running_mean, running_var, training, momentum, eps)
    out = gamma * (x - mean) / np.sqrt(var + eps) + beta
    return out.astype(x.dtype), rm, rv


def layer_biased_running_var(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    out, rm, rv = layer_correct(x, gamma, beta, running_mean, running_var, training, momentum, eps)
    if training:
        rv = (running_var * (1 - momentum) + x.var(axis=0) * momentum).astype(running_var.dtype)
    return out, rm, rv


def layer_keras_momentum(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    out, _, _ = layer_correct(x, gamma, beta, running_mean, running_var, training, momentum, eps)
    if not training:
        return out, running_mean.copy(), running_var.copy()
    n = len(x)
    rm = momentum * running_mean + (1 - momentum) * x.mean(axis=0)
    rv = momentum * running_var + (1 - momentum) * x.var(axis=0) * n / (n - 1)
    return out, rm.astype(running_mean.dtype), rv.astype(running_var.dtype)


MUTANTS = [
    ("softmax_cross_entropy", "subtract 1 at each example's true class", ce_forgets_onehot),
    ("softmax_cross_entropy", "N times too large", ce_no_mean_in_grad),
    ("softmax_cross_entropy", "N times too small", ce_double_mean),
    ("softmax_cross_entropy", "return the mean", ce_sum_loss),
    ("softmax_cross_entropy", "subtract each row's maximum", ce_unstable),
    ("linear_backward", "sums the rows of dout", lin_db_is_dout),
    ("linear_backward", "sums the rows of dout", lin_db_row0),
    ("linear_backward", "mean of dout's rows", lin_db_mean),
    ("linear_backward", "dW is divided by the batch size", lin_dW_mean),
    ("linear_backward", "dW is transposed", lin_dW_wrong_order),
    ("linear_backward", "dout @ W.T", lin_dx_no_transpose),
    ("network_backward", "skips the tanh", net_no_activation_grad),
    ("network_backward", "not 1 − h", net_tanh_one_minus_h),
    ("network_backward", "do not divide by the batch size again", net_extra_mean),
    ("network_backward", "straight through the BN layers", net_bn_as_identity),
    ("batchnorm_layer_forward", "updates running_mean/running_var in evaluation mode", layer_always_updates),
    ("batchnorm_layer_forward", "batch's own statistics", layer_eval_uses_batch),
    ("batchnorm_layer_forward", "unbiased one", layer_biased_running_var),
    ("batchnorm_layer_forward", "weights the NEW batch", layer_keras_momentum),
]

CORRECT = [
    ("softmax_cross_entropy", ce_correct_loop),
    ("softmax_cross_entropy", ce_correct_logsumexp),
    ("linear_backward", lin_correct_einsum),
    ("linear_backward", lin_correct_loop),
    ("network_backward", net_correct_loop),
    ("batchnorm_layer_forward", layer_correct),
]
