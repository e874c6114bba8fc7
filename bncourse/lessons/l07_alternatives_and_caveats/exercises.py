"""Exercises of notebook 07 (alternatives and caveats).

``layernorm_forward``, ``layernorm_backward``, ``groupnorm_forward`` and
``batch_renorm_forward``.  Solutions are :mod:`bncourse.reference`'s; each
:class:`~bncourse.grading.registry.Mistake` below is a wrong implementation whose outputs,
when a student's match them, give the diagnosis.  NumPy only (no torch here).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from bncourse import reference as ref
from bncourse.grading.cases import (
    backward_call,
    backward_diagnose,
    forward_call,
    tolerance,
)
from bncourse.grading.registry import Case, ContractError, Exercise, Mistake, register

NOTEBOOK = "07_alternatives_and_caveats"
_EPS = 1e-5


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------- layernorm


def _ln_cases() -> list[Case]:
    cases = []
    for i, (N, D, dt, loc, scale) in enumerate([
        (4, 5, np.float64, 0.0, 1.0),
        (3, 7, np.float64, 5.0, 3.0),
        (2, 6, np.float32, 0.0, 1.0),
        (6, 3, np.float32, 100.0, 20.0),
        (5, 4, np.float64, 0.0, 1e-3),  # tiny variance: eps matters
        (1, 8, np.float64, 1.0, 2.0),  # N = 1 is fine for layer norm
    ]):
        r = _rng(700 + i)
        # features of different scale, so that per-feature (BN) and per-example (LN) differ
        x = (loc + scale * r.standard_normal((N, D)) * r.uniform(0.5, 2.0, size=D)).astype(dt)
        gamma = r.uniform(0.5, 1.5, size=D).astype(dt)
        beta = r.standard_normal(D).astype(dt)
        name = f"{np.dtype(dt).name} x{(N, D)}" + (" tiny var" if scale < 1e-2 else "") + (
            " large mean" if loc >= 100 else "")
        dout = r.standard_normal((N, D)).astype(dt)
        cases.append(Case(name, {"x": x, "gamma": gamma, "beta": beta, "dout": dout}, tolerance(dt)))
    return cases


def _ln_stats(x: np.ndarray, axis: int, ddof: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(axis=axis, keepdims=True), x.var(axis=axis, ddof=ddof, keepdims=True)


def _ln_over_batch(x, gamma, beta, eps=_EPS):
    mu, var = _ln_stats(x, 0)
    return gamma * (x - mu) / np.sqrt(var + eps) + beta, None


def _ln_unbiased(x, gamma, beta, eps=_EPS):
    mu, var = _ln_stats(x, 1, ddof=1)
    return gamma * (x - mu) / np.sqrt(var + eps) + beta, None


def _ln_no_eps(x, gamma, beta, eps=_EPS):
    mu, var = _ln_stats(x, 1)
    return gamma * (x - mu) / np.sqrt(var) + beta, None


def _ln_no_sqrt(x, gamma, beta, eps=_EPS):
    mu, var = _ln_stats(x, 1)
    return gamma * (x - mu) / (var + eps) + beta, None


def _ln_no_affine(x, gamma, beta, eps=_EPS):
    mu, var = _ln_stats(x, 1)
    return (x - mu) / np.sqrt(var + eps), None


register(Exercise(
    id="layernorm_forward",
    notebook=NOTEBOOK,
    solution=ref.layernorm_forward,
    cases=_ln_cases,
    call=forward_call("layernorm_forward", eps=_EPS),
    mistakes=(
        Mistake("over the batch", "You normalize over the batch axis (axis=0) -- that is batch norm; "
                "layer norm takes the mean and variance of each example over its features: axis=1.",
                _ln_over_batch),
        Mistake("unbiased", "Your variance is the unbiased one (divide by D-1); layer norm uses the biased "
                "variance: divide by D (np.var's default ddof=0).", _ln_unbiased),
        Mistake("no eps", "You forgot eps: divide by np.sqrt(var + eps), not np.sqrt(var).", _ln_no_eps),
        Mistake("no sqrt", "You divide by the variance; divide by the standard deviation "
                "np.sqrt(var + eps).", _ln_no_sqrt),
        Mistake("no affine", "You return x_hat without the learned scale and shift: "
                "out = gamma * x_hat + beta.", _ln_no_affine),
    ),
))


def _ln_bw_parts(dout: Any, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x_hat, inv_std (N, 1) and gamma from the reference cache."""
    return cache.norm.x_hat, cache.norm.inv_std, cache.gamma


def _ln_bw_const_stats(dout, cache):
    x_hat, inv_std, gamma = _ln_bw_parts(dout, cache)
    return dout * gamma * inv_std, np.sum(dout * x_hat, 0), dout.sum(0)


