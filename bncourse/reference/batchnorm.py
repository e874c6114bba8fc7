"""Batch normalization of ``(N, D)`` activations in NumPy: forward, two backwards, inference.

The four functions sit side by side, in the order the course teaches them:

1. :func:`batchnorm_forward` -- batch statistics, returns ``(out, cache)``;
2. :func:`batchnorm_backward` -- step by step back through the computational graph;
3. :func:`batchnorm_backward_alt` -- the same gradient in closed form, in fewer passes;
4. :func:`batchnorm_inference` -- test time, with running statistics.

Each function is its formula, one NumPy line per line of math, at every size: this is
the answer key a student compares their code with.  (A cache-blocked version with the
same signatures and results, for speed only, lives apart in
:mod:`bncourse.reference._fast`; the course does not use it.)

Both backwards take the same :class:`BatchNormCache`: two derivations, one contract.
The functions are pure: the running statistics live in
:class:`bncourse.reference.BatchNorm1d`, which updates them from ``cache.mean`` and
``cache.var``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from bncourse import validation
from bncourse.conventions import EPS
from bncourse.errors import BNCourseError
from bncourse.reference.normalization import accumulator, normalize
from bncourse.validation import FloatArray

__all__ = [
    "BatchNormCache",
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "batchnorm_forward",
    "batchnorm_inference",
]



class BatchNormCache(NamedTuple):
    """What the forward pass keeps for the backward pass, named after the math.

    All per-feature fields have shape ``(D,)``; ``x_hat`` and ``x_centered`` are ``(N, D)``.
    """

    x_hat: FloatArray
    """x̂ = (x − μ) / √(σ² + ε)."""
    x_centered: FloatArray
    """x − μ."""
    inv_std: FloatArray
    """1 / √(σ² + ε)."""
    gamma: FloatArray
    """γ, the scale (in the dtype of x)."""
    mean: FloatArray
    """μ, the batch mean."""
    var: FloatArray
    """σ², the *biased* batch variance (divide by N)."""
    eps: float
    """ε, added to the variance inside the square root."""


def batchnorm_forward(
    x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, eps: float = EPS
) -> tuple[FloatArray, BatchNormCache]:
    r"""Batch-normalize ``x`` with the statistics of the batch (training mode).

    .. math::
        \mu = \frac1N \sum_n x_n, \quad
        \sigma^2 = \frac1N \sum_n (x_n - \mu)^2, \quad
        \hat x = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}, \quad
        y = \gamma \hat x + \beta

    per feature (column).  The variance is the biased one (divide by N) and ε sits
    inside the square root, as in ``torch.nn.BatchNorm1d``.  The statistics come from
    :func:`~bncourse.reference.normalize` with ``axes=(0,)`` (float32 sums accumulate
    in float64).

    Shapes:
        x: ``(N, D)`` with N > 1; gamma, beta: ``(D,)``.

    Returns:
        ``(out, cache)``: out ``(N, D)`` in the dtype of x; ``cache`` a
        :class:`BatchNormCache` (its ``mean`` and ``var`` feed the running averages).

    Raises:
        ShapeError: x is not 2-D, or gamma/beta are not ``(D,)``.
        DTypeError: an input is not floating point.
        BatchSizeError: N = 1 (a single value per feature has no variance).
        ParameterError: ``eps <= 0``.
    """
    x, gamma, beta, eps = _check_forward_inputs(x, gamma, beta, eps, "batchnorm_forward")
    D = x.shape[1]

    x_hat, norm = normalize(x, axes=(0,), eps=eps)  # μ, σ² (biased), x̂ = (x − μ)/√(σ² + ε)
    out = gamma * x_hat + beta  # y = γ x̂ + β
    cache = BatchNormCache(
        x_hat=x_hat,
        x_centered=norm.x_centered,
        inv_std=norm.inv_std.reshape(D),
        gamma=gamma,
        mean=norm.mean.reshape(D),
        var=norm.var.reshape(D),
        eps=eps,
    )
    return out, cache


def _check_forward_inputs(
    x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, eps: float, fn: str
) -> tuple[FloatArray, FloatArray, FloatArray, float]:
    """``(x, gamma, beta, eps)`` validated: x ``(N, D)`` with N > 1, γ and β ``(D,)`` in x's dtype."""
    x = validation.as_float_array(x, "x", fn)
    validation.check_ndim(x.shape, (2,), "x", fn, "(N, D)")
    D = x.shape[1]
    gamma = validation.as_param(gamma, "gamma", fn, (D,), x.dtype)
    beta = validation.as_param(beta, "beta", fn, (D,), x.dtype)
    eps = validation.check_eps(eps, fn)
    validation.check_batch_size(x.shape, (0,), fn)
    return x, gamma, beta, eps


