"""Stand-ins for batch norm on ``(N, D)`` and ``(N, C, H, W)``, from torch's own kernels.

Forward passes are ``torch.nn.functional.batch_norm``; backward passes are
``torch.autograd.grad`` through that graph (:class:`~bncourse.oracle._torch.AutogradCache`).
Folding is ``torch.nn.utils.fusion``.  Notebook 04's exercises differentiate
``F.linear`` followed by ``F.batch_norm`` with autograd.  Everything is computed in
float64 and returned in the dtype of ``x`` (or ``weight``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name
from numpy.typing import ArrayLike
from torch.nn.utils import fusion

from bncourse import validation
from bncourse.conventions import EPS
from bncourse.oracle._torch import AutogradCache, backward_through, const, leaf, to_numpy
from bncourse.validation import FloatArray

__all__ = [
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "batchnorm_forward",
    "batchnorm_inference",
    "bias_grad_through_bn",
    "fold_batchnorm",
    "recover_identity",
    "scale_invariance_check",
    "spatial_batchnorm_backward",
    "spatial_batchnorm_forward",
]


def _params(
    x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, eps: float, fn: str, ndim: int, layout: str, where: str = ""
) -> tuple[FloatArray, FloatArray, FloatArray, float]:
    """``(x, gamma, beta, eps)`` validated: x of ``ndim`` axes, γ and β ``(C,)`` = ``(x.shape[1],)``."""
    x = validation.as_float_array(x, "x", fn)
    validation.check_ndim(x.shape, (ndim,), "x", fn, layout)
    where = where or fn
    C = x.shape[1]
    gamma = validation.as_param(gamma, "gamma", where, (C,), x.dtype)
    beta = validation.as_param(beta, "beta", where, (C,), x.dtype)
    return x, gamma, beta, validation.check_eps(eps, where)


def _train_mode(
    forward: str, x: FloatArray, gamma: FloatArray, beta: FloatArray, eps: float
) -> tuple[FloatArray, AutogradCache]:
    """``F.batch_norm`` in training mode (batch statistics) on leaves that require grad."""
    xt, gt, bt = leaf(x), leaf(gamma), leaf(beta)
    out = F.batch_norm(xt, None, None, gt, bt, training=True, eps=eps)
    cache = AutogradCache(forward, {"x": xt, "gamma": gt, "beta": bt}, out, x.dtype, eps)
    return to_numpy(out, x.dtype), cache


def batchnorm_forward(
    x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, eps: float = EPS
) -> tuple[FloatArray, AutogradCache]:
    """Batch norm in training mode: ``torch.nn.functional.batch_norm(x, training=True)``.

    Shapes:
        x: ``(N, D)`` with N > 1; gamma, beta: ``(D,)``.

    Returns:
        ``(out, cache)``: out ``(N, D)`` in the dtype of x; ``cache`` an opaque
        :class:`~bncourse.oracle.AutogradCache` for :func:`batchnorm_backward`.

    Raises:
        ShapeError, DTypeError, BatchSizeError (N = 1), ParameterError (eps <= 0).
    """
    fn = "batchnorm_forward"
    x, gamma, beta, eps = _params(x, gamma, beta, eps, fn, 2, "(N, D)")
    validation.check_batch_size(x.shape, (0,), fn)
    return _train_mode(fn, x, gamma, beta, eps)


def batchnorm_backward(dout: ArrayLike, cache: AutogradCache) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(dx, dgamma, dbeta)`` by ``torch.autograd.grad`` through :func:`batchnorm_forward`'s graph.

    Shapes:
        dout: ``(N, D)`` → dx ``(N, D)``, dgamma, dbeta ``(D,)``, in the dtype of x.

    Raises:
        TypeError: ``cache`` is not the cache of :func:`batchnorm_forward` (of this package).
    """
    dx, dgamma, dbeta = backward_through(dout, cache, "batchnorm_backward", "batchnorm_forward")
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout: ArrayLike, cache: AutogradCache) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The same gradients as :func:`batchnorm_backward` (autograd has one way to get them)."""
    dx, dgamma, dbeta = backward_through(dout, cache, "batchnorm_backward_alt", "batchnorm_forward")
    return dx, dgamma, dbeta


def batchnorm_inference(
    x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, running_mean: ArrayLike, running_var: ArrayLike,
    eps: float = EPS,
) -> FloatArray:
    """Batch norm at test time: ``F.batch_norm(x, running_mean, running_var, training=False)``.

    Shapes:
        x: ``(N, D)`` (N = 1 is fine); gamma, beta, running_mean, running_var: ``(D,)``.

    Returns:
        out ``(N, D)`` in the dtype of x.

    Raises:
        ShapeError, DTypeError; ParameterError: ``eps <= 0`` or a negative ``running_var``.
    """
    fn = "batchnorm_inference"
    x, gamma, beta, eps = _params(x, gamma, beta, eps, fn, 2, "(N, D)")
    D = x.shape[1]
    running_mean = validation.as_param(running_mean, "running_mean", fn, (D,), x.dtype)
    running_var = validation.as_param(running_var, "running_var", fn, (D,), x.dtype)
    validation.check_nonnegative(running_var, "running_var", fn)
    with torch.no_grad():
        out = F.batch_norm(const(x), const(running_mean), const(running_var), const(gamma), const(beta),
                           training=False, eps=eps)
    return to_numpy(out, x.dtype)


# --------------------------------------------------------------------------- (N, C, H, W)

_LAYOUT = "(N, C, H, W)"


def spatial_batchnorm_forward(
    x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, eps: float = EPS
) -> tuple[FloatArray, AutogradCache]:
    """Batch norm of images, statistics per channel over ``(N, H, W)``: ``F.batch_norm`` on 4-D input.

    Shapes:
        x: ``(N, C, H, W)`` with N·H·W > 1; gamma, beta: ``(C,)``.

    Returns:
        ``(out, cache)``: out ``(N, C, H, W)`` in the dtype of x; the cache for
        :func:`spatial_batchnorm_backward`.
    """
    fn = "spatial_batchnorm_forward"
    x_arr = validation.as_float_array(x, "x", fn)
    validation.check_ndim(x_arr.shape, (4,), "x", fn, _LAYOUT)
    validation.check_batch_size(x_arr.shape, (0, 2, 3), fn)
    xa, g, b, eps = _params(x_arr, gamma, beta, eps, fn, 4, _LAYOUT, where=f"{fn} on x.shape={x_arr.shape}")
    return _train_mode(fn, xa, g, b, eps)


def spatial_batchnorm_backward(
    dout: ArrayLike, cache: AutogradCache
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(dx, dgamma, dbeta)`` by autograd through :func:`spatial_batchnorm_forward`'s graph.

    Shapes:
        dout: ``(N, C, H, W)`` → dx ``(N, C, H, W)``; dgamma, dbeta ``(C,)``.
    """
    fn = "spatial_batchnorm_backward"
    d = validation.as_float_array(dout, "dout", fn)
    validation.check_ndim(d.shape, (4,), "dout", fn, _LAYOUT)
    dx, dgamma, dbeta = backward_through(d, cache, fn, "spatial_batchnorm_forward")
    return dx, dgamma, dbeta


