"""Exercises of notebook 01: standardization and the cost of a badly conditioned bowl.

========================  ==========================  ==============================================
id                        the student writes          checked against
========================  ==========================  ==============================================
``standardize``           ``standardize``             :func:`bncourse.lessons.l01_feature_scaling.solutions.standardize`
``gd_steps_to_converge``  ``gd_steps_to_converge``    :func:`bncourse.lessons.l01_feature_scaling.solutions.gd_steps_to_converge`
========================  ==========================  ==============================================

``standardize(x_train, x_test, eps=1e-8) -> (x_train_std, x_test_std, mean, std)``:
statistics per feature over the training examples (population std, ``ddof=0``), reused
on the test set; a feature whose training std is ``<= eps`` gets std 1 (no NaN), and the
returned ``std`` is the divisor used.

``gd_steps_to_converge(x, y, lr, tol=1e-6, max_steps=100_000) -> int``: full-batch GD on
``L = ½·mean((x·w + b − y)²)`` from ``w = 0, b = 0``; the number of updates until
``‖∇L‖₂ <= tol`` (0 if the start already satisfies it), or ``-1`` if that does not happen
within ``max_steps`` updates.  Counts are compared exactly (they are integers).

Each ``Mistake`` below wraps a wrong implementation a student is likely to write (from
:mod:`bncourse.lessons.l01_feature_scaling.mistakes`); when the student's outputs match
its outputs, its diagnosis (with the fix) is shown.
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
from bncourse.validation import Array

mistakes = LessonPart(__name__, "mistakes")
solutions = LessonPart(__name__, "solutions")

__all__ = ["GD_MISTAKES", "STANDARDIZE_MISTAKES", "gd_cases", "standardize_cases"]

_LESSON = "bncourse.lessons.l01_feature_scaling"
GD_FORBIDDEN = (*NUMPY_FORBIDDEN, f"{_LESSON}.experiments")  # experiments.gd_steps_closed_form gives the same count


# =========================================================================== standardize


def _std_case(
    name: str,
    n_train: int,
    n_test: int,
    scales: list[float],
    shifts: list[float],
    seed: int,
    dtype: type = np.float64,
    test_shift: float = 0.0,
    constant: Mapping[int, float] | None = None,
) -> Case:
    rng = np.random.default_rng(seed)
    d = len(scales)
    sc, sh = np.asarray(scales), np.asarray(shifts)
    x_train = rng.standard_normal((n_train, d)) * sc + sh
    x_test = rng.standard_normal((n_test, d)) * sc + sh + test_shift * sc
    for j, value in (constant or {}).items():
        x_train[:, j] = value  # exactly representable, so its std is exactly 0
    return Case(name, {"x_train": x_train.astype(dtype), "x_test": x_test.astype(dtype)}, tolerance(dtype))


def standardize_cases() -> list[Case]:
    """float64 and float32, N = 2, D = 1, odd shapes, large means and mixed scales, a
    shifted test set, a single test example, constant training features (std exactly 0)."""
    return [
        _std_case("float64 train(20, 3) test(7, 3)", 20, 7, [1.0, 10.0, 0.1], [0.0, 5.0, -3.0], seed=0),
        _std_case("float32 train(16, 4) test(5, 4)", 16, 5, [2.0, 0.5, 30.0, 1.0], [1.0, -2.0, 0.0, 4.0],
                  seed=1, dtype=np.float32),
        _std_case("N=2 train(2, 3) test(4, 3)", 2, 4, [1.0, 3.0, 0.2], [0.5, 0.0, 1.0], seed=2),
        _std_case("D=1 train(9, 1) test(3, 1)", 9, 3, [4.0], [-1.0], seed=3),
        _std_case("large mean/mixed scales train(11, 3) test(5, 3)", 11, 5, [1e3, 1.0, 1e-3],
                  [1e4, -50.0, 0.5], seed=4),
        _std_case("shifted test set train(30, 2) test(6, 2)", 30, 6, [1.0, 100.0], [0.0, 0.0], seed=5,
                  test_shift=3.0),
        _std_case("one test example train(8, 2) test(1, 2)", 8, 1, [1.0, 5.0], [2.0, 0.0], seed=6),
        _std_case("constant features train(10, 4) test(4, 4)", 10, 4, [1.0, 1.0, 2.0, 1.0],
                  [0.0, 0.0, 1.0, 0.0], seed=7, constant={1: 3.0, 3: 0.0}),
    ]


def _call_standardize(fn: Callable[..., Any], inputs: Mapping[str, Any], ns: Mapping[str, Any]) -> dict[str, Any]:
    result = fn(inputs["x_train"], inputs["x_test"])
    if not isinstance(result, (tuple, list)) or len(result) != 4:
        raise ContractError(
            "standardize must return four things `return x_train_std, x_test_std, mean, std`, "
            f"got {describe(result)}."
        )
    x_train_std, x_test_std, mean, std = result
    return {"x_train_std": x_train_std, "x_test_std": x_test_std, "mean": mean, "std": std}


def _has_constant_feature(case: Case) -> bool:
    return bool(np.any(np.asarray(case.inputs["x_train"]).std(axis=0) == 0))


def _diagnose_standardize(case: Case, got: Mapping[str, Array], exp: Mapping[str, Array]) -> str | None:
    d = exp["mean"].shape[0]
    for name in ("mean", "std"):
        g = got.get(name)
        if g is not None and g.shape == (1, d):
            return f"{name} has shape (1, {d}); drop keepdims=True so it has shape ({d},), one value per feature."
    if _has_constant_feature(case):
        for g in got.values():
            if g.dtype.kind == "f" and np.isnan(g).any():
                return (
                    "A constant training feature has std 0, so (x − mean)/0 gives NaN: as documented, "
                    "replace a std <= eps by 1, e.g. std = np.where(std <= eps, 1.0, std)."
                )
    return None


STANDARDIZE_MISTAKES = (
    Mistake("test statistics",
            "x_test_std was standardized with the test set's own mean/std: reuse the training "
            "statistics, (x_test - mean) / std — the model must see test inputs transformed exactly "
            "like its training inputs (and a single test example has no std of its own).",
            mistakes.std_test_stats),
    Mistake("pooled statistics",
            "Your mean/std include the test set (computed on train and test together): that leaks "
            "test data into training — compute them on x_train only.",
            mistakes.std_pooled),
    Mistake("per-example statistics",
            "You standardized each example over its features (axis=1): standardization is per feature, "
            "across the examples — reduce over axis=0.",
            mistakes.std_per_example, outputs=("x_train_std", "x_test_std")),
    Mistake("statistics over everything",
            "You used one mean and one std for the whole array: each feature needs its own — "
            "reduce over axis=0 only.",
            mistakes.std_over_everything, outputs=("x_train_std", "x_test_std")),
    Mistake("unbiased std",
            "Your std is the unbiased one (ddof=1, divide by n−1): the course uses the population std "
            "(np.std's default ddof=0, divide by n), as batch norm does.",
            mistakes.std_unbiased),
    Mistake("divided by the variance",
            "You divided by the variance: divide by the standard deviation σ = √var (np.std).",
            mistakes.std_variance, outputs=("x_train_std", "x_test_std")),
    Mistake("eps added to the std",
            "You added eps to the std: here eps is a threshold — a std <= eps is replaced by 1 "
            "(np.where(std <= eps, 1.0, std)) and every other std is used as it is.",
            mistakes.std_eps_added),
    Mistake("eps inside the square root",
            "You divided by √(var + eps), batch norm's formula: here eps is a threshold — a std <= eps "
            "is replaced by 1 (np.where(std <= eps, 1.0, std)) and every other std is used as it is.",
            mistakes.std_eps_in_sqrt),
    Mistake("constant feature zeroed",
            "You set a constant feature to 0 on the test set too: the documented policy divides it by 1, "
            "so the test column is x_test − mean (only the training column is exactly 0).",
            mistakes.std_constant_zeroed),
    Mistake("raw std returned",
            "Return the std you divided by (1 for a constant feature), so that (x - mean) / std "
            "reproduces your output on new data.",
            mistakes.std_raw_std_returned),
    Mistake("mean and std swapped",
            "mean and std are swapped: return x_train_std, x_test_std, mean, std in that order.",
            mistakes.std_swapped),
)


# =========================================================================== gd_steps_to_converge


def _max_stable_lr(x: Array) -> float:
    """``2/λmax`` of the Hessian ``X̃ᵀX̃/n`` (``X̃ = [x, 1]``): GD diverges above it."""
    xt = np.hstack([x, np.ones((x.shape[0], 1))])
    return 2.0 / float(np.linalg.eigvalsh(xt.T @ xt / xt.shape[0])[-1])


def _gd_case(
    name: str,
    x: Array,
    y: Array,
    *,
    lr: float | None = None,
    lr_fraction: float = 0.5,
    tol: float = 1e-6,
    max_steps: int = 2000,
    dtype: type = np.float64,
) -> Case:
    x64 = np.asarray(x, dtype=np.float64)
    if lr is None:
        lr = lr_fraction * _max_stable_lr(x64)
    inputs = {"x": x64.astype(dtype), "y": np.asarray(y, dtype=np.float64).astype(dtype),
              "lr": float(lr), "tol": float(tol), "max_steps": int(max_steps)}
    return Case(name, inputs, (0.0, 0.0))


def gd_cases() -> list[Case]:
    """Standardized and badly scaled inputs, float32, D = 1, N = 2 (under-determined), a
    large-mean feature (the bias couples to it), a start that is already converged, too few
    steps, and a learning rate above 2/λmax.  Each needs at most a few hundred steps."""
    rng = np.random.default_rng(10)
    cases = []
    x = rng.standard_normal((30, 2))
    y = x @ np.array([-1.0, 2.0]) + 1.5  # noiseless: the loss itself goes to 0 too
    cases.append(_gd_case("noiseless x(30, 2), lr=0.5", x, y, lr=0.5))
    x = rng.standard_normal((50, 2))
    y = x @ np.array([1.5, -2.0]) + 0.5 + 0.1 * rng.standard_normal(50)
    cases.append(_gd_case("standardized x(50, 2), lr=0.5", x, y, lr=0.5))
    x = rng.standard_normal((30, 2)) + np.array([2.0, 0.0])
    y = x @ np.array([1.0, 1.0]) - 3.0 + 0.1 * rng.standard_normal(30)
    cases.append(_gd_case("large-mean feature x(30, 2), lr=0.9/λmax", x, y, lr_fraction=0.45, tol=1e-4))
    x = rng.standard_normal((100, 2)) * np.array([1.0, 5.0])
    y = x @ np.array([2.0, 0.6]) + 1.0 + 0.1 * rng.standard_normal(100)
    cases.append(_gd_case("two scales (×5) x(100, 2), lr=1/λmax", x, y, tol=1e-5))
    x = rng.standard_normal((40, 3)) * np.array([1.0, 2.0, 0.5])
    y = x @ np.array([1.0, -1.0, 2.0]) - 0.5 + 0.1 * rng.standard_normal(40)
    cases.append(_gd_case("float32 x(40, 3), lr=0.9/λmax", x, y, lr_fraction=0.45, tol=1e-4,
                          dtype=np.float32))
    x = rng.standard_normal((20, 1)) * 3.0
    y = 0.7 * x[:, 0] + 2.0 + 0.1 * rng.standard_normal(20)
    cases.append(_gd_case("D=1 x(20, 1), lr=1/λmax", x, y))
    x = rng.standard_normal((2, 3))
    y = rng.standard_normal(2)
    cases.append(_gd_case("N=2 x(2, 3) (more weights than examples)", x, y))
    x = rng.standard_normal((10, 2))
    cases.append(_gd_case("already converged (y = 0)", x, np.zeros(10), lr=0.1))
    x = rng.standard_normal((60, 2)) * np.array([1.0, 4.0])
    y = x @ np.array([1.0, 0.5]) + 0.2 * rng.standard_normal(60)
    cases.append(_gd_case("too few steps (max_steps=20)", x, y, max_steps=20))
    cases.append(_gd_case("lr = 1.2·2/λmax (diverges)", x, y, lr_fraction=1.2, max_steps=200))
    return cases


def _call_gd(fn: Callable[..., Any], inputs: Mapping[str, Any], ns: Mapping[str, Any]) -> dict[str, Any]:
    result = fn(inputs["x"], inputs["y"], inputs["lr"], inputs["tol"], inputs["max_steps"])
    if isinstance(result, (tuple, list, dict)) or (isinstance(result, np.ndarray) and result.size != 1):
        raise ContractError(
            f"gd_steps_to_converge must return one integer (the number of steps), got {type(result).__name__}"
            + (f" of length {len(result)}" if hasattr(result, "__len__") else "") + "."
        )
    if isinstance(result, np.ndarray):
        result = result.reshape(())
    return {"steps": result}


def _diagnose_gd(case: Case, got: Mapping[str, Array], exp: Mapping[str, Array]) -> str | None:
    g, e = got.get("steps"), exp["steps"]
    if g is None or g.shape != ():
        return None
    gv, ev = float(g), float(e)
    max_steps = case.inputs["max_steps"]
    if ev == -1 and gv in (max_steps, max_steps + 1):
        return (
            f"GD has not converged after max_steps={max_steps} steps here, and you returned {gv:g}: "
            "return -1 when the tolerance is not reached, so a count always means convergence."
        )
    if ev >= 0 and gv >= 0 and abs(gv - ev) == 1:
        return (
            f"Your count is off by one ({gv:g} instead of {ev:g}): check the gradient norm before each "
            "update and return the number of updates made so far — 0 if the start already has "
            "‖∇L‖ <= tol."
        )
    return None


GD_MISTAKES = (
    Mistake("no bias",
            "Your model has no bias (or never updates it): ŷ = x·w + b, and b has its own gradient "
            "∂L/∂b = mean(r) — update it and include it in the gradient norm.",
            mistakes.gd_no_bias),
    Mistake("norm without the bias",
            "Your gradient norm leaves out ∂L/∂b: the norm is over all parameters, "
            "√(‖∇_w L‖² + (∂L/∂b)²).",
            mistakes.gd_norm_without_bias),
    Mistake("gradient twice too large",
            "Your gradient is twice ∇L: with L = ½·mean(r²) the gradient is xᵀr/n for w and mean(r) "
            "for b, without a factor 2.",
            mistakes.gd_grad_twice),
    Mistake("sum instead of mean",
            "Your gradient sums over the examples instead of averaging: L is a mean, so "
            "∇_w L = xᵀr/n and ∂L/∂b = mean(r) (a sum makes the step n times too large).",
            mistakes.gd_sum_not_mean),
    Mistake("max-abs norm",
            "You measured the gradient with its largest entry: use the Euclidean norm "
            "np.sqrt(np.sum(grad**2)) over all parameters (w and b).",
            mistakes.gd_max_abs_norm),
    Mistake("loss below tol",
            "You stop when the loss is below tol: stop when the gradient norm is — the loss of noisy "
            "data never gets to 0, its gradient does.",
            mistakes.gd_loss_criterion),
)


# =========================================================================== registration

register(Exercise(
    id="standardize",
    notebook="01_feature_scaling",
    solution=solutions.standardize,
    cases=standardize_cases,
    call=_call_standardize,
    mistakes=STANDARDIZE_MISTAKES,
    diagnose=_diagnose_standardize,
    forbidden=NUMPY_FORBIDDEN,
    points=10,
    hints=(
        "Each column of x_train is one feature. Its mean and std come from that column only "
        "(reduce over the examples, axis 0) and only from x_train: x_test is transformed with "
        "the training statistics, never its own.",
        "Population std: divide by n, NumPy's default ddof=0. A constant feature has std 0: replace "
        "every std <= eps by 1 before dividing (np.where), so that feature becomes x - mean, never NaN. "
        "Arrays of shape (d,) broadcast against (n, d) row by row.",
        "mean = x_train.mean(axis=0); std = x_train.std(axis=0); "
        "std = np.where(std <= eps, np.ones_like(std), std); "
        "return (x_train - mean) / std, (x_test - mean) / std, mean, std",
    ),
))

register(Exercise(
    id="gd_steps_to_converge",
    notebook="01_feature_scaling",
    solution=solutions.gd_steps_to_converge,
    cases=gd_cases,
    call=_call_gd,
    mistakes=GD_MISTAKES,
    diagnose=_diagnose_gd,
    forbidden=GD_FORBIDDEN,
    points=10,
    hints=(
        "Loop over t = 0, 1, ..., max_steps: at each t compute the gradient at the current (w, b), "
        "test its norm (return t if it is <= tol), and only then update. The gradient is section 1's "
        "derivative of the loss.",
        "With the residuals r = x @ w + b - y: dL/dw_j = mean over the examples of r_i * x_ij, and "
        "dL/db = mean of r. The norm counts the bias too: sqrt(sum(dL/dw**2) + (dL/db)**2). "
        "A diverging run makes the norm inf or NaN: return -1 then.",
        "r = x @ w + b - y; grad_w = x.T @ r / n; grad_b = r.mean(); "
        "norm = np.sqrt(np.sum(grad_w**2) + grad_b**2); if norm <= tol: return t; "
        "if not np.isfinite(norm): return -1; w = w - lr * grad_w; b = b - lr * grad_b; "
        "after the loop: return -1",
    ),
))