def _check_dout(dout: ArrayLike, cache: BatchNormCache, fn: str) -> FloatArray:
    """``dout`` as an array of the cache's dtype, with the shape of ``x``."""
    if not isinstance(cache, BatchNormCache):
        raise BNCourseError(
            f"{fn}: cache must be the BatchNormCache from batchnorm_forward, "
            f"got {type(cache).__name__}"
        )
    dout = validation.as_float_array(dout, "dout", fn)
    validation.check_shape(dout.shape, cache.x_hat.shape, "dout", fn)
    return dout.astype(cache.x_hat.dtype, copy=False)


def batchnorm_backward(
    dout: ArrayLike, cache: BatchNormCache
) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""Backward pass of :func:`batchnorm_forward`, node by node through the graph.

    The forward pass as a graph (m = N), each node next to the rule that carries the
    gradient back through it; the backward runs the table from the bottom up::

        forward node                        backward rule
        mu         = mean(x)                dx += dmu / m
        x_centered = x - mu                 dx  = dx_centered;  dmu = -sum(dx_centered)
        var        = mean(x_centered**2)    dx_centered += (2 / m) * x_centered * dvar
        inv_std    = (var + eps)**(-1/2)    dvar = -1/2 * inv_std**3 * dinv_std
        x_hat      = x_centered * inv_std   dx_centered = dx_hat * inv_std
                                            dinv_std = sum(dx_hat * x_centered)
        out        = gamma * x_hat + beta   dx_hat = gamma * dout
                                            dgamma = sum(dout * x_hat);  dbeta = sum(dout)

    ``x_centered`` feeds two nodes (``var`` and ``x_hat``), so its gradient is the sum of
    both contributions; μ and σ² depend on the whole batch, which is why the gradient
    is not just ``gamma * inv_std * dout``.

    Shapes:
        dout: ``(N, D)``.

    Returns:
        ``(dx, dgamma, dbeta)``: dx ``(N, D)``, dgamma and dbeta ``(D,)``.
    """
    fn = "batchnorm_backward"
    dout = _check_dout(dout, cache, fn)
    x_hat, x_centered, inv_std, gamma = cache.x_hat, cache.x_centered, cache.inv_std, cache.gamma
    m = dout.shape[0]

    # out = gamma * x_hat + beta
    dbeta = dout.sum(axis=0)
    dgamma = np.sum(dout * x_hat, axis=0)
    dx_hat = dout * gamma

    # x_hat = x_centered * inv_std        (x_centered's first consumer)
    dinv_std = np.sum(dx_hat * x_centered, axis=0)
    dx_centered = dx_hat * inv_std

    # inv_std = (var + eps) ** (-1/2)
    dvar = -0.5 * inv_std**3 * dinv_std

    # var = mean(x_centered ** 2)         (x_centered's second consumer: accumulate)
    dx_centered += (2.0 / m) * x_centered * dvar

    # x_centered = x - mu
    dmu = -dx_centered.sum(axis=0)
    dx = dx_centered

    # mu = mean(x)
    dx += dmu / m
    return np.ascontiguousarray(dx), dgamma, dbeta


def batchnorm_backward_alt(
    dout: ArrayLike, cache: BatchNormCache
) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""Backward pass of :func:`batchnorm_forward` in closed form.

    Collapsing the graph of :func:`batchnorm_backward` on paper gives

    .. math::
        \frac{\partial L}{\partial \beta} = \sum_n dy_n, \quad
        \frac{\partial L}{\partial \gamma} = \sum_n dy_n \hat x_n, \quad
        \frac{\partial L}{\partial x} = \frac{\gamma}{m \sqrt{\sigma^2 + \epsilon}}
            \Big( m \, dy - \sum_n dy_n - \hat x \sum_n dy_n \hat x_n \Big)

    The two sums in dx are dβ and dγ, so the whole backward is two reductions and one
    elementwise pass.  Uses only ``x_hat``, ``inv_std`` and ``gamma`` from the cache.
    Sums of float32 arrays accumulate in float64 (as torch does); the graph version
    keeps plain sums, so in float32 the two agree to rounding, not bit for bit.

    Shapes:
        dout: ``(N, D)``.

    Returns:
        ``(dx, dgamma, dbeta)``: dx ``(N, D)``, dgamma and dbeta ``(D,)``.
    """
    fn = "batchnorm_backward_alt"
    dout = _check_dout(dout, cache, fn)
    x_hat, inv_std, gamma = cache.x_hat, cache.inv_std, cache.gamma
    m = dout.shape[0]
    acc = accumulator(dout.dtype)  # float32 sums accumulate in float64

    dbeta = dout.sum(axis=0, dtype=acc).astype(dout.dtype)  # Σ dy
    dgamma = np.sum(dout * x_hat, axis=0, dtype=acc).astype(dout.dtype)  # Σ dy x̂
    dx = (gamma * inv_std / m) * (m * dout - dbeta - x_hat * dgamma)
    return np.ascontiguousarray(dx), dgamma, dbeta


