"""Stand-ins for the other normalizations: layer, group, batch renorm, and ``normalize(x, axes)``.

``torch.nn.functional.layer_norm`` and ``group_norm`` with autograd for the backward;
Batch Renormalization is the course's torch module :class:`bncourse.nn.BatchRenorm1d`
(torch has none).  Computed in float64, returned in the dtype of ``x``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name
from numpy.typing import ArrayLike

from bncourse import validation
from bncourse.conventions import BN_MOMENTUM, EPS
from bncourse.errors import ParameterError
from bncourse.nn.renorm import BatchRenorm1d
from bncourse.oracle._torch import F64, AutogradCache, backward_through, const, leaf, to_numpy
from bncourse.validation import FloatArray

__all__ = [
    "BatchRenormResult",
    "batch_renorm_backward",
    "batch_renorm_forward",
    "groupnorm_backward",
    "groupnorm_forward",
    "layernorm_backward",
    "layernorm_forward",
    "normalize",
]


def normalize(x: ArrayLike, axes: tuple[int, ...] | int, eps: float = EPS) -> tuple[FloatArray, None]:
    """Standardize ``x`` over ``axes`` (biased variance, ε inside the square root).

    The reduced axes are moved last and flattened, and ``F.layer_norm`` normalizes each
    row over them; then the axes are put back.  One statistic per position of the
    other axes (``axes=(0,)`` on ``(N, D)`` is batch norm, ``(1, 2, 3)`` on
    ``(N, C, H, W)`` layer norm, ``(2, 3)`` instance norm).

    Shapes:
        x: any shape; ``axes``: distinct axes of x (negative allowed).

    Returns:
        ``(x_hat, None)``: x_hat shaped like x, in its dtype (no cache: no backward here).

    Raises:
        DTypeError, ShapeError (bad axes), ParameterError (eps <= 0).
    """
    fn = "normalize"
    xa = validation.as_float_array(x, "x", fn)
    reduced = validation.check_axes(axes, xa.ndim, fn)
    eps = validation.check_eps(eps, fn)
    kept = tuple(a for a in range(xa.ndim) if a not in reduced)
    m = int(np.prod([xa.shape[a] for a in reduced]))
    with torch.no_grad():
        moved = const(xa).permute(*kept, *reduced)  # the reduced axes last
        rows = moved.reshape(-1, m)
        out = F.layer_norm(rows, (m,), eps=eps).reshape(moved.shape)
        out = out.permute(*np.argsort(kept + reduced).tolist())  # back to the axes of x
    return to_numpy(out, xa.dtype), None


# --------------------------------------------------------------------------- layer norm


def layernorm_forward(
    x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, eps: float = EPS
) -> tuple[FloatArray, AutogradCache]:
    """Layer norm: ``F.layer_norm(x, x.shape[1:], gamma, beta, eps)``, per example.

    Shapes:
        x: ``(N, D)`` or ``(N, *F)`` (N = 1 is fine); gamma, beta: ``x.shape[1:]``.

    Returns:
        ``(out, cache)``: out shaped like x, in its dtype; the cache for :func:`layernorm_backward`.
    """
    fn = "layernorm_forward"
    xa = validation.as_float_array(x, "x", fn)
    validation.check_min_ndim(xa.shape, 2, "x", fn, "(N, D) or (N, *F)")
    g = validation.as_param(gamma, "gamma", fn, xa.shape[1:], xa.dtype)
    b = validation.as_param(beta, "beta", fn, xa.shape[1:], xa.dtype)
    eps = validation.check_eps(eps, fn)
    xt, gt, bt = leaf(xa), leaf(g), leaf(b)
    out = F.layer_norm(xt, xa.shape[1:], gt, bt, eps)
    return to_numpy(out, xa.dtype), AutogradCache(fn, {"x": xt, "gamma": gt, "beta": bt}, out, xa.dtype, eps)


def layernorm_backward(dout: ArrayLike, cache: AutogradCache) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(dx, dgamma, dbeta)`` by ``torch.autograd.grad`` through :func:`layernorm_forward`'s graph.

    Shapes: dout like x → dx like x; dgamma, dbeta like ``x.shape[1:]``.
    """
    dx, dgamma, dbeta = backward_through(dout, cache, "layernorm_backward", "layernorm_forward")
    return dx, dgamma, dbeta


# --------------------------------------------------------------------------- group norm


def groupnorm_forward(
    x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, num_groups: int, eps: float = EPS
) -> tuple[FloatArray, AutogradCache]:
    """Group norm: ``F.group_norm(x, num_groups, gamma, beta, eps)``.

    Shapes:
        x: ``(N, C, H, W)`` or ``(N, C, *S)``; gamma, beta: ``(C,)``.

    Returns:
        ``(out, cache)``: out shaped like x, in its dtype; the cache for :func:`groupnorm_backward`.

    Raises:
        ParameterError: num_groups does not divide C ("C=6 not divisible by G=4").
    """
    fn = "groupnorm_forward"
    xa = validation.as_float_array(x, "x", fn)
    validation.check_min_ndim(xa.shape, 2, "x", fn, "(N, C, H, W) or (N, C, *S)")
    C = xa.shape[1]
    G = validation.check_num_groups(C, num_groups, fn)
    g = validation.as_param(gamma, "gamma", fn, (C,), xa.dtype)
    b = validation.as_param(beta, "beta", fn, (C,), xa.dtype)
    eps = validation.check_eps(eps, fn)
    xt, gt, bt = leaf(xa), leaf(g), leaf(b)
    out = F.group_norm(xt, G, gt, bt, eps)
    return to_numpy(out, xa.dtype), AutogradCache(fn, {"x": xt, "gamma": gt, "beta": bt}, out, xa.dtype, eps)


