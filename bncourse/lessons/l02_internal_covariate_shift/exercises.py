"""Exercises of notebook 02 (internal covariate shift): activation_percentiles, gradient_predictiveness,
saturated_fraction.

* ``activation_percentiles(z, qs) -> (len(qs), D)``: each unit's percentiles over the batch
  (solution: :func:`bncourse.lessons.l02_internal_covariate_shift.solutions.activation_percentiles`).
* ``gradient_predictiveness(grad_fn, w, etas) -> (K,)``: ``‖∇L(w − η·g) − g‖`` for each step
  size (solution: :func:`bncourse.lessons.l02_internal_covariate_shift.solutions.gradient_predictiveness`).
* ``saturated_fraction(z, threshold) -> float``: the fraction of entries whose sigmoid slope
  sigmoid'(z) is below the threshold (solution: :func:`bncourse.lessons.l02_internal_covariate_shift.solutions.saturated_fraction`).

Each ``Mistake`` wraps a wrong implementation from
:mod:`bncourse.lessons.l02_internal_covariate_shift.mistakes`; a student's outputs matching
it gives the diagnosis.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from bncourse.grading.cases import F32_TOL, F64_TOL
from bncourse.grading.registry import NUMPY_FORBIDDEN, Case, Exercise, LessonPart, Mistake, register

mistakes = LessonPart(__name__, "mistakes")
solutions = LessonPart(__name__, "solutions")

NOTEBOOK = "02_internal_covariate_shift"
QS = (15.0, 50.0, 85.0)


# --- activation_percentiles ------------------------------------------------------------

def _perc_cases() -> list[Case]:
    rng = np.random.default_rng(20)
    return [
        Case("float64 z(50, 4)", {"z": rng.normal(size=(50, 4)), "qs": QS}),
        Case("float32 z(20, 3)", {"z": rng.normal(size=(20, 3)).astype(np.float32), "qs": QS}, F32_TOL),
        Case("N=2 D=1", {"z": rng.normal(size=(2, 1)), "qs": QS}),
        Case("odd z(7, 5), qs=(10, 90)", {"z": rng.normal(size=(7, 5)), "qs": (10.0, 90.0)}),
        Case("large mean/scale", {"z": 100.0 * rng.normal(size=(33, 2)) + 1000.0, "qs": QS}),
    ]


def _perc_call(fn: Callable[..., Any], i: Mapping[str, Any], ns: Mapping[str, Any]) -> dict[str, Any]:
    return {"percentiles": fn(i["z"], i["qs"])}


def _perc_diagnose(case: Case, got: dict[str, Any], exp: dict[str, Any]) -> str | None:
    p, e = got.get("percentiles"), exp["percentiles"]
    if p is None or p.shape == e.shape:
        return None
    n = case.inputs["z"].shape[0]
    if p.shape == (len(case.inputs["qs"]),):
        return "You pooled all units together: compute percentiles per unit (axis=0), one column per unit."
    if p.shape == (len(case.inputs["qs"]), n):
        return "You took percentiles across units for each example; take them over the batch (axis=0)."
    if p.shape == e.shape[::-1]:
        return "Transposed result: return shape (len(qs), D), one row per percentile."
    return None


register(Exercise(
    id="activation_percentiles",
    notebook=NOTEBOOK,
    solution=solutions.activation_percentiles,
    cases=_perc_cases,
    call=_perc_call,
    diagnose=_perc_diagnose,
    forbidden=NUMPY_FORBIDDEN,
    hints=(
        "Each unit is a column of z: you want its percentiles over the batch (down the rows), "
        "for all columns at once, without a loop.",
        "NumPy has a percentile function that takes percents in 0..100 and an axis; by default it "
        "interpolates linearly between order statistics, which is the definition asked for.",
        "np.percentile(z, list(qs), axis=0) has shape (len(qs), D); cast it to z.dtype.",
    ),
    mistakes=(
        Mistake("fractions", "np.percentile takes percents in 0..100 (np.quantile takes fractions): "
                "don't divide qs by 100.", mistakes.perc_fractions),
        Mistake("lower", "Use linear interpolation between order statistics (np.percentile's default), "
                "not the lower neighbour.", mistakes.perc_lower),
        Mistake("rank_index", "Indexing the sorted batch at int(q/100·N) is not the percentile: use "
                "np.percentile (linear interpolation between order statistics).", mistakes.perc_rank_index),
    ),
))


# --- gradient_predictiveness -----------------------------------------------------------

def _grad_cases() -> list[Case]:
    rng = np.random.default_rng(21)

    def case(name: str, p: int, k: int, dtype: type = np.float64, tol: tuple[float, float] = F64_TOL) -> Case:
        return Case(name, {
            "A": rng.normal(size=(p + 2, p)).astype(dtype),
            "b": rng.normal(size=p + 2).astype(dtype),
            "w": rng.normal(size=p).astype(dtype),
            "etas": np.geomspace(0.05, 2.0, k).astype(dtype),
        }, tol)

    return [
        case("float64 P=5 K=4", 5, 4),
        case("float32 P=3 K=3", 3, 3, np.float32, F32_TOL),
        case("P=1 K=1", 1, 1),
        case("P=8 K=6", 8, 6),
    ]


def _grad_call(fn: Callable[..., Any], i: Mapping[str, Any], ns: Mapping[str, Any]) -> dict[str, Any]:
    A, b = i["A"], i["b"]
    lam = A.dtype.type(0.1)

    def grad_fn(w: Any) -> Any:
        return A.T @ np.tanh(A @ w - b) + lam * w  # gradient of Σ log cosh(Aw − b) + λ‖w‖²/2

    return {"distances": fn(grad_fn, i["w"], i["etas"])}


register(Exercise(
    id="gradient_predictiveness",
    notebook=NOTEBOOK,
    solution=solutions.gradient_predictiveness,
    cases=_grad_cases,
    call=_grad_call,
    forbidden=NUMPY_FORBIDDEN,
    hints=(
        "g is the gradient at w itself: one call of grad_fn, before you look at any step size.",
        "For each step size the new point is w − η·g, a step *against* the gradient; compare the "
        "gradient there with g (a vector difference, then its length).",
        "d[k] = np.linalg.norm(grad_fn(w - etas[k] * g) - g); return the K values as an array in w's dtype.",
    ),
    mistakes=(
        Mistake("ascent", "Step *against* the gradient: evaluate the gradient at w − η·g, not w + η·g.", mistakes.gp_ascent),
        Mistake("squared", "Return the ℓ2 norm ‖∇L(w − ηg) − g‖, not its square.", mistakes.gp_squared),
        Mistake("no_difference", "Measure the *change* of the gradient: subtract g = ∇L(w) before taking the norm.",
                mistakes.gp_no_difference),
        Mistake("relative", "Return the plain distance ‖∇L(w − ηg) − g‖, without dividing by ‖g‖.", mistakes.gp_relative),
    ),
))


# --- saturated_fraction ----------------------------------------------------------------

def _sat_cases() -> list[Case]:
    rng = np.random.default_rng(22)
    return [
        Case("float64 z(100, 5), wide", {"z": 4.0 * rng.normal(size=(100, 5)), "threshold": 0.05}),
        Case("float32 z(60, 3), shifted", {"z": (3.0 + 2.0 * rng.normal(size=(60, 3))).astype(np.float32),
                                           "threshold": 0.05}, F32_TOL),
        Case("standardized z(200, 4)", {"z": rng.normal(size=(200, 4)), "threshold": 0.05}),
        Case("threshold 0.2, z(50, 2)", {"z": 2.0 * rng.normal(size=(50, 2)), "threshold": 0.2}),
        Case("one unit z(40,)", {"z": rng.uniform(-8.0, 8.0, size=40), "threshold": 0.1}),
    ]


def _sat_call(fn: Callable[..., Any], i: Mapping[str, Any], ns: Mapping[str, Any]) -> dict[str, Any]:
    return {"fraction": np.asarray(fn(i["z"], i["threshold"]), dtype=np.float64)}


def _sat_diagnose(case: Case, got: dict[str, Any], exp: dict[str, Any]) -> str | None:
    f = got.get("fraction")
    if f is not None and f.shape != () and f.size > 1:
        return "Return one number for the whole array (np.mean over every entry), not one per unit or example."
    return None


register(Exercise(
    id="saturated_fraction",
    notebook=NOTEBOOK,
    solution=solutions.saturated_fraction,
    cases=_sat_cases,
    call=_sat_call,
    diagnose=_sat_diagnose,
    forbidden=(*NUMPY_FORBIDDEN, "scipy"),
    hints=(
        "Write the sigmoid as s(z) = 1 / (1 + e^(−z)) and differentiate it; try to express the "
        "derivative with s(z) itself instead of exponentials.",
        "The key identity: s'(z) = s(z)·(1 − s(z)); it is largest, 1/4, at z = 0 and tends to 0 in both tails.",
        "s = 1 / (1 + np.exp(-z)); the answer is float(np.mean(s * (1 - s) < threshold)).",
    ),
    mistakes=(
        Mistake("sigma not slope", "You compared sigmoid(z) itself with the threshold; saturation is about "
                "the slope: count the entries whose slope sigmoid'(z) is below the threshold.", mistakes.sat_sigma_not_slope),
        Mistake("greater", "You counted the steep entries (slope above the threshold); the saturated ones "
                "are those whose slope sigmoid'(z) is below it.", mistakes.sat_greater),
        Mistake("tanh slope", "1 − sigmoid(z)² is the form of tanh's derivative (1 − tanh²), not the "
                "sigmoid's: call hint(\"saturated_fraction\") for the sigmoid's.", mistakes.sat_tanh_slope),
        Mistake("percent", "You returned a percentage; return the fraction, a number in [0, 1].",
                mistakes.sat_percent),
    ),
))
