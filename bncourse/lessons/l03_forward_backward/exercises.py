"""Exercises of notebook 03: the batch-norm forward, its two backwards, a gradient checker.

Declarations only: the seeded cases, how each exercise is called, the diagnose hooks and
the ``Mistake`` s with their diagnoses.  The instructor's implementations are in
:mod:`.solutions` (re-exported from :mod:`bncourse.reference`), the wrong implementations
the ``Mistake`` s run are in :mod:`.mistakes`.

==========================  ==========================  ============================================
id                          the student writes          checked against
==========================  ==========================  ============================================
``batchnorm_forward``       ``batchnorm_forward``       :func:`.solutions.batchnorm_forward`
``batchnorm_backward``      ``batchnorm_backward``      :func:`.solutions.batchnorm_backward`
``batchnorm_backward_alt``  ``batchnorm_backward_alt``  :func:`.solutions.batchnorm_backward_alt`
``numerical_gradient``      ``numerical_gradient``      :func:`.solutions.numerical_gradient`
==========================  ==========================  ============================================

The cache of ``batchnorm_forward`` is the student's own business: only ``out`` is
compared.  The backward exercises therefore run the student's *own* forward (looked up by
name, see ``Exercise.namespace``) to get a cache their backward understands, and report
the forward's output as ``forward_out`` next to ``dx, dgamma, dbeta``.  ``forward_out`` is
graded too: "batchnorm_backward passed" means the forward/backward *pair* is right, which is
what the notebook's later experiments rely on when they use the student's versions
(``best_available``).  A wrong forward is blamed by name ("fix batchnorm_forward first") instead
of being reported as a wrong gradient.

Each ``Mistake`` below is a wrong implementation a student is likely to write; when the
student's outputs match its outputs, its diagnosis (with the fix) is shown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from bncourse.grading.cases import (
    affine_case,
    backward_call,
    backward_diagnose,
    forward_call,
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

__all__ = ["GRAD_CHECK_FUNCTIONS", "bn_cases", "grad_check_cases"]



# --------------------------------------------------------------------------- cases


def _bn_case(
    name: str,
    shape: tuple[int, int],
    seed: int,
    dtype: type = np.float64,
    scale: float = 1.0,
    shift: float = 0.0,
) -> Case:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * scale + shift + rng.standard_normal(shape[1])  # per-feature offsets
    return affine_case(name, x, rng, dtype)


def bn_cases() -> list[Case]:
    """The seeded cases shared by ``batchnorm_forward``, ``batchnorm_backward`` and ``batchnorm_backward_alt``.

    float64 and float32, N = 2 (the smallest batch BN allows), D = 1, odd shapes, a large
    mean and scale (x·100 + 1000), and a tiny variance (x·1e-3, σ² ≈ 1e-6 < ε = 1e-5) where
    ε changes the answer completely.
    """
    return [
        _bn_case("float64 x(4, 3)", (4, 3), seed=0),
        _bn_case("float32 x(16, 5)", (16, 5), seed=1, dtype=np.float32),
        _bn_case("N=2 x(2, 4)", (2, 4), seed=2),
        _bn_case("D=1 x(8, 1)", (8, 1), seed=3),
        _bn_case("odd x(5, 7)", (5, 7), seed=4),
        _bn_case("large mean/scale x(6, 4)", (6, 4), seed=5, scale=100.0, shift=1000.0),
        _bn_case("tiny variance x(6, 3)", (6, 3), seed=6, scale=1e-3),
    ]


# --------------------------------------------------------------------------- calls
# The backwards run on the student's own batchnorm_forward (looked up by name); a wrong
# forward is blamed before any diagnosis of the gradients.


def _diagnose_param_grads(case: Case, got: Mapping[str, Array], exp: Mapping[str, Array]) -> str | None:
    """A diagnosis that output matching cannot give: dgamma/dbeta not summed over the batch."""
    n, d = np.shape(case.inputs["x"])
    for name in ("dgamma", "dbeta"):
        g = got.get(name)
        if g is None:
            continue
        if g.shape == (n, d) and n != 1:
            return (
                f"{name} has shape {g.shape}: γ and β are shared by every example, so their "
                f"gradients are sums over the batch — sum over the batch axis (axis=0) to get shape ({d},)."
            )
        if g.shape == (1, d):
            return f"{name} has shape (1, {d}); drop keepdims=True so it has the shape ({d},) of the parameter."
    return None


_call_forward = forward_call("batchnorm_forward")
_call_backward = backward_call("batchnorm_forward", "batchnorm_forward")
_diagnose_backward = backward_diagnose("batchnorm_forward", "batchnorm_forward", _diagnose_param_grads)


# --------------------------------------------------------------------------- forward mistakes

FORWARD_MISTAKES = (
    Mistake("unbiased variance", "Your variance is the unbiased one (ddof=1): batch norm divides by N, "
            "not N-1 — use x.var(axis=0) or ((x - mu)**2).mean(axis=0).",
            mistakes.fwd_unbiased_variance),
    Mistake("seed 003 formula", "You divided by the variance itself with no ε (the sloppy formula of one "
            "lecture note): divide by the standard deviation np.sqrt(var + eps).",
            mistakes.fwd_divide_by_var_no_eps),
    Mistake("no square root", "You divided by var + eps: divide by the standard deviation, np.sqrt(var + eps).",
            mistakes.fwd_no_square_root),
    Mistake("missing eps", "ε is missing: use np.sqrt(var + eps), which also keeps a constant feature "
            "from dividing by zero.",
            mistakes.fwd_missing_eps),
    Mistake("eps outside the sqrt", "ε belongs inside the square root: np.sqrt(var + eps), not "
            "np.sqrt(var) + eps (PyTorch's convention).", mistakes.fwd_eps_outside),
    Mistake("per-example statistics", "You normalized each example over its features (axis=1 — that is "
            "layer norm): batch norm takes μ and σ² per feature, over the batch (axis=0).",
            mistakes.fwd_per_example_statistics),
    Mistake("statistics over everything", "You computed one μ and σ² over the whole array: batch norm "
            "needs one per feature — reduce over axis=0 only.",
            mistakes.fwd_statistics_over_everything),
    Mistake("gamma and beta swapped", "γ and β are swapped: the output is gamma * x_hat + beta "
            "(γ scales, β shifts).", mistakes.fwd_gamma_beta_swapped),
    Mistake("no affine", "You returned x̂: the output is y = gamma * x_hat + beta.",
            mistakes.fwd_no_affine),
)


# --------------------------------------------------------------------------- backward mistakes
# They receive the reference cache (the exercise's namespace holds the reference forward);
# a student's outputs match them whenever the student's forward is right.

BACKWARD_MISTAKES = (
    Mistake("mu and var treated as constants",
            "You treated μ and σ² as constants (dx = γ·dout/√(σ²+ε)): they are functions of every "
            "x in the batch, so the gradient must also flow back through them (the graph's steps 4–7; "
            "the hint ladder of batchnorm_backward_alt derives the closed form).",
            mistakes.bwd_constant_stats, outputs=("dx",)),
    Mistake("no path through the variance",
            "dx is missing the path through σ²: the term of the closed form that involves Σ(dy·x̂), "
            "steps 4 and 5 of the graph.",
            mistakes.bwd_no_var_path, outputs=("dx",)),
    Mistake("no path through the mean",
            "dx is missing the path through μ: the term of the closed form that involves Σdy, "
            "steps 6 and 7 of the graph.",
            mistakes.bwd_no_mean_path, outputs=("dx",)),
    Mistake("m-1 in the variance node",
            "dx uses 1/(m−1) in the derivative of σ²: the forward divides by m, so "
            "∂σ²/∂x_i = 2(x_i − μ)/m.", mistakes.bwd_unbiased, outputs=("dx",)),
    Mistake("dx without gamma",
            "dx is missing the factor γ: y = γx̂ + β, so dx̂ = γ·dout before going back through x̂.",
            mistakes.bwd_no_gamma, outputs=("dx",)),
    Mistake("dgamma and dbeta swapped",
            "dgamma and dbeta are swapped: dgamma = Σ dout·x̂ and dbeta = Σ dout (over the batch).",
            mistakes.bwd_swapped, outputs=("dgamma", "dbeta")),
    Mistake("mean instead of sum",
            "dgamma/dbeta are averaged over the batch: γ and β are used by every example, so their "
            "gradients are sums — .sum(axis=0), not .mean(axis=0).",
            mistakes.bwd_mean_not_sum, outputs=("dgamma", "dbeta")),
)


# --------------------------------------------------------------------------- grad_check


def _bn_out(gamma: Array, beta: Array) -> Callable[[Array], Array]:
    """x ↦ BN(x) with the torch stand-in, so the case needs no solution in either edition."""
    def f(x: Array) -> Array:
        from bncourse.oracle import batchnorm_forward  # torch, imported only when a case runs

        out: Array = batchnorm_forward(x, gamma, beta)[0]
        return out

    return f


GRAD_CHECK_FUNCTIONS: dict[str, Callable[[Mapping[str, Any]], Callable[[Array], Array]]] = {
    "tanh": lambda inp: np.tanh,
    "cube": lambda inp: lambda x: x**3,
    "coupled": lambda inp: lambda x: np.sin(x) * x.sum(axis=0, keepdims=True),
    "batchnorm": lambda inp: _bn_out(inp["gamma"], inp["beta"]),
}
"""Functions f the ``numerical_gradient`` cases differentiate, by name (cases must be plain data)."""


def _grad_case(name: str, fn_name: str, shape: tuple[int, int], seed: int) -> Case:
    rng = np.random.default_rng(seed)
    inputs: dict[str, Any] = {
        "fn_name": fn_name,
        "x": 1.5 * rng.standard_normal(shape),
        "dout": rng.standard_normal(shape),  # not all ones: forgetting dout must show
    }
    if fn_name == "batchnorm":
        inputs["gamma"] = rng.uniform(0.5, 2.0, shape[1])
        inputs["beta"] = rng.standard_normal(shape[1])
    # Two correct centered-difference codes with the same h differ only by rounding,
    # ~1e-16·|L|/h ≈ 1e-10; a forward difference is off by ~h·f''/2 ≈ 1e-5.
    return Case(name=name, inputs=inputs, tolerance=(1e-7, 1e-8))


def grad_check_cases() -> list[Case]:
    """float64 cases: elementwise f (tanh, x³), a coupled f, and the BN forward itself."""
    return [
        _grad_case("tanh x(3, 4)", "tanh", (3, 4), seed=10),
        _grad_case("x**3 x(2, 5)", "cube", (2, 5), seed=11),
        _grad_case("coupled x(4, 3)", "coupled", (4, 3), seed=12),
        _grad_case("batchnorm x(5, 3)", "batchnorm", (5, 3), seed=13),
    ]


def _call_grad_check(fn: Callable[..., Any], inputs: Mapping[str, Any], ns: Mapping[str, Any]) -> dict[str, Any]:
    f = GRAD_CHECK_FUNCTIONS[inputs["fn_name"]](inputs)
    x = inputs["x"]
    before = x.copy()
    grad = fn(f, x, inputs["dout"], 1e-5)
    if not np.array_equal(x, before):
        raise ContractError(
            "numerical_gradient left x changed: after perturbing x[i], put the original value "
            "back (or perturb a copy of x), otherwise every later entry is measured at the wrong point."
        )
    return {"dx": grad}


GRAD_CHECK_MISTAKES = (
    Mistake("forward difference",
            "This is a one-sided (forward) difference (f(x+h) − f(x))/h, whose error is O(h): use the "
            "centered difference (f(x+h) − f(x−h))/(2h), whose error is O(h²).",
            mistakes.grad_forward_difference),
    Mistake("dout ignored",
            "dout is ignored: compute the change of L = Σ f(x)·dout, i.e. "
            "np.sum((f(x+h) − f(x−h)) * dout) / (2h), not the change of Σ f(x).",
            mistakes.grad_no_dout),
    Mistake("divided by h",
            "Your gradient is twice too large: the centered difference spans 2h, so divide by 2*h.",
            mistakes.grad_h_not_2h),
)


# --------------------------------------------------------------------------- hint ladders
# A direction, then the key identity, last the formula: hint("id") prints the next rung.

FORWARD_HINTS = (
    "Every statistic is per feature: reduce over the batch axis (axis=0), so mu and var have shape (D,).",
    "The variance is the biased one (divide by N, as the batch itself is what gets normalized), "
    "and ε goes inside the square root.",
    "x_hat = (x - mu) / np.sqrt(var + eps) and out = gamma * x_hat + beta; put into the cache what your "
    "backward will read (x_hat, x - mu, 1/np.sqrt(var + eps), gamma).",
)

BACKWARD_HINTS = (
    "Visit the seven nodes of section 4 from y back to x; at each, multiply the gradient arriving from "
    "above by the node's local derivative.",
    "What every example uses (γ, β, s, μ) collects a sum over the batch (axis=0); a node that feeds two "
    "others (x_c feeds x̂ and σ², x feeds x_c and μ) collects the sum of both gradients.",
    "dbeta = Σ dout, dgamma = Σ dout·x̂, dx̂ = γ·dout, dx_c = s·dx̂, ds = Σ dx̂·x_c, dσ² = −½·s³·ds, "
    "dx_c += (2/m)·x_c·dσ², dμ = −Σ dx_c, dx = dx_c + dμ/m.",
)

BACKWARD_ALT_HINTS = (
    "Work on one feature, with s = (σ²+ε)^(−1/2). By the chain rule dx_i = Σ_j γ·dy_j·∂x̂_j/∂x_i: "
    "first find ∂μ/∂x_i, ∂σ²/∂x_i and ∂s/∂x_i = −½·s³·∂σ²/∂x_i, then differentiate x̂_j = (x_j − μ)·s.",
    "The Jacobian: ∂x̂_j/∂x_i = (s/m)·(m·δ_ij − 1 − x̂_i·x̂_j) (using ∂μ/∂x_i = 1/m and "
    "∂σ²/∂x_i = 2(x_i − μ)/m). Put it into the sum: two of the three terms are Σ_j dy_j and Σ_j dy_j·x̂_j.",
    "dx = γ·s/m·(m·dout − dbeta − x̂·dgamma), with dbeta = Σ dout and dgamma = Σ dout·x̂ over axis 0.",
)

GRAD_CHECK_HINTS = (
    "Change one entry of x at a time (loop over np.ndindex(x.shape)), in your own copy of x, and "
    "measure how L = Σ f(x)·dout changes.",
    "The centered difference (L(x + h·e_k) − L(x − h·e_k)) / (2h) has error O(h²); the one-sided one only O(h).",
    "For each k: old = x[k]; x[k] = old + h → L⁺; x[k] = old − h → L⁻; x[k] = old; grad[k] = (L⁺ − L⁻) / (2*h).",
)


# --------------------------------------------------------------------------- registration


register(Exercise(
    id="batchnorm_forward",
    notebook="03_forward_backward",
    solution=solutions.batchnorm_forward,
    cases=bn_cases,
    call=_call_forward,
    mistakes=FORWARD_MISTAKES,
    forbidden=NUMPY_FORBIDDEN,
    hints=FORWARD_HINTS,
))

_BACKWARD_NS = {"batchnorm_forward": solutions.batchnorm_forward}

register(Exercise(
    id="batchnorm_backward",
    notebook="03_forward_backward",
    solution=solutions.batchnorm_backward,
    cases=bn_cases,
    call=_call_backward,
    mistakes=BACKWARD_MISTAKES,
    diagnose=_diagnose_backward,
    namespace=_BACKWARD_NS,
    forbidden=NUMPY_FORBIDDEN,
    hints=BACKWARD_HINTS,
))

register(Exercise(
    id="batchnorm_backward_alt",
    notebook="03_forward_backward",
    solution=solutions.batchnorm_backward_alt,
    cases=bn_cases,
    call=_call_backward,
    mistakes=BACKWARD_MISTAKES,
    diagnose=_diagnose_backward,
    namespace=_BACKWARD_NS,
    forbidden=NUMPY_FORBIDDEN,
    hints=BACKWARD_ALT_HINTS,
))

register(Exercise(
    id="numerical_gradient",
    notebook="03_forward_backward",
    solution=solutions.numerical_gradient,
    cases=grad_check_cases,
    call=_call_grad_check,
    mistakes=GRAD_CHECK_MISTAKES,
    forbidden=(*NUMPY_FORBIDDEN, "bncourse.reference.gradcheck"),
    hints=GRAD_CHECK_HINTS,
))
