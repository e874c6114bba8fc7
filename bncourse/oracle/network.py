"""Stand-ins for notebook 08's exercises (a network backpropagated by hand), computed by torch.

``softmax_cross_entropy`` is ``F.cross_entropy`` differentiated by autograd;
``linear_backward`` differentiates ``x @ W + b`` with ``torch.autograd.grad``;
``network_backward`` differentiates the linear and tanh layers with autograd and calls the
BN backward it is given for the BN layers (that layer is the caller's: the course's
stand-in, the student's own, or the check's); ``batchnorm_layer_forward`` is
``F.batch_norm`` with running buffers, which torch updates itself.  Everything is computed
in float64 and returned in the dtype of the input.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name
from numpy.typing import ArrayLike

from bncourse import validation
from bncourse.conventions import BN_MOMENTUM, EPS
from bncourse.oracle._torch import const, leaf, to_numpy
from bncourse.validation import FloatArray

__all__ = ["batchnorm_layer_forward", "linear_backward", "network_backward", "softmax_cross_entropy"]


def softmax_cross_entropy(logits: ArrayLike, y: ArrayLike) -> tuple[float, FloatArray]:
    """``(loss, dlogits)``: ``F.cross_entropy`` (mean over the batch) and its autograd gradient.

    Shapes: logits ``(N, C)``, y ``(N,)`` integer labels → loss (float), dlogits ``(N, C)``.
    """
    logits = validation.as_float_array(logits, "logits", "softmax_cross_entropy")
    z = leaf(logits)
    loss = F.cross_entropy(z, torch.as_tensor(np.asarray(y), dtype=torch.int64))
    (dz,) = torch.autograd.grad(loss, (z,))
    return float(loss.detach()), to_numpy(dz, logits.dtype)


def linear_backward(dout: ArrayLike, x: ArrayLike, W: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(dx, dW, db)`` of ``out = x @ W + b`` by ``torch.autograd.grad``.

    Shapes: dout ``(N, M)``, x ``(N, D)``, W ``(D, M)`` → dx ``(N, D)``, dW ``(D, M)``, db ``(M,)``.
    """
    x = validation.as_float_array(x, "x", "linear_backward")
    xt, wt, bt = leaf(x), leaf(W), leaf(np.zeros(np.shape(W)[1]))
    out = torch.addmm(bt, xt, wt)
    grads = torch.autograd.grad(out, (xt, wt, bt), grad_outputs=const(dout))
    dtype = np.asarray(dout).dtype
    return tuple(to_numpy(g, dtype) for g in grads)  # type: ignore[return-value]


def network_backward(
    dlogits: ArrayLike,
    tape: Mapping[str, Any],
    params: Mapping[str, ArrayLike],
    linear_backward: Callable[..., Any],
    bn_backward: Callable[..., Any],
) -> dict[str, FloatArray]:
    """The gradients of the two-hidden-layer MLP: autograd for its linear and tanh layers,
    ``bn_backward(dz, tape["bnK"])`` for its BN layers (``linear_backward`` is not needed).

    ``tape`` holds ``x``, ``z1``, ``h1``, ``z2``, ``h2`` and the BN caches ``bn1``, ``bn2``.
    Returns the gradients of ``W3, b3, h2, z2, a2, gamma2, beta2, W2, b2, h1, z1, a1,
    gamma1, beta1, W1, b1``.
    """
    dtype = np.asarray(dlogits).dtype
    grads: dict[str, FloatArray] = {}
    upstream = np.asarray(dlogits)
    inputs = {3: tape["h2"], 2: tape["h1"], 1: tape["x"]}
    for k in (3, 2, 1):
        xt, wt = leaf(inputs[k]), leaf(params[f"W{k}"])
        bt = leaf(params[f"b{k}"])
        out = torch.addmm(bt, xt, wt)
        d_in, grads[f"W{k}"], grads[f"b{k}"] = (
            to_numpy(g, dtype) for g in torch.autograd.grad(out, (xt, wt, bt), grad_outputs=const(upstream)))
        if k == 1:
            break
        below = k - 1
        grads[f"h{below}"] = d_in
        zt = leaf(tape[f"z{below}"])
        (dz,) = torch.autograd.grad(torch.tanh(zt), (zt,), grad_outputs=const(d_in))
        grads[f"z{below}"] = to_numpy(dz, dtype)
        da, grads[f"gamma{below}"], grads[f"beta{below}"] = bn_backward(grads[f"z{below}"], tape[f"bn{below}"])
        grads[f"a{below}"] = np.asarray(da, dtype=dtype)
        upstream = grads[f"a{below}"]
    return grads


def batchnorm_layer_forward(
    x: ArrayLike,
    gamma: ArrayLike,
    beta: ArrayLike,
    running_mean: ArrayLike,
    running_var: ArrayLike,
    training: bool,
    momentum: float = BN_MOMENTUM,
    eps: float = EPS,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``F.batch_norm`` with running buffers (torch updates them in training mode, not in eval).

    Shapes: x ``(N, D)``; gamma, beta, running_mean, running_var ``(D,)``.
    Returns ``(out, running_mean, running_var)`` as new arrays.
    """
    x = validation.as_float_array(x, "x", "batchnorm_layer_forward")
    rm_dtype, rv_dtype = np.asarray(running_mean).dtype, np.asarray(running_var).dtype
    rm, rv = const(running_mean).clone(), const(running_var).clone()
    with torch.no_grad():
        out = F.batch_norm(const(x), rm, rv, const(gamma), const(beta), training=bool(training),
                           momentum=momentum, eps=eps)
    return to_numpy(out, x.dtype), to_numpy(rm, rm_dtype), to_numpy(rv, rv_dtype)