def batchnorm_inference(
    x: ArrayLike,
    gamma: ArrayLike,
    beta: ArrayLike,
    running_mean: ArrayLike,
    running_var: ArrayLike,
    eps: float = EPS,
) -> FloatArray:
    r"""Batch normalization at test time: the running statistics replace the batch's.

    .. math::
        y = \gamma \frac{x - \mu_{\text{run}}}{\sqrt{\sigma^2_{\text{run}} + \epsilon}} + \beta

    Each example is normalized on its own, so N = 1 is fine and the output of one
    example does not depend on the others.  ``running_var`` is the unbiased running
    variance, as PyTorch stores it.

    Shapes:
        x: ``(N, D)``; gamma, beta, running_mean, running_var: ``(D,)``.

    Returns:
        out ``(N, D)`` in the dtype of x.

    Raises:
        ShapeError, DTypeError: on bad shapes or dtypes;
        ParameterError: ``eps <= 0`` or a negative ``running_var``.
    """
    fn = "batchnorm_inference"
    x = validation.as_float_array(x, "x", fn)
    validation.check_ndim(x.shape, (2,), "x", fn, "(N, D)")
    D = x.shape[1]
    gamma = validation.as_param(gamma, "gamma", fn, (D,), x.dtype)
    beta = validation.as_param(beta, "beta", fn, (D,), x.dtype)
    running_mean = validation.as_param(running_mean, "running_mean", fn, (D,), x.dtype)
    running_var = validation.as_param(running_var, "running_var", fn, (D,), x.dtype)
    validation.check_nonnegative(running_var, "running_var", fn)
    eps = validation.check_eps(eps, fn)

    inv_std = 1.0 / np.sqrt(running_var + eps)  # 1/√(σ²_run + ε)
    out = gamma * inv_std * (x - running_mean) + beta  # y = γ (x − μ_run)/√(σ²_run + ε) + β
    return np.ascontiguousarray(out)