# --------------------------------------------------------------------------- notebook 04


def recover_identity(x: ArrayLike, eps: float = EPS) -> tuple[FloatArray, FloatArray]:
    """The γ and β for which batch norm returns ``x``: the statistics torch's kernel normalizes with.

    ``torch.native_batch_norm`` (the kernel behind ``F.batch_norm``) returns the batch
    mean it subtracts and the ``1/√(σ² + ε)`` it multiplies by; undoing them needs
    ``γ = 1 / that`` and ``β = that mean``.

    Shapes: x ``(N, D)`` → gamma ``(D,)``, beta ``(D,)``, in x's dtype.
    """
    fn = "recover_identity"
    xa = validation.as_float_array(x, "x", fn)
    validation.check_ndim(xa.shape, (2,), "x", fn, "(N, D)")
    eps = validation.check_eps(eps, fn)
    with torch.no_grad():
        _, mean, inv_std = torch.native_batch_norm(const(xa), None, None, None, None, True, 0.0, eps)
    return to_numpy(inv_std.reciprocal(), xa.dtype), to_numpy(mean, xa.dtype)


def bias_grad_through_bn(
    x: ArrayLike, W: ArrayLike, b: ArrayLike, gamma: ArrayLike, beta: ArrayLike, dout: ArrayLike,
    eps: float = EPS,
) -> tuple[FloatArray, FloatArray]:
    """``(dW, db)`` of ``F.batch_norm(F.linear(x, W, b))`` in training mode, by autograd.

    Shapes: x ``(N, D_in)``, W ``(D, D_in)``, b, gamma, beta ``(D,)``, dout ``(N, D)`` →
    dW ``(D, D_in)``, db ``(D,)`` (zero up to rounding), in x's dtype.
    """
    fn = "bias_grad_through_bn"
    xa = validation.as_float_array(x, "x", fn)
    eps = validation.check_eps(eps, fn)
    Wt, bt = leaf(W), leaf(b)
    out = F.batch_norm(F.linear(const(xa), Wt, bt), None, None, const(gamma), const(beta), training=True, eps=eps)
    dW, db = torch.autograd.grad(out, (Wt, bt), const(dout))
    return to_numpy(dW, xa.dtype), to_numpy(db, xa.dtype)