def groupnorm_backward(dout: ArrayLike, cache: AutogradCache) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(dx, dgamma, dbeta)`` by autograd through :func:`groupnorm_forward`'s graph."""
    dx, dgamma, dbeta = backward_through(dout, cache, "groupnorm_backward", "groupnorm_forward")
    return dx, dgamma, dbeta


# --------------------------------------------------------------------------- batch renorm


class BatchRenormResult(NamedTuple):
    """Output of :func:`batch_renorm_forward`, field by field as the solution's."""

    out: FloatArray
    """``(N, D)``."""
    r: FloatArray
    """``clip(σ_B/σ_run, 1/r_max, r_max)``, ``(D,)``."""
    d: FloatArray
    """``clip((μ_B − μ_run)/σ_run, −d_max, d_max)``, ``(D,)``."""
    running_mean: FloatArray
    """The updated running mean (a new array), ``(D,)``."""
    running_var: FloatArray
    """The updated running (unbiased) variance (a new array), ``(D,)``."""
    cache: AutogradCache
    """For :func:`batch_renorm_backward`."""


def batch_renorm_forward(
    x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, running_mean: ArrayLike, running_var: ArrayLike,
    r_max: float, d_max: float, eps: float = EPS, momentum: float = BN_MOMENTUM,
) -> BatchRenormResult:
    """Batch Renormalization in training mode, one step of :class:`bncourse.nn.BatchRenorm1d`.

    torch has no batch renorm; the course's torch module (float64) gets γ, β and the
    running statistics, runs one training-mode forward pass and reports its ``r``, ``d``
    and updated buffers.  The inputs are not modified.

    Shapes:
        x: ``(N, D)`` with N > 1; gamma, beta, running_mean, running_var: ``(D,)``.

    Returns:
        A :class:`BatchRenormResult` ``(out, r, d, running_mean, running_var, cache)``.

    Raises:
        ParameterError: ``r_max < 1``, ``d_max < 0``, ``eps <= 0``, momentum outside [0, 1];
        ShapeError, DTypeError, BatchSizeError as in batchnorm_forward.
    """
    fn = "batch_renorm_forward"
    xa = validation.as_float_array(x, "x", fn)
    validation.check_ndim(xa.shape, (2,), "x", fn, "(N, D)")
    D = xa.shape[1]
    vectors = {"gamma": gamma, "beta": beta, "running_mean": running_mean, "running_var": running_var}
    v = {k: validation.as_param(a, k, fn, (D,), xa.dtype) for k, a in vectors.items()}
    validation.check_nonnegative(v["running_var"], "running_var", fn)
    if not float(r_max) >= 1.0:
        raise ParameterError(f"{fn}: r_max must be >= 1, got r_max={r_max!r}")
    if not float(d_max) >= 0.0:
        raise ParameterError(f"{fn}: d_max must be >= 0, got d_max={d_max!r}")
    eps = validation.check_eps(eps, fn)
    momentum_ = validation.check_momentum(momentum, fn)
    if momentum_ is None:
        raise ParameterError(f"{fn}: momentum must be a number in [0, 1], got None")
    validation.check_batch_size(xa.shape, (0,), fn)

    module = BatchRenorm1d(D, eps=eps, momentum=momentum_, r_max=float(r_max), d_max=float(d_max)).to(F64)
    with torch.no_grad():
        module.weight.copy_(const(v["gamma"]))
        module.bias.copy_(const(v["beta"]))
        module.running_mean.copy_(const(v["running_mean"]))
        module.running_var.copy_(const(v["running_var"]))
    module.train()
    xt = leaf(xa)
    out = module(xt)
    assert module.last_r is not None and module.last_d is not None  # set by a training-mode pass
    cache = AutogradCache(fn, {"x": xt, "gamma": module.weight, "beta": module.bias}, out, xa.dtype, eps)
    dt = xa.dtype
    return BatchRenormResult(to_numpy(out, dt), to_numpy(module.last_r, dt), to_numpy(module.last_d, dt),
                             to_numpy(module.running_mean, dt), to_numpy(module.running_var, dt), cache)


def batch_renorm_backward(dout: ArrayLike, cache: AutogradCache) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(dx, dgamma, dbeta)`` by autograd through :func:`batch_renorm_forward`'s graph (r, d constant)."""
    dx, dgamma, dbeta = backward_through(dout, cache, "batch_renorm_backward", "batch_renorm_forward")
    return dx, dgamma, dbeta
