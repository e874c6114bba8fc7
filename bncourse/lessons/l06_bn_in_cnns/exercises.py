"""Exercises of notebook 06 (BN in CNNs): spatial batch norm forward/backward, folding BN.

Declarations only: the seeded cases, how each exercise is called, the diagnose hooks and
the ``Mistake`` s with their diagnoses.  The instructor's implementations are in
:mod:`.solutions` (re-exported from :mod:`bncourse.reference`), the wrong implementations
the ``Mistake`` s run are in :mod:`.mistakes`.

==============================  ==============================  ================================================
id                              the student writes              checked against
==============================  ==============================  ================================================
``spatial_batchnorm_forward``   ``spatial_batchnorm_forward``   :func:`.solutions.spatial_batchnorm_forward`
``spatial_batchnorm_backward``  ``spatial_batchnorm_backward``  :func:`.solutions.spatial_batchnorm_backward`
``fold_batchnorm``              ``fold_batchnorm``              :func:`.solutions.fold_batchnorm`
==============================  ==============================  ================================================

As in notebook 03, the cache of the forward is the student's own business: the backward
exercise runs the student's own ``spatial_batchnorm_forward`` (looked up by name) to get
a cache, and reports that forward's output as ``forward_out`` next to the gradients, so
a wrong forward is blamed by name instead of being reported as a wrong gradient.  The
backward ``Mistake`` s receive the reference cache (a :class:`~bncourse.reference.BatchNormCache`
whose ``x_hat`` is ``(N, C, H, W)`` and whose ``inv_std``, ``gamma`` are ``(C,)``), which is
what the exercise's namespace provides.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from bncourse.conventions import EPS
from bncourse.grading.cases import (
    affine_case,
    backward_call,
    backward_diagnose,
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
from bncourse.validation import Array

mistakes = LessonPart(__name__, "mistakes")
solutions = LessonPart(__name__, "solutions")

__all__ = ["fold_cases", "spatial_cases"]

NOTEBOOK = "06_bn_in_cnns"


# --------------------------------------------------------------------------- cases


def _spatial_case(
    name: str,
    shape: tuple[int, int, int, int],
    seed: int,
    dtype: type = np.float64,
    scale: float = 1.0,
    shift: float = 0.0,
) -> Case:
    rng = np.random.default_rng(seed)
    c = shape[1]
    # Every channel gets its own offset and scale, so mixing channels shows.
    offsets = rng.normal(size=(1, c, 1, 1)) * 3.0
    scales = rng.uniform(0.5, 3.0, size=(1, c, 1, 1))
    x = (rng.standard_normal(shape) * scales + offsets) * scale + shift
    return affine_case(name, x, rng, dtype)


def spatial_cases() -> list[Case]:
    """Seeded ``(N, C, H, W)`` cases shared by the spatial forward and backward exercises.

    float64 and float32, N = 2, N = 1 (allowed: N·H·W > 1), C = 1, H = W = 1 (plain 1-D
    BN), odd shapes with H ≠ W, a large mean and scale, and a tiny variance (ε matters).
    """
    return [
        _spatial_case("float64 x(4, 3, 5, 5)", (4, 3, 5, 5), seed=60),
        _spatial_case("float32 x(3, 4, 3, 2)", (3, 4, 3, 2), seed=61, dtype=np.float32),
        _spatial_case("N=2 x(2, 3, 4, 4)", (2, 3, 4, 4), seed=62),
        _spatial_case("N=1 x(1, 3, 4, 3)", (1, 3, 4, 3), seed=63),
        _spatial_case("C=1 x(5, 1, 3, 3)", (5, 1, 3, 3), seed=64),
        _spatial_case("H=W=1 x(6, 4, 1, 1)", (6, 4, 1, 1), seed=65),
        _spatial_case("odd x(3, 5, 7, 2)", (3, 5, 7, 2), seed=66),
        _spatial_case("large mean/scale x(4, 3, 3, 3)", (4, 3, 3, 3), seed=67, scale=100.0, shift=1000.0),
        _spatial_case("tiny variance x(2, 3, 2, 2)", (2, 3, 2, 2), seed=68, scale=1e-3),
    ]


# --------------------------------------------------------------------------- calls
# The backward runs on the student's own spatial_batchnorm_forward (looked up by name); a
# wrong forward is blamed before any diagnosis of the gradients.


def _diagnose_param_grads(case: Case, got: Mapping[str, Array], exp: Mapping[str, Array]) -> str | None:
    """dgamma/dbeta that are not summed over (N, H, W)."""
    n, c, h, w = np.shape(case.inputs["x"])
    for name in ("dgamma", "dbeta"):
        g = got.get(name)
        if g is None or g.shape == (c,):
            continue
        if g.shape in {(n, c, h, w), (c, h, w), (n, c), (n, c, 1, 1), (1, c, h, w), (h, w, c), (n * h * w, c)}:
            return (
                f"{name} has shape {g.shape}: γ and β are shared by every position of every example, "
                f"so their gradients are sums over N, H and W — sum over axis=(0, 2, 3) "
                f"(or over the rows of the (N·H·W, C) view) to get shape ({c},)."
            )
        if g.shape == (1, c, 1, 1) or g.shape == (1, c):
            return f"{name} has shape {g.shape}; drop keepdims=True so it has the shape ({c},) of the parameter."
    return None


_call_forward = forward_call("spatial_batchnorm_forward")
_call_backward = backward_call("spatial_batchnorm_forward", "spatial_batchnorm_forward")
_diagnose_backward = backward_diagnose("spatial_batchnorm_forward", "spatial_batchnorm_forward", _diagnose_param_grads)


# --------------------------------------------------------------------------- forward mistakes

_AXES_FIX = "reduce over axes (0, 2, 3), i.e. x.transpose(0, 2, 3, 1).reshape(-1, C) and then axis 0"

FORWARD_MISTAKES = (
    Mistake("per-position statistics",
            "You normalized each (c, h, w) position over the batch only (1-D batch norm on the flattened "
            f"image): in a CNN all N·H·W values of a channel share one μ and σ² — {_AXES_FIX}.",
            mistakes.fwd_per_position_statistics),
    Mistake("per-pixel statistics",
            "Your statistics are per pixel position, reduced over N and C: batch norm keeps the channels "
            f"apart and pools the positions — {_AXES_FIX}.",
            mistakes.fwd_per_pixel_statistics),
    Mistake("statistics over everything",
            "You computed one μ and σ² over the whole array: spatial batch norm needs one per channel — "
            f"{_AXES_FIX}.",
            mistakes.fwd_statistics_over_everything),
    Mistake("instance norm",
            "You normalized each example's channel over (H, W) only (that is instance norm): batch norm "
            f"pools the batch too — {_AXES_FIX}.",
            mistakes.fwd_instance_norm),
    Mistake("layer norm",
            "You normalized each example over (C, H, W) (that is layer norm): batch norm takes statistics "
            f"per channel over the batch — {_AXES_FIX}.",
            mistakes.fwd_layer_norm),
    Mistake("reshape without transpose",
            "You reshaped (N, C, H, W) to (-1, C) without moving C last, so each 'column' mixes values of "
            "different channels: transpose first, x.transpose(0, 2, 3, 1).reshape(-1, C), and undo it with "
            "reshape(N, H, W, C).transpose(0, 3, 1, 2).",
            mistakes.fwd_no_transpose),
    Mistake("unbiased variance",
            "Your variance is the unbiased one (ddof=1): batch norm divides by m = N·H·W, not m − 1.",
            mistakes.fwd_unbiased_variance),
    Mistake("missing eps",
            "ε is missing: divide by np.sqrt(var + eps), which also keeps a constant channel from "
            "dividing by zero.",
            mistakes.fwd_missing_eps),
)


# --------------------------------------------------------------------------- backward mistakes
# They receive the reference cache; x_hat is (N, C, H, W) (rows (N·H·W, C) are accepted too).

BACKWARD_MISTAKES = (
    Mistake("mu and var treated as constants",
            "You treated μ and σ² as constants (dx = γ·dout/√(σ²+ε)): they depend on every value of the "
            "channel, so the gradient must flow back through them — "
            "dx = γ/(m√(σ²+ε))·(m·dy − Σdy − x̂·Σ(dy·x̂)) with sums over (N, H, W).",
            mistakes.bwd_constant_stats, outputs=("dx",)),
    Mistake("m = N",
            "dx uses m = N (the batch size): each channel's statistics average m = N·H·W values, so use "
            "m = N·H·W in dx = γ/(m√(σ²+ε))·(m·dy − Σdy − x̂·Σ(dy·x̂)).",
            mistakes.bwd_m_is_n, outputs=("dx",)),
    Mistake("reshape without transpose",
            "You reshaped dout (N, C, H, W) to (-1, C) without moving C last, so its rows do not line up "
            "with x̂'s: use dout.transpose(0, 2, 3, 1).reshape(-1, C), and transpose dx back at the end.",
            mistakes.bwd_no_transpose),
    Mistake("dgamma and dbeta swapped",
            "dgamma and dbeta are swapped: dgamma = Σ dout·x̂ and dbeta = Σ dout (over N, H, W).",
            mistakes.bwd_swapped, outputs=("dgamma", "dbeta")),
)


# --------------------------------------------------------------------------- fold_bn


def _fold_case(
    name: str,
    weight_shape: tuple[int, ...],
    seed: int,
    dtype: type = np.float64,
    with_bias: bool = True,
    var_scale: float = 1.0,
    mean_shift: float = 0.0,
) -> Case:
    rng = np.random.default_rng(seed)
    out = weight_shape[0]
    inputs: dict[str, Any] = {
        "weight": rng.standard_normal(weight_shape).astype(dtype),
        "bias": rng.standard_normal(out).astype(dtype) if with_bias else None,
        "gamma": rng.uniform(0.5, 2.0, out).astype(dtype),
        "beta": rng.standard_normal(out).astype(dtype),
        "running_mean": (rng.standard_normal(out) * 2.0 + mean_shift).astype(dtype),
        "running_var": (rng.uniform(0.2, 3.0, out) * var_scale).astype(dtype),
        "eps": EPS,
    }
    return Case(name=name, inputs=inputs, tolerance=tolerance(dtype))


def fold_cases() -> list[Case]:
    """Conv ``(out, in, kh, kw)`` and linear ``(out, in)`` weights, square and not, with and
    without bias, float32, a large running mean, and a tiny running variance (ε matters)."""
    return [
        _fold_case("conv W(4, 3, 3, 3)", (4, 3, 3, 3), seed=70),
        _fold_case("conv W(4, 4, 3, 3) in=out", (4, 4, 3, 3), seed=71),
        _fold_case("linear W(5, 5)", (5, 5), seed=72),
        _fold_case("linear W(3, 6)", (3, 6), seed=73),
        _fold_case("float32 conv W(6, 2, 3, 3)", (6, 2, 3, 3), seed=74, dtype=np.float32),
        _fold_case("bias=None conv W(4, 4, 1, 1)", (4, 4, 1, 1), seed=75, with_bias=False),
        _fold_case("large running mean W(3, 3)", (3, 3), seed=76, mean_shift=100.0),
        _fold_case("tiny running_var W(4, 4)", (4, 4), seed=77, var_scale=1e-6),
    ]


def _call_fold(fn: Callable[..., Any], i: Mapping[str, Any], ns: Mapping[str, Any]) -> dict[str, Any]:
    result = fn(i["weight"], i["bias"], i["gamma"], i["beta"], i["running_mean"], i["running_var"], i["eps"])
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise ContractError(
            f"fold_batchnorm must return a pair `return weight, bias`, got {type(result).__name__}."
        )
    weight, bias = result
    if bias is None and i["bias"] is None:
        raise ContractError(
            "fold_batchnorm returned bias None for a layer without bias: the folded layer needs a bias "
            "even then — treat b as 0, so b' = β − μ·γ/√(var + ε)."
        )
    return {"weight": weight, "bias": bias}


FOLD_MISTAKES = (
    Mistake("input axis",
            "You scaled the input channels (axis 1) of W: the BN scale γ/√(var+ε) belongs to each *output* "
            "channel — multiply row/filter o by scale[o]: weight * scale.reshape(-1, 1, ...) "
            "(scale[:, None] for a linear layer, scale[:, None, None, None] for a conv).",
            mistakes.fold_input_axis, outputs=("weight",)),
    Mistake("no mean",
            "Your bias ignores the running mean: BN subtracts μ before scaling, so b' = (b − μ)·γ/√(var+ε) + β.",
            mistakes.fold_no_mean,
            outputs=("bias",)),
    Mistake("mean not scaled",
            "You subtracted μ after scaling (b·s + β − μ): μ is subtracted *before* the scale, so it is "
            "scaled too — b' = (b − μ)·s + β with s = γ/√(var+ε).",
            mistakes.fold_mean_not_scaled,
            outputs=("bias",)),
    Mistake("no beta",
            "β is missing from the bias: b' = (b − μ)·γ/√(var+ε) + β.",
            mistakes.fold_no_beta,
            outputs=("bias",)),
    Mistake("no eps",
            "ε is missing: BN in eval mode divides by √(running_var + ε), so the scale is γ/√(var + ε) "
            "(it matters when a channel's variance is tiny).",
            mistakes.fold_no_eps),
    Mistake("no sqrt",
            "You divided by var + ε: the scale is γ divided by the standard deviation, γ/√(var + ε).",
            mistakes.fold_no_sqrt),
    Mistake("no gamma",
            "γ is missing from the scale: BN multiplies x̂ by γ, so s = γ/√(var + ε) (for W and for the bias).",
            mistakes.fold_no_gamma),
)


# --------------------------------------------------------------------------- registration


register(Exercise(
    id="spatial_batchnorm_forward",
    notebook=NOTEBOOK,
    solution=solutions.spatial_batchnorm_forward,
    cases=spatial_cases,
    call=_call_forward,
    mistakes=FORWARD_MISTAKES,
    forbidden=NUMPY_FORBIDDEN,
    hints=(
        "Every position (n, h, w) is one more example of channel c's feature. Build a 2-D matrix "
        "with one row per (n, h, w) and one column per channel: on it, this is notebook 03's "
        "batchnorm_forward, statistics over axis 0.",
        "Move the channel axis last before flattening: x.transpose(0, 2, 3, 1).reshape(-1, C) has "
        "shape (N*H*W, C); x.reshape(-1, C) alone puts values of different channels in one column. "
        "Undo it with .reshape(N, H, W, C).transpose(0, 3, 1, 2).",
        "rows = x.transpose(0, 2, 3, 1).reshape(-1, C); mu = rows.mean(axis=0); "
        "var = rows.var(axis=0) (biased: divide by m = N*H*W); x_hat = (rows - mu) / np.sqrt(var + eps); "
        "out = (gamma * x_hat + beta) reshaped back; cache x_hat, 1 / np.sqrt(var + eps) and gamma.",
    ),
))

register(Exercise(
    id="spatial_batchnorm_backward",
    notebook=NOTEBOOK,
    solution=solutions.spatial_batchnorm_backward,
    cases=spatial_cases,
    call=_call_backward,
    mistakes=BACKWARD_MISTAKES,
    diagnose=_diagnose_backward,
    namespace={"spatial_batchnorm_forward": solutions.spatial_batchnorm_forward},
    forbidden=NUMPY_FORBIDDEN,
    hints=(
        "Reshape dout exactly as x was reshaped in your forward: then this is notebook 03's "
        "closed-form backward (batchnorm_backward_alt) on an (N*H*W, C) matrix, and you transpose "
        "dx back at the end.",
        "Every (n, h, w) is a row, so m = N*H*W, and dbeta = sum of dy over all rows, "
        "dgamma = sum of dy * x_hat over all rows: both (C,), summed over n, h and w.",
        "dx_rows = gamma / (m * np.sqrt(var + eps)) * (m * dy - dbeta - x_hat * dgamma), with "
        "dy = dout.transpose(0, 2, 3, 1).reshape(-1, C); dx = dx_rows.reshape(N, H, W, C).transpose(0, 3, 1, 2).",
    ),
))

register(Exercise(
    id="fold_batchnorm",
    notebook=NOTEBOOK,
    solution=solutions.fold_batchnorm,
    cases=fold_cases,
    call=_call_fold,
    mistakes=FOLD_MISTAKES,
    forbidden=NUMPY_FORBIDDEN,
    hints=(
        "In eval mode BN is a fixed affine map per output channel o: y_o = s_o * (z_o - mu_o) + beta_o "
        "with s_o = gamma_o / sqrt(var_o + eps). Substitute z_o = W_o * x + b_o and collect the term "
        "that multiplies x and the constant term.",
        "s_o multiplies every weight of output channel o, weight[o, ...]: reshape s of shape (out,) to "
        "(out, 1, ..., 1) (weight.ndim - 1 ones) so that it broadcasts over axis 0 only. "
        "A missing bias is a bias of zeros.",
        "s = gamma / np.sqrt(running_var + eps); weight' = weight * s.reshape((-1,) + (1,) * (weight.ndim - 1)); "
        "bias' = (bias - running_mean) * s + beta.",
    ),
))