def scale_invariance_check(
    x: ArrayLike, W: ArrayLike, gamma: ArrayLike, beta: ArrayLike, dout: ArrayLike, scales: ArrayLike,
    eps: float = EPS,
) -> tuple[FloatArray, FloatArray]:
    """For each a in ``scales``: ``max |BN(x (aW)ᵀ) − BN(x Wᵀ)|`` and ``‖∂L/∂(aW)‖_F``, by autograd.

    BN is ``F.batch_norm`` in training mode, the gradient ``torch.autograd.grad`` with
    upstream gradient ``dout``, the norm ``torch.linalg.matrix_norm`` (Frobenius).

    Returns:
        ``(out_diff, grad_norm)``, each ``(len(scales),)`` in x's dtype.
    """
    fn = "scale_invariance_check"
    xa = validation.as_float_array(x, "x", fn)
    eps = validation.check_eps(eps, fn)
    a_values = np.asarray(scales, dtype=xa.dtype)  # the scales as the solution sees them
    xt, Wt, gt, bt, dt = const(xa), const(W), const(gamma), const(beta), const(dout)

    def bn_of(weight: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(F.linear(xt, weight), None, None, gt, bt, training=True, eps=eps)

    with torch.no_grad():
        out_1 = bn_of(Wt)
    diffs, norms = [], []
    for a in a_values:
        W_a = (float(a) * Wt).requires_grad_(True)
        out_a = bn_of(W_a)
        (dW_a,) = torch.autograd.grad(out_a, W_a, dt)
        diffs.append((out_a.detach() - out_1).abs().max())
        norms.append(torch.linalg.matrix_norm(dW_a, ord="fro"))
    return to_numpy(torch.stack(diffs), xa.dtype), to_numpy(torch.stack(norms), xa.dtype)


# --------------------------------------------------------------------------- folding


def fold_batchnorm(
    weight: ArrayLike, bias: ArrayLike | None, gamma: ArrayLike, beta: ArrayLike,
    running_mean: ArrayLike, running_var: ArrayLike, eps: float = EPS,
) -> tuple[FloatArray, FloatArray]:
    """Fold an eval-mode BN into the layer before it: ``torch.nn.utils.fusion``.

    ``fuse_linear_bn_weights`` for a 2-D (linear) weight, ``fuse_conv_bn_weights`` for a
    weight with more axes (conv).

    Shapes:
        weight ``(out, in)`` or ``(out, in, kh, kw)``; bias ``(out,)`` or None;
        gamma, beta, running_mean, running_var ``(out,)``.

    Returns:
        ``(weight, bias)``: new arrays in the dtype of weight, shaped like weight and ``(out,)``.

    Raises:
        ShapeError, DTypeError; ParameterError: ``eps <= 0`` or a negative running_var.
    """
    fn = "fold_batchnorm"
    w = validation.as_float_array(weight, "weight", fn)
    validation.check_min_ndim(w.shape, 2, "weight", fn, "(out, in) or (out, in, kh, kw)")
    out_shape, dtype = (w.shape[0],), w.dtype
    vectors = {"gamma": gamma, "beta": beta, "running_mean": running_mean, "running_var": running_var}
    v = {k: validation.as_param(a, k, fn, out_shape, dtype) for k, a in vectors.items()}
    b = None if bias is None else validation.as_param(bias, "bias", fn, out_shape, dtype)
    validation.check_nonnegative(v["running_var"], "running_var", fn)
    eps = validation.check_eps(eps, fn)
    args = (const(w), None if b is None else const(b), const(v["running_mean"]), const(v["running_var"]), eps,
            const(v["gamma"]), const(v["beta"]))
    with torch.no_grad():
        fused_w, fused_b = (fusion.fuse_linear_bn_weights(*args) if w.ndim == 2
                            else fusion.fuse_conv_bn_weights(*args))
    return to_numpy(fused_w, dtype), to_numpy(fused_b, dtype)