def _ln_bw_batch_axis(dout, cache):
    x_hat, inv_std, gamma = _ln_bw_parts(dout, cache)
    g = dout * gamma
    dx = inv_std * (g - g.mean(0, keepdims=True) - x_hat * (g * x_hat).mean(0, keepdims=True))
    return dx, np.sum(dout * x_hat, 0), dout.sum(0)


def _ln_bw_sum_over_features(dout, cache):
    x_hat, inv_std, gamma = _ln_bw_parts(dout, cache)
    g = dout * gamma
    dx = inv_std * (g - g.mean(1, keepdims=True) - x_hat * (g * x_hat).mean(1, keepdims=True))
    return dx, np.sum(dout * x_hat, 1), dout.sum(1)


def _ln_bw_no_gamma(dout, cache):
    x_hat, inv_std, _ = _ln_bw_parts(dout, cache)
    g = dout
    dx = inv_std * (g - g.mean(1, keepdims=True) - x_hat * (g * x_hat).mean(1, keepdims=True))
    return dx, np.sum(dout * x_hat, 0), dout.sum(0)


def _ln_bw_missing_mean_term(dout, cache):
    x_hat, inv_std, gamma = _ln_bw_parts(dout, cache)
    g = dout * gamma
    dx = inv_std * (g - x_hat * (g * x_hat).mean(1, keepdims=True))
    return dx, np.sum(dout * x_hat, 0), dout.sum(0)


def _ln_param_grads_diagnose(
    case: Case, got: Mapping[str, np.ndarray], exp: Mapping[str, np.ndarray]
) -> str | None:
    """dgamma/dbeta with one entry per example (summed over the features instead of the batch)."""
    for name in ("dgamma", "dbeta"):
        g, e = got.get(name), exp[name]
        if g is not None and g.shape == (case.inputs["x"].shape[0],) and g.shape != e.shape:
            return (f"{name} has one entry per example: sum over the batch axis 0 "
                    f"(gamma and beta have one entry per feature, shape {e.shape}).")
    return None


register(Exercise(
    id="layernorm_backward",
    notebook=NOTEBOOK,
    solution=ref.layernorm_backward,
    cases=_ln_cases,
    # run on the student's own layernorm_forward, which is blamed first when it is wrong
    call=backward_call("layernorm_forward", "layernorm_forward", eps=_EPS),
    namespace={"layernorm_forward": ref.layernorm_forward},
    diagnose=backward_diagnose("layernorm_forward", "layernorm_forward", _ln_param_grads_diagnose),
    mistakes=(
        Mistake("constant stats", "Your dx treats mu and sigma as constants (dx = gamma * dout / sigma); "
                "they depend on x: dx = inv_std * (g - mean(g) - x_hat * mean(g * x_hat)) with g = gamma * dout "
                "and the means over each example's features (axis=1).", _ln_bw_const_stats, ("dx",)),
        Mistake("batch axis", "Your dx takes the means over the batch axis (that is batch norm's backward); "
                "layer norm's statistics are per example, so the means in dx are over axis=1.",
                _ln_bw_batch_axis, ("dx",)),
        Mistake("no gamma in dx", "Your dx forgets gamma: the gradient reaching x_hat is g = gamma * dout.",
                _ln_bw_no_gamma, ("dx",)),
        Mistake("missing mean term", "Your dx misses the gradient through the mean: subtract mean(g) "
                "over the features as well as x_hat * mean(g * x_hat).", _ln_bw_missing_mean_term, ("dx",)),
    ),
))


# ---------------------------------------------------------------------------- groupnorm


def _gn_cases() -> list[Case]:
    cases = []
    for i, (shape, G, dt, loc, scale) in enumerate([
        ((2, 6, 3, 3), 2, np.float64, 0.0, 1.0),
        ((3, 8, 2, 4), 4, np.float64, 3.0, 2.0),
        ((2, 6, 4, 3), 3, np.float32, 0.0, 1.0),
        ((4, 4, 3, 3), 2, np.float32, 50.0, 10.0),
        ((2, 6, 2, 2), 2, np.float64, 0.0, 1e-3),  # tiny variance: eps matters
        ((3, 4, 5, 5), 1, np.float64, 0.0, 1.0),  # G = 1: layer norm
        ((2, 3, 4, 4), 3, np.float64, 1.0, 1.0),  # G = C: instance norm
    ]):
        r = _rng(770 + i)
        C = shape[1]
        # channels with different offsets/scales so that the grouping matters
        x = loc + scale * (r.standard_normal(shape) * r.uniform(0.5, 2.0, size=(1, C, 1, 1))
                           + r.uniform(-2.0, 2.0, size=(1, C, 1, 1)))
        x = x.astype(dt)
        gamma = r.uniform(0.5, 1.5, size=C).astype(dt)
        beta = r.standard_normal(C).astype(dt)
        name = f"{np.dtype(dt).name} x{shape} G={G}" + (" tiny var" if scale < 1e-2 else "")
        cases.append(Case(name, {"x": x, "gamma": gamma, "beta": beta, "num_groups": G}, tolerance(dt)))
    return cases


