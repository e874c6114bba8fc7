"""Exercises of notebook 07 (alternatives and caveats).

Declarations only: the seeded cases, how each exercise is called, the diagnose hook and
the ``Mistake`` s with their diagnoses.  The instructor's implementations are in
:mod:`.solutions` (re-exported from :mod:`bncourse.reference`), the wrong implementations
the ``Mistake`` s run are in :mod:`.mistakes`.

========================  ========================  ===========================================
id                        the student writes        checked against
========================  ========================  ===========================================
``layernorm_forward``     ``layernorm_forward``     :func:`.solutions.layernorm_forward`
``layernorm_backward``    ``layernorm_backward``    :func:`.solutions.layernorm_backward`
``groupnorm_forward``     ``groupnorm_forward``     :func:`.solutions.groupnorm_forward`
``groupnorm_backward``    ``groupnorm_backward``    :func:`.solutions.groupnorm_backward`
``batch_renorm_forward``  ``batch_renorm_forward``  :func:`.solutions.batch_renorm_forward`
========================  ========================  ===========================================

``layernorm_backward`` and ``groupnorm_backward`` run on the student's own forward (looked
up by name), which is blamed first when it is wrong, as in notebooks 03 and 06.  NumPy only (no
torch here).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from bncourse.grading.cases import (
    backward_call,
    backward_diagnose,
    backward_on_own_forward,
    forward_call,
    tolerance,
)
from bncourse.grading.registry import (
    NUMPY_FORBIDDEN,
    Case,
    ContractError,
    Exercise,
    LessonPart,
    Mistake,
    register,
)

mistakes = LessonPart(__name__, "mistakes")
solutions = LessonPart(__name__, "solutions")

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


register(Exercise(
    id="layernorm_forward",
    notebook=NOTEBOOK,
    solution=solutions.layernorm_forward,
    forbidden=NUMPY_FORBIDDEN,
    hints=(
        "Layer norm is batch norm turned sideways: each example (row) is normalized with its own "
        "statistics, computed over its D features, so the batch size never matters.",
        "Reduce over axis 1 and keep that axis (keepdims=True), so the (N, 1) mean and variance "
        "broadcast against the (N, D) input; the variance is the biased one, as in batch norm.",
        "mu = x.mean(axis=1, keepdims=True); var = ((x - mu) ** 2).mean(axis=1, keepdims=True); "
        "x_hat = (x - mu) / np.sqrt(var + eps); out = gamma * x_hat + beta; cache what your backward needs.",
    ),
    cases=_ln_cases,
    call=forward_call("layernorm_forward", eps=_EPS),
    mistakes=(
        Mistake("over the batch", "You normalize over the batch axis (axis=0) -- that is batch norm; "
                "layer norm takes the mean and variance of each example over its features: axis=1.",
                mistakes.ln_over_batch),
        Mistake("unbiased", "Your variance is the unbiased one (divide by D-1); layer norm uses the biased "
                "variance: divide by D (np.var's default ddof=0).", mistakes.ln_unbiased),
        Mistake("no eps", "You forgot eps: divide by np.sqrt(var + eps), not np.sqrt(var).", mistakes.ln_no_eps),
        Mistake("no sqrt", "You divide by the variance; divide by the standard deviation "
                "np.sqrt(var + eps).", mistakes.ln_no_sqrt),
        Mistake("no affine", "You return x_hat without the learned scale and shift: "
                "out = gamma * x_hat + beta.", mistakes.ln_no_affine),
    ),
))


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
    solution=solutions.layernorm_backward,
    forbidden=NUMPY_FORBIDDEN,
    cases=_ln_cases,
    # run on the student's own layernorm_forward, which is blamed first when it is wrong
    call=backward_call("layernorm_forward", "layernorm_forward", eps=_EPS),
    namespace={"layernorm_forward": solutions.layernorm_forward},
    diagnose=backward_diagnose("layernorm_forward", "layernorm_forward", _ln_param_grads_diagnose),
    mistakes=(
        Mistake("constant stats", "Your dx treats mu and sigma as constants (dx = gamma * dout / sigma); "
                "they depend on x: dx = inv_std * (g - mean(g) - x_hat * mean(g * x_hat)) with g = gamma * dout "
                "and the means over each example's features (axis=1).", mistakes.ln_bw_const_stats, ("dx",)),
        Mistake("batch axis", "Your dx takes the means over the batch axis (that is batch norm's backward); "
                "layer norm's statistics are per example, so the means in dx are over axis=1.",
                mistakes.ln_bw_batch_axis, ("dx",)),
        Mistake("no gamma in dx", "Your dx forgets gamma: the gradient reaching x_hat is g = gamma * dout.",
                mistakes.ln_bw_no_gamma, ("dx",)),
        Mistake("missing mean term", "Your dx misses the gradient through the mean: subtract mean(g) "
                "over the features as well as x_hat * mean(g * x_hat).", mistakes.ln_bw_missing_mean_term, ("dx",)),
    ),
    hints=(
        "Split it in two. gamma and beta are shared by all examples, like batch norm's, so their "
        "gradients collect every example: sums over axis 0. dx must go through mu_n and sigma_n, "
        "which are functions of example n's own features.",
        "Batch norm's backward holds with the roles of the axes swapped: it is the same function "
        "x -> x_hat, applied to each row instead of each column. With g = gamma * dout (the gradient "
        "reaching x_hat), dx_n depends on g_n, on the mean of g_n over the features, and on the mean of "
        "g_n * x_hat_n over the features.",
        "dbeta = dout.sum(axis=0); dgamma = (dout * x_hat).sum(axis=0); with inv_std = 1 / sqrt(var + eps) "
        "of each example, dx = inv_std * (g - mean(g) - x_hat * mean(g * x_hat)), the means over axis=1 "
        "with keepdims=True.",
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


register(Exercise(
    id="groupnorm_forward",
    notebook=NOTEBOOK,
    solution=solutions.groupnorm_forward,
    forbidden=NUMPY_FORBIDDEN,
    cases=_gn_cases,
    call=forward_call("groupnorm_forward", "num_groups", eps=_EPS),
    mistakes=(
        Mistake("group size", "You used num_groups as the number of channels per group: reshape to "
                "(N, G, C // G, H, W) so there are G groups of C // G channels each.", mistakes.gn_group_size),
        Mistake("strided groups", "Your groups are made of non-adjacent channels (reshape (N, C // G, G, H, W) "
                "and reduce over axis 1): reshape to (N, G, C // G, H, W) so each group is C // G "
                "consecutive channels, and reduce over axes (2, 3, 4).", mistakes.gn_strided),
        Mistake("channels only", "You normalize over the group's channels only; the statistics are over "
                "the group's channels and all positions: axes (2, 3, 4) of (N, G, C // G, H, W).",
                mistakes.gn_channels_only),
        Mistake("instance norm", "You normalize each channel on its own (instance norm, G = C); "
                "put C // G channels in each group: reshape to (N, G, C // G, H, W).", mistakes.gn_instance),
        Mistake("layer norm", "You normalize over all channels at once (layer norm, G = 1) and ignore "
                "num_groups; reshape to (N, G, C // G, H, W) and reduce over (2, 3, 4).", mistakes.gn_layer),
        Mistake("over the batch", "Your statistics include the batch axis; group norm is per example: "
                "reduce over axes (2, 3, 4) of (N, G, C // G, H, W), not axis 0.", mistakes.gn_batch),
        Mistake("unbiased", "Your variance is the unbiased one (ddof=1); normalize with the biased "
                "variance (divide by the number of values in the group).", mistakes.gn_unbiased),
        Mistake("no eps", "You forgot eps: divide by np.sqrt(var + eps).", mistakes.gn_no_eps),
    ),
    hints=(
        "Each example is treated on its own, and within it the channels come in G blocks of C // G "
        "consecutive channels. One mean and one variance per (example, block), over every value of the "
        "block: its channels and all positions.",
        "A reshape makes the blocks an axis of their own: x.reshape(N, G, C // G, H, W) keeps each group's "
        "channels together. Normalize that view over its last three axes (keepdims=True), reshape back to "
        "(N, C, H, W), and only then apply gamma and beta, which are per channel.",
        "xg = x.reshape(N, G, C // G, H, W); mu = xg.mean(axis=(2, 3, 4), keepdims=True); var likewise "
        "(biased); x_hat = ((xg - mu) / np.sqrt(var + eps)).reshape(N, C, H, W); "
        "out = gamma.reshape(1, C, 1, 1) * x_hat + beta.reshape(1, C, 1, 1).",
    ),
))


def _gn_bw_cases() -> list[Case]:
    """The forward's cases with an upstream gradient, plus N = 1 with an odd spatial size."""
    cases = []
    for i, case in enumerate(_gn_cases()):
        x = case.inputs["x"]
        dout = _rng(780 + i).standard_normal(x.shape).astype(x.dtype)
        cases.append(Case(case.name, {**case.inputs, "dout": dout}, case.tolerance))
    r = _rng(789)
    x = (2.0 + r.standard_normal((1, 6, 3, 5)) * r.uniform(0.5, 2.0, size=(1, 6, 1, 1))).astype(np.float64)
    cases.append(Case("float64 x(1, 6, 3, 5) G=3", {
        "x": x, "gamma": r.uniform(0.5, 1.5, size=6), "beta": r.standard_normal(6), "num_groups": 3,
        "dout": r.standard_normal(x.shape)}, tolerance(np.float64)))
    return cases


