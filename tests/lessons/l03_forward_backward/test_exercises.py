"""Notebook 03's exercises: solutions pass, mutants are diagnosed, the backward uses the
student's own forward (any cache layout) and blames a wrong forward by name."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from bncourse import reference
from bncourse.grading import check
from bncourse.lessons.l03_forward_backward import exercises as ex
from bncourse.lessons.l03_forward_backward import mistakes
from bncourse.reference import gradcheck
from tests import exercise_helpers
from tests.lessons.l03_forward_backward import mutants

IDS = ("batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt", "numerical_gradient")

test_solution_gets_full_points = exercise_helpers.solutions_get_full_points(IDS, "03_forward_backward")
test_mutant_is_diagnosed = exercise_helpers.mutants_are_diagnosed(mutants.MUTANTS)
test_correct_alternative_gets_full_points = exercise_helpers.correct_versions_get_full_points(mutants.CORRECT)
test_every_mistake_fails_and_diagnoses_itself = exercise_helpers.mistakes_diagnose_themselves({
    "batchnorm_forward": ex.FORWARD_MISTAKES, "batchnorm_backward": ex.BACKWARD_MISTAKES, "numerical_gradient": ex.GRAD_CHECK_MISTAKES,
})


# A student's notebook: the backward exercises look up *this* batchnorm_forward.
STUDENT_CELLS = textwrap.dedent(
    """
    import numpy as np
    from bncourse.grading import check

    def batchnorm_forward(x, gamma, beta, eps=1e-5):
        mu = x.mean(axis=0)
        var = x.var(axis=0{ddof})
        x_hat = (x - mu) / np.sqrt(var + eps)
        return gamma * x_hat + beta, [gamma, x_hat, 1 / np.sqrt(var + eps)]  # own layout

    def batchnorm_backward(dout, cache):
        gamma, x_hat, inv_std = cache
        m = dout.shape[0]
        dbeta = dout.sum(axis=0)
        dgamma = (dout * x_hat).sum(axis=0)
        dx = gamma * inv_std / m * (m * dout - dbeta - x_hat * dgamma)
        return dx, dgamma, dbeta

    batchnorm_backward_alt = batchnorm_backward
    """
)


def _run_notebook(ddof: str = "", extra: str = "") -> dict[str, object]:
    ns: dict[str, object] = {}
    exec(STUDENT_CELLS.format(ddof=ddof) + extra, ns)
    exec("r_bwd = check('batchnorm_backward', batchnorm_backward, verbose=False)\n"
         "r_alt = check('batchnorm_backward_alt', batchnorm_backward_alt, verbose=False)\n"
         "r_fwd = check('batchnorm_forward', batchnorm_forward, verbose=False)", ns)
    return ns


def test_backward_is_checked_with_the_students_own_forward_and_cache() -> None:
    ns = _run_notebook()
    for key in ("r_fwd", "r_bwd", "r_alt"):
        result = ns[key]
        assert result.passed, (key, result.messages)  # type: ignore[attr-defined]


def test_wrong_forward_is_blamed_not_the_backward() -> None:
    ns = _run_notebook(ddof=", ddof=1")
    assert not ns["r_fwd"].passed  # type: ignore[attr-defined]
    for key in ("r_bwd", "r_alt"):
        result = ns[key]
        assert not result.passed  # type: ignore[attr-defined]
        assert "fix batchnorm_forward first" in result.diagnosis  # type: ignore[attr-defined]


def test_unimplemented_forward_is_named_in_the_backward_check() -> None:
    extra = "\ndef batchnorm_forward(x, gamma, beta, eps=1e-5):\n    raise NotImplementedError\n"
    ns = _run_notebook(extra=extra)
    result = ns["r_bwd"]
    assert result.status == "checked" and not result.passed  # type: ignore[attr-defined]
    assert "batchnorm_forward first" in result.diagnosis  # type: ignore[attr-defined]


def test_stub_backward_with_stub_forward_is_not_implemented_yet() -> None:
    extra = textwrap.dedent(
        """
        def batchnorm_forward(x, gamma, beta, eps=1e-5):
            raise NotImplementedError
        def batchnorm_backward(dout, cache):
            raise NotImplementedError
        batchnorm_backward_alt = batchnorm_backward
        """
    )
    ns = _run_notebook(extra=extra)
    assert ns["r_bwd"].status == "not_implemented"  # type: ignore[attr-defined]


def test_forward_returning_cache_first_is_named_in_the_backward_check() -> None:
    extra = textwrap.dedent(
        """
        _fwd = batchnorm_forward
        def batchnorm_forward(x, gamma, beta, eps=1e-5):
            out, cache = _fwd(x, gamma, beta, eps)
            return cache, out
        """
    )
    ns = _run_notebook(extra=extra)
    assert "returned (cache, out)" in ns["r_bwd"].diagnosis  # type: ignore[attr-defined]


def test_without_a_student_forward_the_reference_forward_is_used() -> None:
    ns: dict[str, object] = {"check": check, "reference": reference}
    exec("r = check('batchnorm_backward', reference.batchnorm_backward_alt, verbose=False)", ns)
    assert ns["r"].passed  # type: ignore[attr-defined]


def test_cases_are_deterministic_and_cover_the_contract() -> None:
    a, b = ex.bn_cases(), ex.bn_cases()
    assert [c.name for c in a] == [c.name for c in b]
    for c1, c2 in zip(a, b, strict=True):
        for k, v in c1.inputs.items():
            if isinstance(v, np.ndarray):
                np.testing.assert_array_equal(v, c2.inputs[k], err_msg=f"{c1.name}: {k}")
    dtypes = {c.inputs["x"].dtype for c in a}
    shapes = {c.inputs["x"].shape for c in a}
    assert dtypes == {np.dtype(np.float32), np.dtype(np.float64)}
    assert any(s[0] == 2 for s in shapes) and any(s[1] == 1 for s in shapes)
    assert any(s[0] % 2 and s[1] % 2 for s in shapes)  # an odd shape


def test_tiny_variance_case_makes_eps_matter() -> None:
    case = next(c for c in ex.bn_cases() if "tiny variance" in c.name)
    x, g, b = case.inputs["x"], case.inputs["gamma"], case.inputs["beta"]
    assert np.all(x.var(axis=0) < case.inputs["eps"])
    with_eps, _ = reference.batchnorm_forward(x, g, b)
    without = g * (x - x.mean(0)) / x.std(0) + b
    assert not np.allclose(with_eps, without, rtol=case.tolerance[0], atol=case.tolerance[1])


@pytest.mark.parametrize("case", ex.grad_check_cases(), ids=lambda c: c.name)
def test_grad_check_tolerance_fits_the_analytic_gradient(case: object) -> None:
    """The solution's centered differences agree with the analytic gradient within the case
    tolerance, and a forward difference does not."""
    inp = case.inputs  # type: ignore[attr-defined]
    x, dout = inp["x"], inp["dout"]
    if inp["fn_name"] == "tanh":
        analytic = (1 - np.tanh(x) ** 2) * dout
    elif inp["fn_name"] == "cube":
        analytic = 3 * x**2 * dout
    elif inp["fn_name"] == "coupled":
        s = x.sum(axis=0, keepdims=True)
        analytic = np.cos(x) * s * dout + (np.sin(x) * dout).sum(axis=0, keepdims=True)
    else:
        _, cache = reference.batchnorm_forward(x, inp["gamma"], inp["beta"])
        analytic = reference.batchnorm_backward_alt(dout, cache)[0]
    f = ex.GRAD_CHECK_FUNCTIONS[inp["fn_name"]](inp)
    rtol, atol = case.tolerance  # type: ignore[attr-defined]
    np.testing.assert_allclose(gradcheck.numerical_gradient(f, x, dout), analytic, rtol=rtol, atol=atol)
    forward = mistakes.grad_forward_difference(f, x, dout)
    assert not np.allclose(forward, analytic, rtol=rtol, atol=atol)


test_every_exercise_has_a_hint_ladder = exercise_helpers.hint_ladders(
    ("batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt", "numerical_gradient"), "03_forward_backward")


def test_the_closed_form_hints_climb_from_direction_to_jacobian_to_formula() -> None:
    from bncourse.grading.registry import get_exercise

    direction, identity, formula = get_exercise("batchnorm_backward_alt").hints
    assert "chain rule" in direction and "δ_ij" not in direction
    assert "∂x̂_j/∂x_i = (s/m)·(m·δ_ij − 1 − x̂_i·x̂_j)" in identity
    assert "m·dout − dbeta − x̂·dgamma" in formula
