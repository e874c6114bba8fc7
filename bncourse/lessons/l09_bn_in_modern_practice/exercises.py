"""Exercises of notebook 09 (batch norm in modern practice).

Declarations only: the seeded cases, how each exercise is called, and the ``Mistake`` s
with their diagnoses.  The instructor's implementations are in :mod:`.solutions`, the wrong
ones the ``Mistake`` s run in :mod:`.mistakes`.

===========================  =============================================
id                           checked against
===========================  =============================================
``rmsnorm_forward``          :func:`.solutions.rmsnorm_forward`
``ghost_batchnorm_forward``  :func:`.solutions.ghost_batchnorm_forward`
``weight_standardize``       :func:`.solutions.weight_standardize`
===========================  =============================================

NumPy only (no torch here).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from bncourse.grading.cases import describe, tolerance
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

NOTEBOOK = "09_bn_in_modern_practice"
_EPS = 1e-5


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _first_of_pair(result: Any, name: str) -> Any:
    if not isinstance(result, tuple) or len(result) != 2:
        raise ContractError(f"{name} must return a tuple (out, cache), got {describe(result)}")
    return result[0]


# ---------------------------------------------------------------------------- rmsnorm


def _rms_cases() -> list[Case]:
    cases = []
    for i, (shape, dt, loc, scale) in enumerate([
        ((4, 6), np.float64, 0.0, 1.0),
        ((3, 7), np.float64, 2.0, 3.0),  # non-zero mean: re-centering would change the result
        ((5, 4), np.float32, 1.0, 1.0),
        ((2, 5, 6), np.float64, 1.0, 2.0),  # (N, T, D): normalize over the last axis
        ((3, 2, 5), np.float32, 0.5, 1.0),
        ((4, 8), np.float64, 0.0, 1e-3),  # tiny values: eps matters
        ((1, 9), np.float64, -1.0, 1.0),  # N = 1 is fine
    ]):
        r = _rng(900 + i)
        D = shape[-1]
        x = (loc + scale * r.standard_normal(shape) * r.uniform(0.5, 2.0, size=D)).astype(dt)
        gamma = r.uniform(0.5, 1.5, size=D).astype(dt)
        name = f"{np.dtype(dt).name} x{shape}" + (" tiny values" if scale < 1e-2 else "")
        cases.append(Case(name, {"x": x, "gamma": gamma}, tolerance(dt)))
    return cases


def _rms_call(fn: Callable[..., Any], inputs: Mapping[str, Any], ns: Mapping[str, Any]) -> dict[str, Any]:
    return {"out": _first_of_pair(fn(inputs["x"], inputs["gamma"], _EPS), "rmsnorm_forward")}


register(Exercise(
    id="rmsnorm_forward",
    notebook=NOTEBOOK,
    solution=solutions.rmsnorm_forward,
    forbidden=NUMPY_FORBIDDEN,
    cases=_rms_cases,
    call=_rms_call,
    mistakes=(
        Mistake("re-centered", "You subtract the mean first: that is layer norm. RMSNorm does not re-center; "
                "it divides x itself by the root mean square of x over the last axis.", mistakes.rms_centered),
        Mistake("over the batch", "Your mean square is over the batch axis (axis=0); RMSNorm is per token: "
                "take it over the last axis (axis=-1, keepdims=True).", mistakes.rms_axis0),
        Mistake("eps outside", "You add eps after the square root; it goes inside: "
                "np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + eps).", mistakes.rms_eps_outside),
        Mistake("no sqrt", "You divide by the mean square; divide by its square root (the RMS).",
                mistakes.rms_no_sqrt),
        Mistake("no gamma", "You forgot the learned gain: out = gamma * x / rms.", mistakes.rms_no_gamma),
    ),
    hints=(
        "RMSNorm keeps layer norm's per-token view (statistics over the features, the last axis) but drops "
        "the mean: nothing is subtracted, and there is no beta.",
        "One number per token: the root mean square of its features, with eps added to the mean square "
        "before the square root. Keep the axis (keepdims=True) so it broadcasts back.",
        "rms = np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + eps); out = gamma * x / rms; return out, rms.",
    ),
))


# -------------------------------------------------------------------------- ghost BN


def _gbn_cases() -> list[Case]:
    cases = []
    for i, (N, D, G, dt) in enumerate([
        (8, 5, 4, np.float64),
        (12, 3, 3, np.float64),  # 4 ghost batches of 3
        (6, 4, 2, np.float32),
        (9, 6, 3, np.float64),  # odd sizes: 3 ghost batches of 3
        (8, 4, 8, np.float64),  # ghost_size = N: plain batch norm
        (10, 3, 5, np.float32),
    ]):
        r = _rng(930 + i)
        # each ghost batch with its own offset and scale, so that the grouping matters
        shift = np.repeat(r.uniform(-3, 3, size=(N // G, 1, D)), G, axis=1).reshape(N, D)
        x = (shift + r.uniform(0.5, 2.0, size=D) * r.standard_normal((N, D))).astype(dt)
        gamma = r.uniform(0.5, 1.5, size=D).astype(dt)
        beta = r.standard_normal(D).astype(dt)
        cases.append(Case(f"{np.dtype(dt).name} x{(N, D)} ghost_size={G}",
                          {"x": x, "gamma": gamma, "beta": beta, "ghost_size": G}, tolerance(dt)))
    return cases


def _gbn_call(fn: Callable[..., Any], inputs: Mapping[str, Any], ns: Mapping[str, Any]) -> dict[str, Any]:
    res = fn(inputs["x"], inputs["gamma"], inputs["beta"], inputs["ghost_size"], _EPS)
    return {"out": _first_of_pair(res, "ghost_batchnorm_forward")}


register(Exercise(
    id="ghost_batchnorm_forward",
    notebook=NOTEBOOK,
    solution=solutions.ghost_batchnorm_forward,
    forbidden=NUMPY_FORBIDDEN,
    cases=_gbn_cases,
    call=_gbn_call,
    mistakes=(
        Mistake("whole batch", "You normalize the whole batch at once (plain batch norm); cut it into "
                "N // ghost_size ghost batches and give each its own mean and variance.", mistakes.gbn_whole_batch),
        Mistake("count", "You used ghost_size as the number of ghost batches; it is the number of examples "
                "in each: reshape to (N // ghost_size, ghost_size, D).", mistakes.gbn_size_as_count),
        Mistake("interleaved", "Your ghost batches take every k-th example; they are consecutive slices "
                "x[0:g], x[g:2g], ...: reshape to (N // ghost_size, ghost_size, D) and reduce over axis 1.",
                mistakes.gbn_interleaved),
        Mistake("unbiased", "Your variance is the unbiased one (ddof=1); batch norm normalizes with the "
                "biased variance of each ghost batch (divide by ghost_size).", mistakes.gbn_unbiased),
    ),
    hints=(
        "Ghost batch norm is ordinary training-mode batch norm applied separately to consecutive slices of "
        "ghost_size examples; gamma and beta are shared by all slices.",
        "Give the slices an axis of their own: x.reshape(N // ghost_size, ghost_size, D). Then batch norm's "
        "statistics are over axis 1 (keepdims=True), biased variance, eps inside the square root.",
        "xg = x.reshape(N // g, g, D); x_hat = ((xg - xg.mean(1, keepdims=True)) / np.sqrt(xg.var(1, "
        "keepdims=True) + eps)).reshape(N, D); out = gamma * x_hat + beta; return out, x_hat.",
    ),
))


# -------------------------------------------------------------- weight standardization


def _ws_cases() -> list[Case]:
    cases = []
    for i, (shape, dt, loc) in enumerate([
        ((4, 3, 3, 3), np.float64, 0.0),
        ((6, 2, 3, 3), np.float64, 0.5),
        ((5, 3, 1, 1), np.float32, 0.1),  # 1x1 convolution
        ((3, 4, 5, 5), np.float32, 0.0),
        ((7, 5), np.float64, 0.2),  # a linear layer (out, in)
        ((2, 3, 3, 3), np.float64, 0.0),
    ]):
        r = _rng(960 + i)
        w = (loc + r.uniform(0.05, 0.5, size=(shape[0],) + (1,) * (len(shape) - 1))
             * r.standard_normal(shape)).astype(dt)
        cases.append(Case(f"{np.dtype(dt).name} w{shape}", {"w": w}, tolerance(dt)))
    return cases


def _ws_call(fn: Callable[..., Any], inputs: Mapping[str, Any], ns: Mapping[str, Any]) -> dict[str, Any]:
    return {"w_hat": fn(inputs["w"], _EPS)}


register(Exercise(
    id="weight_standardize",
    notebook=NOTEBOOK,
    solution=solutions.weight_standardize,
    forbidden=NUMPY_FORBIDDEN,
    cases=_ws_cases,
    call=_ws_call,
    mistakes=(
        Mistake("over outputs", "Your statistics are over the output axis 0; Weight Standardization gives "
                "each output unit (row / filter) mean 0 and variance 1 over its fan-in: axes 1, 2, ...",
                mistakes.ws_over_outputs),
        Mistake("kernel only", "Your statistics are per (output, input) kernel, over its positions only; "
                "take them over the whole fan-in of each output channel: axes (1, 2, 3).",
                mistakes.ws_spatial_only),
        Mistake("unbiased", "Your variance is the unbiased one (ddof=1); use the biased variance "
                "(divide by the fan-in).", mistakes.ws_unbiased),
        Mistake("not scaled", "You subtract the mean but do not divide by the standard deviation "
                "np.sqrt(var + eps).", mistakes.ws_centered_only),
    ),
    hints=(
        "Standardize the weights the way layer norm standardizes an example: one mean and one variance per "
        "output unit, over everything that unit reads (its fan-in).",
        "The fan-in of output channel i of a (C_out, C_in, kh, kw) kernel is w[i], all C_in*kh*kw values: "
        "reduce over axes tuple(range(1, w.ndim)) with keepdims=True; biased variance, eps inside the root.",
        "axes = tuple(range(1, w.ndim)); return (w - w.mean(axis=axes, keepdims=True)) / "
        "np.sqrt(w.var(axis=axes, keepdims=True) + eps).",
    ),
))