def _gn_bw_call(fn: Callable[..., Any], inputs: Mapping[str, Any], ns: Mapping[str, Any]) -> dict[str, Any]:
    """``fn(dout, cache)`` on the cache of the student's own ``groupnorm_forward`` (num_groups passed on)."""
    forward = ns["groupnorm_forward"]
    G = inputs["num_groups"]

    def forward_with_groups(x: Any, gamma: Any, beta: Any, eps: float) -> Any:
        return forward(x, gamma, beta, G, eps)

    return backward_on_own_forward(fn, inputs, forward_with_groups, forward_name="groupnorm_forward",
                                   forward_exercise="groupnorm_forward", eps=_EPS)


def _gn_param_grads_diagnose(
    case: Case, got: Mapping[str, np.ndarray], exp: Mapping[str, np.ndarray]
) -> str | None:
    """dgamma/dbeta that keep the batch axis (summed over the positions only)."""
    N, C = case.inputs["x"].shape[:2]
    per_example = [(N, C)] + ([(N,)] if case.inputs["num_groups"] != N else [])  # (G,) is per group
    for name in ("dgamma", "dbeta"):
        g, e = got.get(name), exp[name]
        if g is not None and g.shape != e.shape and g.shape in per_example:
            return (f"{name} keeps the batch axis (shape {g.shape}): gamma and beta are shared by all "
                    f"examples, so sum over the batch as well, axes (0, 2, 3) (shape {e.shape}).")
    return None


