"""Batch Renormalization (Ioffe, 2017): batch norm that stays close to its running stats.

With small or non-i.i.d. batches the batch statistics wander away from the population
ones that inference uses.  Batch Renorm normalizes with the batch statistics and then
applies the correction that maps them onto the running ones, clipped so training
starts as plain batch norm (r_max = 1, d_max = 0) and is relaxed later.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from bncourse import validation
from bncourse.conventions import BN_MOMENTUM, EPS
from bncourse.errors import ParameterError
from bncourse.reference.normalization import (
    NormalizeCache,
    accumulator,
    normalize,
    normalize_backward,
)
from bncourse.validation import FloatArray

__all__ = ["BatchRenormCache", "BatchRenormResult", "batch_renorm_backward", "batch_renorm_forward"]



class BatchRenormCache(NamedTuple):
    """What :func:`batch_renorm_backward` needs."""

    x_hat: FloatArray
    """The renormalized input, ``(x − μ_B)/σ_B · r + d``, ``(N, D)``."""
    r: FloatArray
    """``(D,)``, a constant for the gradient."""
    gamma: FloatArray
    norm: NormalizeCache
    """The kernel's cache of the plain batch normalization ``(x − μ_B)/σ_B``."""


class BatchRenormResult(NamedTuple):
    """Output of :func:`batch_renorm_forward`; fields are read by name."""

    out: FloatArray
    """``γ x̂ + β``, ``(N, D)``."""
    r: FloatArray
    """``clip(σ_B / σ_run, 1/r_max, r_max)``, ``(D,)``."""
    d: FloatArray
    """``clip((μ_B − μ_run) / σ_run, −d_max, d_max)``, ``(D,)``."""
    running_mean: FloatArray
    """The updated running mean (a new array), ``(D,)``."""
    running_var: FloatArray
    """The updated running (unbiased) variance (a new array), ``(D,)``."""
    cache: BatchRenormCache