def _gn_affine(x_hat: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    return gamma.reshape(1, -1, 1, 1) * x_hat + beta.reshape(1, -1, 1, 1)


def _gn_generic(x, gamma, beta, G, grouped_shape, axes, ddof=0, eps=_EPS, order=None):
    xg = x.reshape(grouped_shape)
    mu = xg.mean(axis=axes, keepdims=True)
    var = xg.var(axis=axes, ddof=ddof, keepdims=True)
    x_hat = ((xg - mu) / np.sqrt(var + eps)).reshape(x.shape)
    return _gn_affine(x_hat, gamma, beta), None


def _gn_strided(x, gamma, beta, num_groups, eps=_EPS):
    N, C, H, W = x.shape
    G = num_groups
    return _gn_generic(x, gamma, beta, G, (N, C // G, G, H, W), (1, 3, 4))


def _gn_group_size(x, gamma, beta, num_groups, eps=_EPS):
    N, C, H, W = x.shape
    G = num_groups
    return _gn_generic(x, gamma, beta, G, (N, C // G, G, H, W), (2, 3, 4))


def _gn_channels_only(x, gamma, beta, num_groups, eps=_EPS):
    N, C, H, W = x.shape
    G = num_groups
    return _gn_generic(x, gamma, beta, G, (N, G, C // G, H, W), (2,))


def _gn_instance(x, gamma, beta, num_groups, eps=_EPS):
    N, C, H, W = x.shape
    return _gn_generic(x, gamma, beta, C, (N, C, 1, H, W), (2, 3, 4))


def _gn_layer(x, gamma, beta, num_groups, eps=_EPS):
    N, C, H, W = x.shape
    return _gn_generic(x, gamma, beta, 1, (N, 1, C, H, W), (2, 3, 4))


def _gn_batch(x, gamma, beta, num_groups, eps=_EPS):
    N, C, H, W = x.shape
    G = num_groups
    return _gn_generic(x, gamma, beta, G, (N, G, C // G, H, W), (0, 2, 3, 4))


def _gn_unbiased(x, gamma, beta, num_groups, eps=_EPS):
    N, C, H, W = x.shape
    G = num_groups
    return _gn_generic(x, gamma, beta, G, (N, G, C // G, H, W), (2, 3, 4), ddof=1)


def _gn_no_eps(x, gamma, beta, num_groups, eps=_EPS):
    N, C, H, W = x.shape
    G = num_groups
    return _gn_generic(x, gamma, beta, G, (N, G, C // G, H, W), (2, 3, 4), eps=0.0)


register(Exercise(
    id="groupnorm_forward",
    notebook=NOTEBOOK,
    solution=ref.groupnorm_forward,
    cases=_gn_cases,
    call=forward_call("groupnorm_forward", "num_groups", eps=_EPS),
    mistakes=(
        Mistake("group size", "You used num_groups as the number of channels per group: reshape to "
                "(N, G, C // G, H, W) so there are G groups of C // G channels each.", _gn_group_size),
        Mistake("strided groups", "Your groups are made of non-adjacent channels (reshape (N, C // G, G, H, W) "
                "and reduce over axis 1): reshape to (N, G, C // G, H, W) so each group is C // G "
                "consecutive channels, and reduce over axes (2, 3, 4).", _gn_strided),
        Mistake("channels only", "You normalize over the group's channels only; the statistics are over "
                "the group's channels and all positions: axes (2, 3, 4) of (N, G, C // G, H, W).",
                _gn_channels_only),
        Mistake("instance norm", "You normalize each channel on its own (instance norm, G = C); "
                "put C // G channels in each group: reshape to (N, G, C // G, H, W).", _gn_instance),
        Mistake("layer norm", "You normalize over all channels at once (layer norm, G = 1) and ignore "
                "num_groups; reshape to (N, G, C // G, H, W) and reduce over (2, 3, 4).", _gn_layer),
        Mistake("over the batch", "Your statistics include the batch axis; group norm is per example: "
                "reduce over axes (2, 3, 4) of (N, G, C // G, H, W), not axis 0.", _gn_batch),
        Mistake("unbiased", "Your variance is the unbiased one (ddof=1); normalize with the biased "
                "variance (divide by the number of values in the group).", _gn_unbiased),
        Mistake("no eps", "You forgot eps: divide by np.sqrt(var + eps).", _gn_no_eps),
    ),
))


# ------------------------------------------------------------------------- batch renorm


def _brn_cases() -> list[Case]:
    cases = []
    for i, (N, D, dt, r_max, d_max, mom) in enumerate([
        (4, 6, np.float64, 1.5, 0.5, 0.1),
        (3, 5, np.float64, 3.0, 5.0, 0.01),
        (5, 4, np.float32, 1.5, 0.5, 0.1),
        (2, 6, np.float64, 2.0, 1.0, 0.1),
        (6, 3, np.float64, 1.0, 0.0, 0.1),  # r_max = 1, d_max = 0: plain batch norm
        (4, 5, np.float64, 100.0, 100.0, 0.1),  # limits never reached: x_hat uses running stats
    ]):
        r = _rng(790 + i)
        loc, scale = r.uniform(-2, 2, size=D), r.uniform(0.3, 3.0, size=D)
        x = (loc + scale * r.standard_normal((N, D))).astype(dt)
        gamma = r.uniform(0.5, 1.5, size=D).astype(dt)
        beta = r.standard_normal(D).astype(dt)
        # running stats partly close to, partly far from the batch's: some r, d clip, some not
        running_mean = (loc + r.uniform(-1.5, 1.5, size=D) * scale).astype(dt)
        running_var = (scale**2 * r.uniform(0.1, 4.0, size=D)).astype(dt)
        name = f"{np.dtype(dt).name} x{(N, D)} r_max={r_max:g} d_max={d_max:g}"
        cases.append(Case(name, {"x": x, "gamma": gamma, "beta": beta, "running_mean": running_mean,
                                 "running_var": running_var, "r_max": r_max, "d_max": d_max,
                                 "momentum": mom},
                          tolerance(dt)))
    return cases


_BRN_OUTPUTS = ("out", "r", "d", "running_mean", "running_var")


def _brn_call(fn: Callable[..., Any], inputs: Mapping[str, Any], ns: Mapping[str, Any]) -> dict[str, Any]:
    res = fn(inputs["x"], inputs["gamma"], inputs["beta"], inputs["running_mean"], inputs["running_var"],
             inputs["r_max"], inputs["d_max"], _EPS, inputs["momentum"])
    if not isinstance(res, tuple) or len(res) < 5:
        raise ContractError("batch_renorm_forward must return a tuple "
                            "(out, r, d, new_running_mean, new_running_var)")
    return dict(zip(_BRN_OUTPUTS, res[:5], strict=True))


def _brn_generic(x, gamma, beta, running_mean, running_var, r_max, d_max, eps=_EPS, momentum=0.1,
                 clip=True, sigma_b_from_running=False, invert_r=False, flip_d=False, after_update=False,
                 biased_running=False, unbiased_batch=False):
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


def _mk_brn(**kw: bool) -> Callable[..., Any]:
    def impl(x, gamma, beta, running_mean, running_var, r_max, d_max, eps=_EPS, momentum=0.1):
        return _brn_generic(x, gamma, beta, running_mean, running_var, r_max, d_max, eps, momentum, **kw)
    return impl


register(Exercise(
    id="batch_renorm_forward",
    notebook=NOTEBOOK,
    solution=ref.batch_renorm_forward,
    cases=_brn_cases,
    call=_brn_call,
    mistakes=(
        Mistake("no clip", "You forgot to clip: r = np.clip(sigma_B / sigma_run, 1 / r_max, r_max) and "
                "d = np.clip((mu_B - running_mean) / sigma_run, -d_max, d_max).", _mk_brn(clip=False),
                ("out", "r", "d")),
        Mistake("inverted r", "Your r is upside down: r = sigma_B / sigma_run (batch over running), "
                "so that (x - mu_B) / sigma_B * r = (x - mu_B) / sigma_run.", _mk_brn(invert_r=True),
                ("out", "r")),
        Mistake("flipped d", "Your d has the wrong sign: d = (mu_B - running_mean) / sigma_run.",
                _mk_brn(flip_d=True), ("out", "d")),
        Mistake("sigma_B from running", "You divide by the running standard deviation where the batch's is "
                "needed: x_hat = (x - mu_B) / sigma_B * r + d with sigma_B = np.sqrt(var_B + eps) of this batch.",
                _mk_brn(sigma_b_from_running=True), ("out", "r")),
        Mistake("after update", "You computed r and d from the running statistics after updating them with "
                "this batch; use the running statistics from before the update.", _mk_brn(after_update=True),
                ("r", "d")),
        Mistake("biased running var", "running_var must be updated with the unbiased batch variance "
                "(var_B * N / (N - 1)), as PyTorch does; the normalization itself uses the biased one.",
                _mk_brn(biased_running=True), ("running_var",)),
        Mistake("unbiased batch var", "Normalize with the biased batch variance (divide by N); only the "
                "running_var update uses the unbiased one.", _mk_brn(unbiased_batch=True), ("out", "r")),
    ),
))