register(Exercise(
    id="groupnorm_backward",
    notebook=NOTEBOOK,
    solution=solutions.groupnorm_backward,
    forbidden=NUMPY_FORBIDDEN,
    cases=_gn_bw_cases,
    # run on the student's own groupnorm_forward, which is blamed first when it is wrong
    call=_gn_bw_call,
    namespace={"groupnorm_forward": solutions.groupnorm_forward},
    diagnose=backward_diagnose("groupnorm_forward", "groupnorm_forward", _gn_param_grads_diagnose),
    mistakes=(
        Mistake("constant stats", "Your dx treats the group's mean and standard deviation as constants "
                "(dx = gamma * dout / sigma); they depend on every value of the group, so dx has two more "
                "terms.", mistakes.gnb_const_stats, ("dx",)),
        Mistake("missing mean term", "Your dx misses the gradient through the group's mean: subtract "
                "the mean of g = gamma * dout over the group as well.", mistakes.gnb_missing_mean_term, ("dx",)),
        Mistake("per channel", "Your dx takes its means over each channel's positions (axes (2, 3): "
                "instance norm's backward); the statistics are shared by the whole group, so the means "
                "are over the group: axes (2, 3, 4) of the (N, G, C // G, H, W) view.",
                mistakes.gnb_per_channel, ("dx",)),
        Mistake("over the batch", "Your dx takes its means over the batch (batch norm's backward); "
                "group norm's statistics are per example: average over axes (2, 3, 4) of "
                "(N, G, C // G, H, W), not axis 0.", mistakes.gnb_batch_axis, ("dx",)),
        Mistake("no gamma in dx", "Your dx forgets gamma: the gradient reaching x_hat is "
                "g = gamma * dout, gamma broadcast per channel as (1, C, 1, 1).", mistakes.gnb_no_gamma, ("dx",)),
        Mistake("gamma per group", "Your dgamma and dbeta have one entry per group; gamma and beta are "
                "per channel, like batch norm's: sum over the batch and the positions only, axes (0, 2, 3), "
                "to get C entries.", mistakes.gnb_gamma_per_group, ("dgamma", "dbeta")),
    ),
    hints=(
        "Group norm is layer norm applied to each (example, group) block of C // G channels × H × W values. "
        "View dout (times gamma) as (N, G, C // G, H, W) and reuse layer norm's backward on the last three axes.",
        "gamma and beta act per channel after the normalization: dbeta = sum of dout and dgamma = sum of "
        "dout * x_hat, both over axes (0, 2, 3). The gradient reaching x_hat is g = gamma[c] * dout.",
        "With inv_std = 1 / sqrt(var + eps) of each group and means over the group's M = (C // G) * H * W values: "
        "dx = inv_std * (g - mean(g) - x_hat * mean(g * x_hat)), computed on the (N, G, C // G, H, W) view "
        "and reshaped back to (N, C, H, W).",
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


register(Exercise(
    id="batch_renorm_forward",
    notebook=NOTEBOOK,
    solution=solutions.batch_renorm_forward,
    forbidden=NUMPY_FORBIDDEN,
    hints=(
        "Normalize with the batch's statistics as in batch norm, then correct the result towards "
        "what the running statistics would have given: a scale r and a shift d, treated as constants.",
        "r = sigma_B / sigma_run and d = (mu_B - running_mean) / sigma_run, each clipped (np.clip) to "
        "[1/r_max, r_max] and [-d_max, d_max]; both sigmas include eps.",
        "out = gamma * ((x - mu_B) / sigma_B * r + d) + beta; the running averages move by momentum, "
        "the variance's with the unbiased batch variance var_B * N / (N - 1).",
    ),
    cases=_brn_cases,
    call=_brn_call,
    mistakes=(
        Mistake("no clip", "You forgot to clip: r = np.clip(sigma_B / sigma_run, 1 / r_max, r_max) and "
                "d = np.clip((mu_B - running_mean) / sigma_run, -d_max, d_max).", mistakes.brn_no_clip,
                ("out", "r", "d")),
        Mistake("inverted r", "Your r is upside down: r = sigma_B / sigma_run (batch over running), "
                "so that (x - mu_B) / sigma_B * r = (x - mu_B) / sigma_run.", mistakes.brn_inverted_r,
                ("out", "r")),
        Mistake("flipped d", "Your d has the wrong sign: d = (mu_B - running_mean) / sigma_run.",
                mistakes.brn_flipped_d, ("out", "d")),
        Mistake("sigma_B from running", "You divide by the running standard deviation where the batch's is "
                "needed: x_hat = (x - mu_B) / sigma_B * r + d with sigma_B = np.sqrt(var_B + eps) of this batch.",
                mistakes.brn_sigma_b_from_running, ("out", "r")),
        Mistake("after update", "You computed r and d from the running statistics after updating them with "
                "this batch; use the running statistics from before the update.", mistakes.brn_after_update,
                ("r", "d")),
        Mistake("biased running var", "running_var must be updated with the unbiased batch variance "
                "(var_B * N / (N - 1)), as PyTorch does; the normalization itself uses the biased one.",
                mistakes.brn_biased_running_var, ("running_var",)),
        Mistake("unbiased batch var", "Normalize with the biased batch variance (divide by N); only the "
                "running_var update uses the unbiased one.", mistakes.brn_unbiased_batch_var, ("out", "r")),
    ),
))
