"""The wrong implementations behind notebook 07's ``Mistake`` s, and their helpers.

Each public function here is one plausible slip in an exercise of notebook 07, with the
same signature as the function the student writes: when a student's outputs match its
outputs, :mod:`bncourse.lessons.l07_alternatives_and_caveats.exercises` shows that
``Mistake``'s diagnosis.  The diagnoses themselves (and the order in which the mistakes
are tried) are declared there; this module holds only the code.

* ``ln_*`` — ``layernorm_forward``;
* ``ln_bw_*`` — ``layernorm_backward``; they receive the reference cache
  (``cache.norm.x_hat``, ``cache.norm.inv_std`` of shape ``(N, 1)``, ``cache.gamma``),
  which is what the exercise's namespace provides;
* ``gn_*`` — ``groupnorm_forward``;
* ``gnb_*`` — ``groupnorm_backward``; they receive the reference cache (``cache.x_hat`` of
  shape ``(N, C, H, W)``, ``cache.gamma``, ``cache.norm.inv_std`` of shape ``(N, G, 1, 1, 1)``);
* ``brn_*`` — ``batch_renorm_forward``.

NumPy only (no torch, no matplotlib).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bncourse.conventions import EPS
from bncourse.validation import Array

__all__ = [
    "brn_after_update",
    "brn_biased_running_var",
    "brn_flipped_d",
    "brn_inverted_r",
    "brn_no_clip",
    "brn_sigma_b_from_running",
    "brn_unbiased_batch_var",
    "gn_batch",
    "gn_channels_only",
    "gn_group_size",
    "gn_instance",
    "gn_layer",
    "gn_no_eps",
    "gn_strided",
    "gn_unbiased",
    "gnb_batch_axis",
    "gnb_const_stats",
    "gnb_gamma_per_group",
    "gnb_missing_mean_term",
    "gnb_no_gamma",
    "gnb_per_channel",
    "ln_bw_batch_axis",
    "ln_bw_const_stats",
    "ln_bw_missing_mean_term",
    "ln_bw_no_gamma",
    "ln_no_affine",
    "ln_no_eps",
    "ln_no_sqrt",
    "ln_over_batch",
    "ln_unbiased",
]

Grads = tuple[Array, Array, Array]
Renorm = tuple[Array, Array, Array, Array, Array]
"""``(out, r, d, new_running_mean, new_running_var)``, what ``batch_renorm_forward`` returns."""


# ---------------------------------------------------------------------------- layernorm_forward


def _ln_stats(x: Array, axis: int, ddof: int = 0) -> tuple[Array, Array]:
    return x.mean(axis=axis, keepdims=True), x.var(axis=axis, ddof=ddof, keepdims=True)


def ln_over_batch(x: Array, gamma: Array, beta: Array, eps: float = EPS) -> tuple[Array, None]:
    """Statistics over the batch axis (that is batch norm)."""
    mu, var = _ln_stats(x, 0)
    return gamma * (x - mu) / np.sqrt(var + eps) + beta, None


def ln_unbiased(x: Array, gamma: Array, beta: Array, eps: float = EPS) -> tuple[Array, None]:
    """The variance divides by D − 1."""
    mu, var = _ln_stats(x, 1, ddof=1)
    return gamma * (x - mu) / np.sqrt(var + eps) + beta, None


def ln_no_eps(x: Array, gamma: Array, beta: Array, eps: float = EPS) -> tuple[Array, None]:
    """Divides by √σ², without ε."""
    mu, var = _ln_stats(x, 1)
    return gamma * (x - mu) / np.sqrt(var) + beta, None


def ln_no_sqrt(x: Array, gamma: Array, beta: Array, eps: float = EPS) -> tuple[Array, None]:
    """Divides by σ² + ε instead of its square root."""
    mu, var = _ln_stats(x, 1)
    return gamma * (x - mu) / (var + eps) + beta, None


def ln_no_affine(x: Array, gamma: Array, beta: Array, eps: float = EPS) -> tuple[Array, None]:
    """Returns x̂, without γ and β."""
    mu, var = _ln_stats(x, 1)
    return (x - mu) / np.sqrt(var + eps), None


# ---------------------------------------------------------------------------- layernorm_backward


def _ln_bw_parts(dout: Any, cache: Any) -> tuple[Array, Array, Array]:
    """x_hat, inv_std (N, 1) and gamma from the reference cache."""
    return cache.norm.x_hat, cache.norm.inv_std, cache.gamma


def ln_bw_const_stats(dout: Array, cache: Any) -> Grads:
    """μ and σ treated as constants: dx = γ·dout/σ."""
    x_hat, inv_std, gamma = _ln_bw_parts(dout, cache)
    return dout * gamma * inv_std, np.sum(dout * x_hat, 0), dout.sum(0)


def ln_bw_batch_axis(dout: Array, cache: Any) -> Grads:
    """The means in dx taken over the batch axis (batch norm's backward)."""
    x_hat, inv_std, gamma = _ln_bw_parts(dout, cache)
    g = dout * gamma
    dx = inv_std * (g - g.mean(0, keepdims=True) - x_hat * (g * x_hat).mean(0, keepdims=True))
    return dx, np.sum(dout * x_hat, 0), dout.sum(0)


def ln_bw_no_gamma(dout: Array, cache: Any) -> Grads:
    """dx without the factor γ."""
    x_hat, inv_std, _ = _ln_bw_parts(dout, cache)
    g = dout
    dx = inv_std * (g - g.mean(1, keepdims=True) - x_hat * (g * x_hat).mean(1, keepdims=True))
    return dx, np.sum(dout * x_hat, 0), dout.sum(0)


def ln_bw_missing_mean_term(dout: Array, cache: Any) -> Grads:
    """dx without the path through the mean."""
    x_hat, inv_std, gamma = _ln_bw_parts(dout, cache)
    g = dout * gamma
    dx = inv_std * (g - x_hat * (g * x_hat).mean(1, keepdims=True))
    return dx, np.sum(dout * x_hat, 0), dout.sum(0)


# ---------------------------------------------------------------------------- groupnorm_forward


def _gn_affine(x_hat: Array, gamma: Array, beta: Array) -> Array:
    return gamma.reshape(1, -1, 1, 1) * x_hat + beta.reshape(1, -1, 1, 1)


def _gn_generic(x: Array, gamma: Array, beta: Array, G: int, grouped_shape: tuple[int, ...],
                axes: tuple[int, ...], ddof: int = 0, eps: float = EPS) -> tuple[Array, None]:
    """x reshaped to ``grouped_shape``, normalized over ``axes``, reshaped back, per-channel affine."""
    xg = x.reshape(grouped_shape)
    mu = xg.mean(axis=axes, keepdims=True)
    var = xg.var(axis=axes, ddof=ddof, keepdims=True)
    x_hat = ((xg - mu) / np.sqrt(var + eps)).reshape(x.shape)
    return _gn_affine(x_hat, gamma, beta), None


def gn_strided(x: Array, gamma: Array, beta: Array, num_groups: int, eps: float = EPS) -> tuple[Array, None]:
    """Groups of non-adjacent channels: ``(N, C // G, G, H, W)`` reduced over axes (1, 3, 4)."""
    N, C, H, W = x.shape
    G = num_groups
    return _gn_generic(x, gamma, beta, G, (N, C // G, G, H, W), (1, 3, 4))


def gn_group_size(x: Array, gamma: Array, beta: Array, num_groups: int, eps: float = EPS) -> tuple[Array, None]:
    """num_groups taken as the number of channels per group."""
    N, C, H, W = x.shape
    G = num_groups
    return _gn_generic(x, gamma, beta, G, (N, C // G, G, H, W), (2, 3, 4))


def gn_channels_only(x: Array, gamma: Array, beta: Array, num_groups: int, eps: float = EPS) -> tuple[Array, None]:
    """Statistics over the group's channels only, not over the positions."""
    N, C, H, W = x.shape
    G = num_groups
    return _gn_generic(x, gamma, beta, G, (N, G, C // G, H, W), (2,))


def gn_instance(x: Array, gamma: Array, beta: Array, num_groups: int, eps: float = EPS) -> tuple[Array, None]:
    """Each channel on its own (instance norm, G = C)."""
    N, C, H, W = x.shape
    return _gn_generic(x, gamma, beta, C, (N, C, 1, H, W), (2, 3, 4))


def gn_layer(x: Array, gamma: Array, beta: Array, num_groups: int, eps: float = EPS) -> tuple[Array, None]:
    """All channels at once (layer norm, G = 1)."""
    N, C, H, W = x.shape
    return _gn_generic(x, gamma, beta, 1, (N, 1, C, H, W), (2, 3, 4))


def gn_batch(x: Array, gamma: Array, beta: Array, num_groups: int, eps: float = EPS) -> tuple[Array, None]:
    """Statistics that include the batch axis."""
    N, C, H, W = x.shape
    G = num_groups
    return _gn_generic(x, gamma, beta, G, (N, G, C // G, H, W), (0, 2, 3, 4))


def gn_unbiased(x: Array, gamma: Array, beta: Array, num_groups: int, eps: float = EPS) -> tuple[Array, None]:
    """The variance divides by the group's size − 1."""
    N, C, H, W = x.shape
    G = num_groups
    return _gn_generic(x, gamma, beta, G, (N, G, C // G, H, W), (2, 3, 4), ddof=1)


def gn_no_eps(x: Array, gamma: Array, beta: Array, num_groups: int, eps: float = EPS) -> tuple[Array, None]:
    """Divides by √σ², without ε."""
    N, C, H, W = x.shape
    G = num_groups
    return _gn_generic(x, gamma, beta, G, (N, G, C // G, H, W), (2, 3, 4), eps=0.0)


# ---------------------------------------------------------------------------- groupnorm_backward


def _gnb_parts(dout: Array, cache: Any) -> tuple[Array, Array, Array, int]:
    """x_hat (N, C, H, W), inv_std broadcast per channel (N, C, 1, 1), gamma, G from the reference cache."""
    x_hat, gamma, inv_std = cache.x_hat, cache.gamma, cache.norm.inv_std
    N, C = x_hat.shape[:2]
    G = inv_std.shape[1]
    inv_std_c = np.repeat(inv_std.reshape(N, G, 1, 1), C // G, axis=1)
    return x_hat, inv_std_c, gamma, G


def _gnb_params(dout: Array, x_hat: Array) -> tuple[Array, Array]:
    return np.sum(dout * x_hat, axis=(0, 2, 3)), dout.sum(axis=(0, 2, 3))


def _gnb_dx(g: Array, x_hat: Array, inv_std_c: Array, grouped: tuple[int, ...], axes: tuple[int, ...],
            mean_term: bool = True) -> Array:
    """``inv_std * (g - mean(g) - x_hat * mean(g * x_hat))`` with the means over ``axes`` of ``grouped``."""
    gg, xh = g.reshape(grouped), x_hat.reshape(grouped)
    g_mean = gg.mean(axis=axes, keepdims=True) if mean_term else 0.0
    core = gg - g_mean - xh * (gg * xh).mean(axis=axes, keepdims=True)
    return inv_std_c * core.reshape(g.shape)


def gnb_const_stats(dout: Array, cache: Any) -> Grads:
    """μ and σ of each group treated as constants: dx = γ·dout/σ."""
    x_hat, inv_std_c, gamma, _ = _gnb_parts(dout, cache)
    return (gamma.reshape(1, -1, 1, 1) * dout * inv_std_c, *_gnb_params(dout, x_hat))


def gnb_missing_mean_term(dout: Array, cache: Any) -> Grads:
    """dx without the path through the group's mean."""
    x_hat, inv_std_c, gamma, G = _gnb_parts(dout, cache)
    N, C, H, W = dout.shape
    g = gamma.reshape(1, C, 1, 1) * dout
    dx = _gnb_dx(g, x_hat, inv_std_c, (N, G, C // G, H, W), (2, 3, 4), mean_term=False)
    return (dx, *_gnb_params(dout, x_hat))


def gnb_per_channel(dout: Array, cache: Any) -> Grads:
    """The means in dx over each channel's positions (instance norm's backward)."""
    x_hat, inv_std_c, gamma, _ = _gnb_parts(dout, cache)
    N, C, H, W = dout.shape
    g = gamma.reshape(1, C, 1, 1) * dout
    return (_gnb_dx(g, x_hat, inv_std_c, (N, C, H, W), (2, 3)), *_gnb_params(dout, x_hat))


def gnb_batch_axis(dout: Array, cache: Any) -> Grads:
    """The means in dx over the batch and the positions, per channel (batch norm's backward)."""
    x_hat, inv_std_c, gamma, _ = _gnb_parts(dout, cache)
    N, C, H, W = dout.shape
    g = gamma.reshape(1, C, 1, 1) * dout
    return (_gnb_dx(g, x_hat, inv_std_c, (N, C, H, W), (0, 2, 3)), *_gnb_params(dout, x_hat))


def gnb_no_gamma(dout: Array, cache: Any) -> Grads:
    """dx without the factor γ."""
    x_hat, inv_std_c, _, G = _gnb_parts(dout, cache)
    N, C, H, W = dout.shape
    return (_gnb_dx(dout, x_hat, inv_std_c, (N, G, C // G, H, W), (2, 3, 4)), *_gnb_params(dout, x_hat))


def gnb_gamma_per_group(dout: Array, cache: Any) -> Grads:
    """dgamma and dbeta summed over each group's channels too: one entry per group."""
    x_hat, inv_std_c, gamma, G = _gnb_parts(dout, cache)
    N, C, H, W = dout.shape
    g = gamma.reshape(1, C, 1, 1) * dout
    dx = _gnb_dx(g, x_hat, inv_std_c, (N, G, C // G, H, W), (2, 3, 4))
    grouped = (N, G, C // G, H, W)
    dgamma = np.sum((dout * x_hat).reshape(grouped), axis=(0, 2, 3, 4))
    dbeta = np.sum(dout.reshape(grouped), axis=(0, 2, 3, 4))
    return dx, dgamma, dbeta


# ---------------------------------------------------------------------------- batch_renorm_forward


def _brn_generic(x: Array, gamma: Array, beta: Array, running_mean: Array, running_var: Array,
                 r_max: float, d_max: float, eps: float = EPS, momentum: float = 0.1, *,
                 clip: bool = True, sigma_b_from_running: bool = False, invert_r: bool = False,
                 flip_d: bool = False, after_update: bool = False, biased_running: bool = False,
                 unbiased_batch: bool = False) -> Renorm:
    """Batch renormalization with one slip switched on by a keyword (the defaults are right)."""
    mu = x.mean(0)
    var = x.var(0, ddof=1 if unbiased_batch else 0)
    new_mean = (1 - momentum) * running_mean + momentum * mu
    new_var = (1 - momentum) * running_var + momentum * (x.var(0) if biased_running else x.var(0, ddof=1))
    rm, rv = (new_mean, new_var) if after_update else (running_mean, running_var)
    sigma_run = np.sqrt(rv + eps)
    sigma_b = sigma_run if sigma_b_from_running else np.sqrt(var + eps)
    r = sigma_run / sigma_b if invert_r else sigma_b / sigma_run
    d = (rm - mu) / sigma_run if flip_d else (mu - rm) / sigma_run
    if clip:
        r, d = np.clip(r, 1 / r_max, r_max), np.clip(d, -d_max, d_max)
    x_hat = (x - mu) / sigma_b * r + d
    return gamma * x_hat + beta, r, d, new_mean, new_var


def brn_no_clip(x: Array, gamma: Array, beta: Array, running_mean: Array, running_var: Array,
                r_max: float, d_max: float, eps: float = EPS, momentum: float = 0.1) -> Renorm:
    """r and d not clipped."""
    return _brn_generic(x, gamma, beta, running_mean, running_var, r_max, d_max, eps, momentum, clip=False)


def brn_inverted_r(x: Array, gamma: Array, beta: Array, running_mean: Array, running_var: Array,
                   r_max: float, d_max: float, eps: float = EPS, momentum: float = 0.1) -> Renorm:
    """r = σ_run/σ_B (upside down)."""
    return _brn_generic(x, gamma, beta, running_mean, running_var, r_max, d_max, eps, momentum, invert_r=True)


def brn_flipped_d(x: Array, gamma: Array, beta: Array, running_mean: Array, running_var: Array,
                  r_max: float, d_max: float, eps: float = EPS, momentum: float = 0.1) -> Renorm:
    """d = (running_mean − μ_B)/σ_run (wrong sign)."""
    return _brn_generic(x, gamma, beta, running_mean, running_var, r_max, d_max, eps, momentum, flip_d=True)


def brn_sigma_b_from_running(x: Array, gamma: Array, beta: Array, running_mean: Array, running_var: Array,
                             r_max: float, d_max: float, eps: float = EPS, momentum: float = 0.1) -> Renorm:
    """Divides by the running standard deviation where the batch's is needed."""
    return _brn_generic(x, gamma, beta, running_mean, running_var, r_max, d_max, eps, momentum,
                        sigma_b_from_running=True)


def brn_after_update(x: Array, gamma: Array, beta: Array, running_mean: Array, running_var: Array,
                     r_max: float, d_max: float, eps: float = EPS, momentum: float = 0.1) -> Renorm:
    """r and d from the running statistics after this batch's update."""
    return _brn_generic(x, gamma, beta, running_mean, running_var, r_max, d_max, eps, momentum,
                        after_update=True)


def brn_biased_running_var(x: Array, gamma: Array, beta: Array, running_mean: Array, running_var: Array,
                           r_max: float, d_max: float, eps: float = EPS, momentum: float = 0.1) -> Renorm:
    """running_var updated with the biased batch variance."""
    return _brn_generic(x, gamma, beta, running_mean, running_var, r_max, d_max, eps, momentum,
                        biased_running=True)


def brn_unbiased_batch_var(x: Array, gamma: Array, beta: Array, running_mean: Array, running_var: Array,
                           r_max: float, d_max: float, eps: float = EPS, momentum: float = 0.1) -> Renorm:
    """Normalizes with the unbiased batch variance."""
    return _brn_generic(x, gamma, beta, running_mean, running_var, r_max, d_max, eps, momentum,
                        unbiased_batch=True)
