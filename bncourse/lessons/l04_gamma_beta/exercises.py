"""Exercises of notebook 04 (γ and β): recover_identity, bias_grad_through_bn, scale_invariance_check.

* ``recover_identity(x, eps) -> (gamma, beta)``: the γ, β for which BN returns x
  (solution: :func:`bncourse.lessons.l04_gamma_beta.solutions.recover_identity`).
* ``bias_grad_through_bn(x, W, b, gamma, beta, dout, eps) -> (dW, db)``: gradients of a
  linear layer followed by BN; db vanishes
  (solution: :func:`bncourse.lessons.l04_gamma_beta.solutions.bias_grad_through_bn`).
* ``scale_invariance_check(x, W, gamma, beta, dout, scales, eps) -> (out_diff, grad_norm)``:
  BN(a·Wx) = BN(Wx) and ‖∂L/∂(aW)‖ ∝ 1/a
  (solution: :func:`bncourse.lessons.l04_gamma_beta.solutions.scale_invariance_check`).

The last two may use :mod:`bncourse.reference`'s batch-norm passes (the notebook imports
them).  Each ``Mistake`` wraps a wrong implementation from
:mod:`bncourse.lessons.l04_gamma_beta.mistakes`; a student's outputs matching it gives the
diagnosis.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from bncourse.grading.cases import F32_TOL, F64_TOL
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

NOTEBOOK = "04_gamma_beta"
SCALES = np.array([0.01, 0.1, 1.0, 10.0, 100.0])


def _pair(result: Any, names: tuple[str, str], fn_name: str) -> dict[str, Any]:
    if not isinstance(result, tuple) or len(result) != 2:
        raise ContractError(f"{fn_name} must return a tuple {names}, got {type(result).__name__}")
    return dict(zip(names, result, strict=True))


# --- recover_identity ------------------------------------------------------------------

def _identity_cases() -> list[Case]:
    rng = np.random.default_rng(40)
    return [
        Case("float64 x(8, 3)", {"x": rng.normal(size=(8, 3))}),
        Case("float32 x(5, 4)", {"x": rng.normal(size=(5, 4)).astype(np.float32)}, F32_TOL),
        Case("N=2 D=1", {"x": rng.normal(size=(2, 1))}),
        Case("large mean/scale", {"x": 50.0 * rng.normal(size=(16, 3)) + 1000.0}),
        Case("tiny variance (eps matters)", {"x": 1e-3 * rng.normal(size=(16, 3))}),
    ]


def _identity_call(fn: Callable[..., Any], inputs: Mapping[str, Any], ns: Mapping[str, Any]) -> dict[str, Any]:
    return _pair(fn(inputs["x"]), ("gamma", "beta"), "recover_identity")


register(Exercise(
    id="recover_identity",
    notebook=NOTEBOOK,
    solution=solutions.recover_identity,
    cases=_identity_cases,
    call=_identity_call,
    forbidden=NUMPY_FORBIDDEN,
    hints=(
        "Ask for BN(x) = γ·x̂ + β = x and solve for γ and β, one feature at a time: what must multiply x̂ "
        "to give x − μ back, and what must then be added?",
        "x̂ = (x − μ)/√(σ² + ε), so x = √(σ² + ε)·x̂ + μ; compare term by term with γ·x̂ + β. σ² is the "
        "biased variance of the batch (divide by N), as in the forward pass.",
        "gamma = np.sqrt(x.var(axis=0) + eps) and beta = x.mean(axis=0), in x's dtype.",
    ),
    mistakes=(
        Mistake("swapped", "gamma and beta are swapped: gamma is the scale √(σ²+ε), beta the shift μ.", mistakes.id_swapped),
        Mistake("no_eps", "gamma must undo the division by √(σ²+ε), so it needs the +ε too: gamma = √(var + eps).", mistakes.id_no_eps),
        Mistake("unbiased", "Use the biased variance (divide by N, as the forward pass does), not the unbiased one.", mistakes.id_unbiased),
        Mistake("no_sqrt", "gamma is a standard deviation, √(var + eps), not the variance itself.", mistakes.id_no_sqrt),
    ),
))


# --- bias_redundancy -------------------------------------------------------------------

def _bias_cases() -> list[Case]:
    rng = np.random.default_rng(41)

    def case(name: str, n: int, d_in: int, d: int, dtype: type = np.float64, scale: float = 1.0,
             tol: tuple[float, float] = F64_TOL) -> Case:
        inputs: dict[str, Any] = {
            "x": (scale * rng.normal(size=(n, d_in))).astype(dtype),
            "W": rng.normal(size=(d, d_in)).astype(dtype),
            "b": rng.normal(size=d).astype(dtype),
            "gamma": rng.uniform(0.5, 2.0, size=d).astype(dtype),
            "beta": rng.normal(size=d).astype(dtype),
            "dout": rng.normal(size=(n, d)).astype(dtype),
        }
        return Case(name, inputs, tol)

    return [
        case("float64 N=8 D_in=5 D=4", 8, 5, 4),
        case("float32 N=6 D_in=3 D=2", 6, 3, 2, np.float32, tol=F32_TOL),
        case("N=2 D=1", 2, 3, 1),
        case("large inputs", 16, 4, 3, scale=100.0),
    ]


def _bias_call(fn: Callable[..., Any], i: Mapping[str, Any], ns: Mapping[str, Any]) -> dict[str, Any]:
    return _pair(fn(i["x"], i["W"], i["b"], i["gamma"], i["beta"], i["dout"]), ("dW", "db"), "bias_grad_through_bn")


def _bias_diagnose(case: Case, got: dict[str, Any], exp: dict[str, Any]) -> str | None:
    db = got.get("db")
    if db is not None and db.ndim == 2 and db.shape[1:] == exp["db"].shape:
        return "db must be summed over the batch (axis 0): the bias is shared by every example."
    dW = got.get("dW")
    if dW is not None and dW.shape == exp["dW"].shape[::-1] and dW.shape != exp["dW"].shape:
        return "dW has W's transposed shape: for z = x Wᵀ + b, dW = dzᵀ x (shape (D, D_in))."
    return None


register(Exercise(
    id="bias_grad_through_bn",
    notebook=NOTEBOOK,
    solution=solutions.bias_grad_through_bn,
    cases=_bias_cases,
    call=_bias_call,
    diagnose=_bias_diagnose,
    hints=(
        "Forward first (z = x Wᵀ + b, then BN), then backward: dout goes back through BN to dz, and "
        "from dz to W and b.",
        "dz is BN's input gradient (batchnorm_backward_alt on the cache batchnorm_forward returns for z). "
        "Each example uses the same W and b (z_i = W x_i + b), so their gradients are sums over the batch.",
        "dW = dz.T @ x (shape (D, D_in)) and db = dz.sum(axis=0). Then look at db, and recall "
        "notebook 03's first conservation law.",
    ),
    mistakes=(
        Mistake("skip_bn", "You passed dout straight to the linear layer: first backpropagate through batch norm "
                "(dz = BN backward of dout), then dW = dzᵀx and db = Σ dz.", mistakes.bias_skip_bn),
        Mistake("constant_stats", "Your dz treats μ and σ as constants; backpropagate through them "
                "(use the full BN backward) — then Σ dz = 0 and db vanishes.", mistakes.bias_constant_stats),
    ),
    forbidden=("torch", "bncourse.nn"),
))


# --- scale_invariance_check ------------------------------------------------------------

def _scale_cases() -> list[Case]:
    rng = np.random.default_rng(42)

    def case(name: str, n: int, d_in: int, d: int, dtype: type = np.float64,
             tol: tuple[float, float] = F64_TOL) -> Case:
        return Case(name, {
            "x": rng.normal(size=(n, d_in)).astype(dtype),
            "W": rng.normal(size=(d, d_in)).astype(dtype),
            "gamma": rng.uniform(0.5, 2.0, size=d).astype(dtype),
            "beta": rng.normal(size=d).astype(dtype),
            "dout": rng.normal(size=(n, d)).astype(dtype),
            "scales": SCALES.astype(dtype),
        }, tol)

    return [
        case("float64 N=16 D_in=5 D=4", 16, 5, 4),
        case("float32 N=8 D_in=3 D=2", 8, 3, 2, np.float32, (1e-3, 1e-4)),
        case("N=2 D=1", 2, 2, 1),
    ]


def _scale_call(fn: Callable[..., Any], i: Mapping[str, Any], ns: Mapping[str, Any]) -> dict[str, Any]:
    result = fn(i["x"], i["W"], i["gamma"], i["beta"], i["dout"], i["scales"])
    return _pair(result, ("out_diff", "grad_norm"), "scale_invariance_check")


register(Exercise(
    id="scale_invariance_check",
    notebook=NOTEBOOK,
    solution=solutions.scale_invariance_check,
    cases=_scale_cases,
    call=_scale_call,
    hints=(
        "Loop over the scales: for each a, use the weights W_a = a·W, run BN on x W_aᵀ, compare the output "
        "with a = 1, and backpropagate dout to W_a.",
        "The gradient with respect to the scaled weights is ∂L/∂W_a = dzᵀx, with dz from the BN backward "
        "of the scaled forward's cache; its norm is the Frobenius norm.",
        "out_diff[k] = np.abs(out_a - out_1).max() and grad_norm[k] = np.sqrt(np.sum((dz.T @ x) ** 2)).",
    ),
    mistakes=(
        Mistake("wrt_unscaled", "Your gradient norms do not change with a: you differentiated with respect to W, "
                "not the scaled weights W_a = a·W (∂L/∂W_a = dzᵀx, which shrinks like 1/a).", mistakes.scale_wrt_unscaled,
                outputs=("grad_norm",)),
        Mistake("constant_stats", "Your dz treats μ and σ as constants; use the full BN backward.",
                mistakes.scale_constant_stats, outputs=("grad_norm",)),
    ),
    forbidden=("torch", "bncourse.nn"),
))

