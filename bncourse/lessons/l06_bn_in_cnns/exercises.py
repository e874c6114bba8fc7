"""Exercises of notebook 06 (BN in CNNs): spatial batch norm forward/backward, folding BN.

=======================  ===============================  ===============================================
id                       the student writes               checked against
=======================  ===============================  ===============================================
``spatial_batchnorm_forward``   ``spatial_batchnorm_forward``    :func:`bncourse.reference.spatial_batchnorm_forward`
``spatial_batchnorm_backward``  ``spatial_batchnorm_backward``   :func:`bncourse.reference.spatial_batchnorm_backward`
``fold_batchnorm``              ``fold_batchnorm``               :func:`bncourse.reference.fold_batchnorm`
=======================  ===============================  ===============================================

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
from numpy.typing import NDArray

from bncourse import reference
from bncourse.conventions import EPS
from bncourse.grading.cases import (
    affine_case,
    backward_call,
    backward_diagnose,
    forward_call,
    tolerance,
)
from bncourse.grading.registry import Case, ContractError, Exercise, Mistake, register

__all__ = ["fold_cases", "spatial_cases"]

Array = NDArray[Any]
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


def _fwd_axes(x: Array, gamma: Array, beta: Array, eps: float, *, axes: tuple[int, ...] | None = (0, 2, 3),
              ddof: int = 0, with_eps: bool = True) -> tuple[Array, None]:
    mu = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, ddof=ddof, keepdims=True)
    with np.errstate(all="ignore"):  # N = 1 with ddof = 1, or var = 0 without ε
        x_hat = (x - mu) / np.sqrt(var + eps if with_eps else var)
    g, b = gamma.reshape(1, -1, 1, 1), beta.reshape(1, -1, 1, 1)
    return (g * x_hat + b).astype(x.dtype), None


def _fwd_no_transpose(x: Array, gamma: Array, beta: Array, eps: float) -> tuple[Array, None]:
    rows = x.reshape(-1, x.shape[1])  # (N, C, H, W) -> (N·H·W, C) without moving C last
    x_hat = (rows - rows.mean(axis=0)) / np.sqrt(rows.var(axis=0) + eps)
    return (gamma * x_hat + beta).reshape(x.shape).astype(x.dtype), None


_AXES_FIX = "reduce over axes (0, 2, 3), i.e. x.transpose(0, 2, 3, 1).reshape(-1, C) and then axis 0"

FORWARD_MISTAKES = (
    Mistake("per-position statistics",
            "You normalized each (c, h, w) position over the batch only (1-D batch norm on the flattened "
            f"image): in a CNN all N·H·W values of a channel share one μ and σ² — {_AXES_FIX}.",
            lambda x, g, b, eps: _fwd_axes(x, g, b, eps, axes=(0,))),
    Mistake("per-pixel statistics",
            "Your statistics are per pixel position, reduced over N and C: batch norm keeps the channels "
            f"apart and pools the positions — {_AXES_FIX}.",
            lambda x, g, b, eps: _fwd_axes(x, g, b, eps, axes=(0, 1))),
    Mistake("statistics over everything",
            "You computed one μ and σ² over the whole array: spatial batch norm needs one per channel — "
            f"{_AXES_FIX}.",
            lambda x, g, b, eps: _fwd_axes(x, g, b, eps, axes=None)),
    Mistake("instance norm",
            "You normalized each example's channel over (H, W) only (that is instance norm): batch norm "
            f"pools the batch too — {_AXES_FIX}.",
            lambda x, g, b, eps: _fwd_axes(x, g, b, eps, axes=(2, 3))),
    Mistake("layer norm",
            "You normalized each example over (C, H, W) (that is layer norm): batch norm takes statistics "
            f"per channel over the batch — {_AXES_FIX}.",
            lambda x, g, b, eps: _fwd_axes(x, g, b, eps, axes=(1, 2, 3))),
    Mistake("reshape without transpose",
            "You reshaped (N, C, H, W) to (-1, C) without moving C last, so each 'column' mixes values of "
            "different channels: transpose first, x.transpose(0, 2, 3, 1).reshape(-1, C), and undo it with "
            "reshape(N, H, W, C).transpose(0, 3, 1, 2).",
            _fwd_no_transpose),
    Mistake("unbiased variance",
            "Your variance is the unbiased one (ddof=1): batch norm divides by m = N·H·W, not m − 1.",
            lambda x, g, b, eps: _fwd_axes(x, g, b, eps, ddof=1)),
    Mistake("missing eps",
            "ε is missing: divide by np.sqrt(var + eps), which also keeps a constant channel from "
            "dividing by zero.",
            lambda x, g, b, eps: _fwd_axes(x, g, b, eps, with_eps=False)),
)


# --------------------------------------------------------------------------- backward mistakes
# They receive the reference cache; x_hat is (N, C, H, W) (rows (N·H·W, C) are accepted too).


def _rows(a: Array) -> Array:
    """``(N, C, H, W) -> (N·H·W, C)``; a 2-D array is taken to be rows already."""
    return a if a.ndim == 2 else a.transpose(0, 2, 3, 1).reshape(-1, a.shape[1])


def _unrows(rows: Array, shape: tuple[int, ...]) -> Array:
    n, c, h, w = shape
    return rows.reshape(n, h, w, c).transpose(0, 3, 1, 2)


def _bwd_constant_stats(dout: Array, c: reference.BatchNormCache) -> tuple[Array, Array, Array]:
    dy, x_hat = _rows(dout), _rows(c.x_hat)
    return _unrows(dy * c.gamma * c.inv_std, dout.shape), (dy * x_hat).sum(0), dy.sum(0)


def _bwd_m_is_n(dout: Array, c: reference.BatchNormCache) -> tuple[Array, Array, Array]:
    dy, x_hat = _rows(dout), _rows(c.x_hat)
    m = dout.shape[0]  # the batch size instead of N·H·W
    dbeta, dgamma = dy.sum(0), (dy * x_hat).sum(0)
    dx = (c.gamma * c.inv_std / m) * (m * dy - dbeta - x_hat * dgamma)
    return _unrows(dx, dout.shape), dgamma, dbeta


def _bwd_no_transpose(dout: Array, c: reference.BatchNormCache) -> tuple[Array, Array, Array]:
    dy = dout.reshape(-1, dout.shape[1])  # channels mixed
    x_hat = _rows(c.x_hat)
    m = dy.shape[0]
    dbeta, dgamma = dy.sum(0), (dy * x_hat).sum(0)
    dx = (c.gamma * c.inv_std / m) * (m * dy - dbeta - x_hat * dgamma)
    return dx.reshape(dout.shape), dgamma, dbeta


def _bwd_swapped(dout: Array, c: reference.BatchNormCache) -> tuple[Array, Array, Array]:
    dx, dgamma, dbeta = reference.spatial_batchnorm_backward(dout, c)
    return dx, dbeta, dgamma


BACKWARD_MISTAKES = (
    Mistake("mu and var treated as constants",
            "You treated μ and σ² as constants (dx = γ·dout/√(σ²+ε)): they depend on every value of the "
            "channel, so the gradient must flow back through them — "
            "dx = γ/(m√(σ²+ε))·(m·dy − Σdy − x̂·Σ(dy·x̂)) with sums over (N, H, W).",
            _bwd_constant_stats, outputs=("dx",)),
    Mistake("m = N",
            "dx uses m = N (the batch size): each channel's statistics average m = N·H·W values, so use "
            "m = N·H·W in dx = γ/(m√(σ²+ε))·(m·dy − Σdy − x̂·Σ(dy·x̂)).",
            _bwd_m_is_n, outputs=("dx",)),
    Mistake("reshape without transpose",
            "You reshaped dout (N, C, H, W) to (-1, C) without moving C last, so its rows do not line up "
            "with x̂'s: use dout.transpose(0, 2, 3, 1).reshape(-1, C), and transpose dx back at the end.",
            _bwd_no_transpose),
    Mistake("dgamma and dbeta swapped",
            "dgamma and dbeta are swapped: dgamma = Σ dout·x̂ and dbeta = Σ dout (over N, H, W).",
            _bwd_swapped, outputs=("dgamma", "dbeta")),
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


def _fold(weight: Array, bias: Array | None, gamma: Array, beta: Array, mean: Array, var: Array,
          eps: float, *, axis: int = 0, with_eps: bool = True, sqrt: bool = True, use_gamma: bool = True,
          bias_rule: str = "ok") -> tuple[Array, Array]:
    b = np.zeros_like(gamma) if bias is None else bias
    denom = var + eps if with_eps else var
    with np.errstate(all="ignore"):
        s = (gamma if use_gamma else 1.0) / (np.sqrt(denom) if sqrt else denom)
    shape = [1] * weight.ndim
    shape[axis] = -1
    w_new = weight * s.reshape(shape)
    if bias_rule == "no_mean":
        b_new = b * s + beta
    elif bias_rule == "mean_unscaled":
        b_new = b * s + beta - mean
    elif bias_rule == "no_beta":
        b_new = (b - mean) * s
    else:
        b_new = (b - mean) * s + beta
    return w_new.astype(weight.dtype), b_new.astype(weight.dtype)


FOLD_MISTAKES = (
    Mistake("input axis",
            "You scaled the input channels (axis 1) of W: the BN scale γ/√(var+ε) belongs to each *output* "
            "channel — multiply row/filter o by scale[o]: weight * scale.reshape(-1, 1, ...) "
            "(scale[:, None] for a linear layer, scale[:, None, None, None] for a conv).",
            lambda w, b, g, be, m, v, eps: _fold(w, b, g, be, m, v, eps, axis=1), outputs=("weight",)),
    Mistake("no mean",
            "Your bias ignores the running mean: BN subtracts μ before scaling, so b' = (b − μ)·γ/√(var+ε) + β.",
            lambda w, b, g, be, m, v, eps: _fold(w, b, g, be, m, v, eps, bias_rule="no_mean"),
            outputs=("bias",)),
    Mistake("mean not scaled",
            "You subtracted μ after scaling (b·s + β − μ): μ is subtracted *before* the scale, so it is "
            "scaled too — b' = (b − μ)·s + β with s = γ/√(var+ε).",
            lambda w, b, g, be, m, v, eps: _fold(w, b, g, be, m, v, eps, bias_rule="mean_unscaled"),
            outputs=("bias",)),
    Mistake("no beta",
            "β is missing from the bias: b' = (b − μ)·γ/√(var+ε) + β.",
            lambda w, b, g, be, m, v, eps: _fold(w, b, g, be, m, v, eps, bias_rule="no_beta"),
            outputs=("bias",)),
    Mistake("no eps",
            "ε is missing: BN in eval mode divides by √(running_var + ε), so the scale is γ/√(var + ε) "
            "(it matters when a channel's variance is tiny).",
            lambda w, b, g, be, m, v, eps: _fold(w, b, g, be, m, v, eps, with_eps=False)),
    Mistake("no sqrt",
            "You divided by var + ε: the scale is γ divided by the standard deviation, γ/√(var + ε).",
            lambda w, b, g, be, m, v, eps: _fold(w, b, g, be, m, v, eps, sqrt=False)),
    Mistake("no gamma",
            "γ is missing from the scale: BN multiplies x̂ by γ, so s = γ/√(var + ε) (for W and for the bias).",
            lambda w, b, g, be, m, v, eps: _fold(w, b, g, be, m, v, eps, use_gamma=False)),
)


# --------------------------------------------------------------------------- registration

register(Exercise(
    id="spatial_batchnorm_forward",
    notebook=NOTEBOOK,
    solution=reference.spatial_batchnorm_forward,
    cases=spatial_cases,
    call=_call_forward,
    mistakes=FORWARD_MISTAKES,
))

register(Exercise(
    id="spatial_batchnorm_backward",
    notebook=NOTEBOOK,
    solution=reference.spatial_batchnorm_backward,
    cases=spatial_cases,
    call=_call_backward,
    mistakes=BACKWARD_MISTAKES,
    diagnose=_diagnose_backward,
    namespace={"spatial_batchnorm_forward": reference.spatial_batchnorm_forward},
))

register(Exercise(
    id="fold_batchnorm",
    notebook=NOTEBOOK,
    solution=reference.fold_batchnorm,
    cases=fold_cases,
    call=_call_fold,
    mistakes=FOLD_MISTAKES,
))