def batch_renorm_forward(
    x: ArrayLike,
    gamma: ArrayLike,
    beta: ArrayLike,
    running_mean: ArrayLike,
    running_var: ArrayLike,
    r_max: float,
    d_max: float,
    eps: float = EPS,
    momentum: float = BN_MOMENTUM,
) -> BatchRenormResult:
    r"""Batch Renormalization in training mode, as a pure function.

    With the batch's μ_B and biased σ²_B, ``σ_B = √(σ²_B + ε)`` and
    ``σ_run = √(running_var + ε)``:

    .. math::
        r = \operatorname{clip}\Big(\frac{\sigma_B}{\sigma_{\text{run}}},
            \frac{1}{r_{\max}}, r_{\max}\Big), \quad
        d = \operatorname{clip}\Big(\frac{\mu_B - \mu_{\text{run}}}{\sigma_{\text{run}}},
            -d_{\max}, d_{\max}\Big), \quad
        \hat x = \frac{x - \mu_B}{\sigma_B} \, r + d, \quad y = \gamma \hat x + \beta

    r and d are computed from the running statistics *before* this batch's update and
    are treated as constants by the gradient (:func:`batch_renorm_backward`).  Without
    clipping, ``x̂ = (x − μ_run)/σ_run``: the output the running statistics will give at
    inference.  With ``r_max = 1, d_max = 0`` it is plain batch norm.

    Running statistics: nothing is mutated.  The updated statistics are returned,
    computed with PyTorch's rule and buffers so :func:`batchnorm_inference` can use them:
    ``running_mean ← (1 − momentum)·running_mean + momentum·μ_B`` and
    ``running_var ← (1 − momentum)·running_var + momentum·m/(m−1)·σ²_B`` (unbiased).
    (The paper averages σ itself; keeping the variance matches PyTorch's buffers.)

    Shapes:
        x: ``(N, D)`` with N > 1; gamma, beta, running_mean, running_var: ``(D,)``.

    Returns:
        A :class:`BatchRenormResult` ``(out, r, d, running_mean, running_var, cache)``.

    Raises:
        ParameterError: ``r_max < 1``, ``d_max < 0``, ``eps <= 0`` or momentum
        outside [0, 1]; ShapeError, DTypeError, BatchSizeError as in batchnorm_forward.
    """
    fn = "batch_renorm_forward"
    x = validation.as_float_array(x, "x", fn)
    validation.check_ndim(x.shape, (2,), "x", fn, "(N, D)")
    N, D = x.shape
    gamma = validation.as_param(gamma, "gamma", fn, (D,), x.dtype)
    beta = validation.as_param(beta, "beta", fn, (D,), x.dtype)
    running_mean = validation.as_param(running_mean, "running_mean", fn, (D,), x.dtype)
    running_var = validation.as_param(running_var, "running_var", fn, (D,), x.dtype)
    validation.check_nonnegative(running_var, "running_var", fn)
    if not float(r_max) >= 1.0:
        raise ParameterError(f"{fn}: r_max must be >= 1, got r_max={r_max!r}")
    if not float(d_max) >= 0.0:
        raise ParameterError(f"{fn}: d_max must be >= 0, got d_max={d_max!r}")
    eps = validation.check_eps(eps, fn)
    momentum_ = validation.check_momentum(momentum, fn)
    if momentum_ is None:
        raise ParameterError(f"{fn}: momentum must be a number in [0, 1], got None")
    validation.check_batch_size(x.shape, (0,), fn)

    x_bn, norm = normalize(x, axes=(0,), eps=eps)  # (x − μ_B)/σ_B
    mu_b, var_b = norm.mean.reshape(D), norm.var.reshape(D)
    sigma_b = np.sqrt(var_b + eps)  # σ_B = √(σ²_B + ε)
    sigma_run = np.sqrt(running_var + eps)  # σ_run = √(σ²_run + ε)
    r = np.clip(sigma_b / sigma_run, 1.0 / r_max, r_max)  # r = clip(σ_B/σ_run, 1/r_max, r_max)
    d = np.clip((mu_b - running_mean) / sigma_run, -d_max, d_max)  # d = clip(…, −d_max, d_max)
    x_hat = x_bn * r + d  # x̂ = (x − μ_B)/σ_B · r + d
    out = gamma * x_hat + beta  # y = γ x̂ + β

    new_mean = (1.0 - momentum_) * running_mean + momentum_ * mu_b
    new_var = (1.0 - momentum_) * running_var + momentum_ * var_b * (N / (N - 1))
    cache = BatchRenormCache(x_hat=x_hat, r=r, gamma=gamma, norm=norm)
    return BatchRenormResult(out, r, d, new_mean, new_var, cache)


def batch_renorm_backward(
    dout: ArrayLike, cache: BatchRenormCache
) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""Backward pass of :func:`batch_renorm_forward`, with r and d held constant.

    .. math::
        \frac{\partial L}{\partial \beta} = \sum_n dy_n, \quad
        \frac{\partial L}{\partial \gamma} = \sum_n dy_n \hat x_n, \quad
        \frac{\partial L}{\partial x} = \text{normalize\_backward}(r \gamma \, dy)

    i.e. batch norm's closed-form gradient with γ replaced by ``r·γ``.

    Shapes:
        dout: ``(N, D)``.

    Returns:
        ``(dx, dgamma, dbeta)``: dx ``(N, D)``; dgamma, dbeta ``(D,)``.
    """
    fn = "batch_renorm_backward"
    x_hat = cache.x_hat
    dout = validation.as_float_array(dout, "dout", fn).astype(x_hat.dtype, copy=False)
    validation.check_shape(dout.shape, x_hat.shape, "dout", fn)

    acc = accumulator(dout.dtype)
    dbeta = dout.sum(axis=0, dtype=acc).astype(dout.dtype)  # Σ dy
    dgamma = np.sum(dout * x_hat, axis=0, dtype=acc).astype(dout.dtype)  # Σ dy x̂
    dx = normalize_backward(dout * (cache.r * cache.gamma), cache.norm)
    return dx, dgamma, dbeta
