"""The wrong implementations behind notebook 03's ``Mistake`` s, and their helpers.

Each public function here is one plausible slip in an exercise of notebook 03, with the
same signature as the function the student writes: when a student's outputs match its
outputs, :mod:`bncourse.lessons.l03_forward_backward.exercises` shows that ``Mistake``'s
diagnosis.  The diagnoses themselves (and the order in which the mistakes are tried) are
declared there; this module holds only the code.

* ``fwd_*`` — ``batchnorm_forward``, written against the reference's math;
* ``bwd_*`` — ``batchnorm_backward`` / ``batchnorm_backward_alt``; they receive the
  reference cache (:class:`~bncourse.reference.BatchNormCache`), which is what the
  exercises' namespace provides;
* ``grad_*`` — ``numerical_gradient``.

NumPy only (no torch, no matplotlib).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bncourse import reference
from bncourse.reference import gradcheck
from bncourse.validation import Array

__all__ = [
    "bwd_constant_stats",
    "bwd_mean_not_sum",
    "bwd_no_gamma",
    "bwd_no_mean_path",
    "bwd_no_var_path",
    "bwd_swapped",
    "bwd_unbiased",
    "fwd_divide_by_var_no_eps",
    "fwd_eps_outside",
    "fwd_gamma_beta_swapped",
    "fwd_missing_eps",
    "fwd_no_affine",
    "fwd_no_square_root",
    "fwd_per_example_statistics",
    "fwd_statistics_over_everything",
    "fwd_unbiased_variance",
    "grad_forward_difference",
    "grad_h_not_2h",
    "grad_no_dout",
]



# --------------------------------------------------------------------------- batchnorm_forward


def _fwd(x: Array, gamma: Array, beta: Array, eps: float, *, ddof: int = 0, eps_in: bool = True,
         sqrt: bool = True, axis: int | None = 0, affine: str = "ok") -> tuple[Array, None]:
    """The batch-norm forward with one slip switched on by a keyword (the defaults are right)."""
    mu = x.mean(axis=axis, keepdims=True)
    var = x.var(axis=axis, ddof=ddof, keepdims=True)
    if sqrt:
        denom = np.sqrt(var + eps) if eps_in else np.sqrt(var)
    else:
        denom = var + eps if eps_in else var
    x_hat = (x - mu) / denom
    if affine == "swapped":
        out = x_hat * beta + gamma
    elif affine == "none":
        out = x_hat
    else:
        out = gamma * x_hat + beta
    return out.astype(x.dtype), None


def fwd_unbiased_variance(x: Array, gamma: Array, beta: Array, eps: float) -> tuple[Array, None]:
    """The variance divides by N − 1 (ddof=1)."""
    return _fwd(x, gamma, beta, eps, ddof=1)


def fwd_divide_by_var_no_eps(x: Array, gamma: Array, beta: Array, eps: float) -> tuple[Array, None]:
    """Divides by σ² itself, without ε (the sloppy formula of one lecture note)."""
    return _fwd(x, gamma, beta, eps, sqrt=False, eps_in=False)


def fwd_no_square_root(x: Array, gamma: Array, beta: Array, eps: float) -> tuple[Array, None]:
    """Divides by σ² + ε instead of its square root."""
    return _fwd(x, gamma, beta, eps, sqrt=False)


def fwd_missing_eps(x: Array, gamma: Array, beta: Array, eps: float) -> tuple[Array, None]:
    """Divides by √σ², without ε."""
    return _fwd(x, gamma, beta, eps, eps_in=False)


def fwd_eps_outside(x: Array, gamma: Array, beta: Array, eps: float) -> tuple[Array, None]:
    """Divides by √σ² + ε (ε outside the square root)."""
    x_hat = (x - x.mean(axis=0)) / (x.std(axis=0) + eps)
    return (gamma * x_hat + beta).astype(x.dtype), None


def fwd_per_example_statistics(x: Array, gamma: Array, beta: Array, eps: float) -> tuple[Array, None]:
    """μ and σ² of each example over its features (axis=1: layer norm)."""
    return _fwd(x, gamma, beta, eps, axis=1)


def fwd_statistics_over_everything(x: Array, gamma: Array, beta: Array, eps: float) -> tuple[Array, None]:
    """One μ and σ² over the whole array."""
    return _fwd(x, gamma, beta, eps, axis=None)


def fwd_gamma_beta_swapped(x: Array, gamma: Array, beta: Array, eps: float) -> tuple[Array, None]:
    """``x_hat * beta + gamma``."""
    return _fwd(x, gamma, beta, eps, affine="swapped")


def fwd_no_affine(x: Array, gamma: Array, beta: Array, eps: float) -> tuple[Array, None]:
    """Returns x̂, without γ and β."""
    return _fwd(x, gamma, beta, eps, affine="none")


# --------------------------------------------------------------------------- batchnorm_backward(_alt)


def bwd_constant_stats(dout: Array, c: reference.BatchNormCache) -> tuple[Array, Array, Array]:
    """μ and σ² treated as constants: dx = γ·dout/√(σ²+ε)."""
    return dout * c.gamma * c.inv_std, (dout * c.x_hat).sum(0), dout.sum(0)


def bwd_no_var_path(dout: Array, c: reference.BatchNormCache) -> tuple[Array, Array, Array]:
    """dx without the path through σ²."""
    dx = c.gamma * c.inv_std * (dout - dout.mean(0))
    return dx, (dout * c.x_hat).sum(0), dout.sum(0)


def bwd_no_mean_path(dout: Array, c: reference.BatchNormCache) -> tuple[Array, Array, Array]:
    """dx without the path through μ."""
    dx = c.gamma * c.inv_std * (dout - c.x_hat * (dout * c.x_hat).mean(0))
    return dx, (dout * c.x_hat).sum(0), dout.sum(0)


def bwd_no_gamma(dout: Array, c: reference.BatchNormCache) -> tuple[Array, Array, Array]:
    """dx without the factor γ."""
    dx, dgamma, dbeta = reference.batchnorm_backward_alt(dout, c)
    return dx / c.gamma, dgamma, dbeta


def bwd_swapped(dout: Array, c: reference.BatchNormCache) -> tuple[Array, Array, Array]:
    """dgamma and dbeta swapped."""
    dx, dgamma, dbeta = reference.batchnorm_backward_alt(dout, c)
    return dx, dbeta, dgamma


def bwd_mean_not_sum(dout: Array, c: reference.BatchNormCache) -> tuple[Array, Array, Array]:
    """dgamma and dbeta averaged over the batch instead of summed."""
    dx, dgamma, dbeta = reference.batchnorm_backward_alt(dout, c)
    m = dout.shape[0]
    return dx, dgamma / m, dbeta / m


def bwd_unbiased(dout: Array, c: reference.BatchNormCache) -> tuple[Array, Array, Array]:
    """The σ² node differentiated as if σ² = Σ(x−μ)²/(m−1) (forward still divides by m)."""
    m = dout.shape[0]
    dx_hat = dout * c.gamma
    dvar = -0.5 * c.inv_std**3 * (dx_hat * c.x_centered).sum(0)
    dxc = dx_hat * c.inv_std + 2.0 / (m - 1) * c.x_centered * dvar
    dx = dxc - dxc.mean(0)
    return dx, (dout * c.x_hat).sum(0), dout.sum(0)


# --------------------------------------------------------------------------- numerical_gradient


def grad_forward_difference(f: Callable[[Array], Array], x: Array, dout: Array, h: float = 1e-5) -> Array:
    """One-sided differences (f(x+h) − f(x))/h, error O(h)."""
    x = x.astype(np.float64).copy()
    base = np.sum(f(x) * dout)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        grad[i] = (np.sum(f(x) * dout) - base) / h
        x[i] = old
    return grad


def grad_no_dout(f: Callable[[Array], Array], x: Array, dout: Array, h: float = 1e-5) -> Array:
    """The gradient of Σ f(x), ignoring dout."""
    return gradcheck.numerical_gradient(lambda z: np.sum(f(z)), x, None, h)


def grad_h_not_2h(f: Callable[[Array], Array], x: Array, dout: Array, h: float = 1e-5) -> Array:
    """The centered difference divided by h instead of 2h."""
    return 2.0 * gradcheck.numerical_gradient(f, x, dout, h)
