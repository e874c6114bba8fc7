"""Helpers shared by the exercise modules.

Tolerances by dtype, the description of a wrong return value, and, for the
normalization exercises whose forward returns ``(out, cache)`` and whose backward runs on
the student's *own* forward (03's batch norm, 06's spatial batch norm, 07's layer norm):
the ``call`` of a forward, the ``call`` of a backward, the diagnosis that blames a wrong
forward, and the seeded ``{x, gamma, beta, eps, dout}`` case.

Not an exercise module itself (the leading underscore keeps it out of discovery).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from bncourse.conventions import EPS
from bncourse.grading.registry import CallFn, Case, ContractError
from bncourse.validation import Array

Diagnose = Callable[[Case, Mapping[str, Array], Mapping[str, Array]], str | None]
"""``diagnose(case, got, expected) -> str | None``, as in :class:`~bncourse.grading.registry.Exercise`."""

__all__ = [
    "F32_TOL",
    "F64_TOL",
    "_close",
    "_unpack_forward",
    "affine_case",
    "backward_call",
    "backward_diagnose",
    "backward_on_own_forward",
    "describe",
    "forward_call",
    "tolerance",
    "unpack_grads",
    "wrong_forward",
]

F32_TOL = (1e-4, 1e-5)
"""(rtol, atol) for float32 cases: float32 carries about 7 significant digits."""
F64_TOL = (1e-6, 1e-9)
"""(rtol, atol) for float64 cases (the default of :class:`~bncourse.grading.registry.Case`)."""


def tolerance(dtype: DTypeLike) -> tuple[float, float]:
    """:data:`F32_TOL` for float32 cases, :data:`F64_TOL` for any other dtype."""
    return F32_TOL if np.dtype(dtype) == np.float32 else F64_TOL


def describe(result: Any) -> str:
    """A wrong return value in words for a ContractError: ``"a tuple of length 3"``, ``"a dict"``."""
    return f"a {type(result).__name__}" + (
        f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""
    )


def affine_case(name: str, x: Array, rng: np.random.Generator, dtype: type) -> Case:
    """The case ``{x, gamma, beta, eps, dout}`` of a per-channel normalization of ``x``.

    ``x`` is ``(N, C)`` or ``(N, C, H, W)``; after it, ``rng`` draws γ ~ U(0.5, 2) and
    β ~ N(0, 1) of shape ``(C,)`` (γ ≠ 1 and β ≠ 0, so that forgetting either one shows)
    and ``dout`` ~ N(0, 1) of x's shape, in that order; everything is cast to ``dtype``,
    ``eps`` is :data:`~bncourse.conventions.EPS`, the tolerance is ``tolerance(dtype)``.
    """
    c: int = x.shape[1]
    inputs = {
        "x": x.astype(dtype),
        "gamma": rng.uniform(0.5, 2.0, c).astype(dtype),
        "beta": rng.standard_normal(c).astype(dtype),
        "eps": EPS,
        "dout": rng.standard_normal(x.shape).astype(dtype),
    }
    return Case(name=name, inputs=inputs, tolerance=tolerance(dtype))


def _unpack_forward(result: Any, x: Array, who: str) -> tuple[Any, Any]:
    """``(out, cache)`` from a forward's return value, or a ContractError explaining why not."""
    def is_out(v: Any) -> bool:
        return isinstance(v, np.ndarray) and v.shape == x.shape

    if isinstance(result, np.ndarray):
        raise ContractError(
            f"{who} returned a single array; it must return a pair `return out, cache` "
            "(cache: whatever your backward needs)."
        )
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise ContractError(f"{who} must return a pair `return out, cache`, got {describe(result)}.")
    first, second = result
    if not is_out(first) and is_out(second):
        raise ContractError(
            f"{who} returned (cache, out): return them in the order `return out, cache`."
        )
    return first, second


def _close(a: Array, b: Array, tol: tuple[float, float]) -> bool:
    return a.shape == b.shape and bool(
        np.allclose(a.astype(np.float64), b.astype(np.float64), rtol=tol[0], atol=tol[1])
    )


def unpack_grads(grads: Any) -> dict[str, Any]:
    """``{"dx", "dgamma", "dbeta"}`` from a backward's return value, or a ContractError."""
    if not isinstance(grads, (tuple, list)) or len(grads) != 3:
        raise ContractError(
            f"the backward must return three arrays `return dx, dgamma, dbeta`, got {describe(grads)}."
        )
    dx, dgamma, dbeta = grads
    return {"dx": dx, "dgamma": dgamma, "dbeta": dbeta}


def backward_on_own_forward(
    fn: Callable[..., Any],
    inputs: Mapping[str, Any],
    forward: Callable[..., Any],
    *,
    forward_name: str,
    forward_exercise: str,
    eps: float,
) -> dict[str, Any]:
    """Run the student's own ``forward`` for a cache, then the backward ``fn`` on it.

    Returns ``{"dx", "dgamma", "dbeta", "forward_out"}``.  When both are still stubs the
    backward's ``NotImplementedError`` propagates ("not implemented yet"); a stub or failing
    forward under a written backward is a ContractError naming the forward's exercise.
    """
    try:
        result = forward(inputs["x"], inputs["gamma"], inputs["beta"], eps)
    except NotImplementedError:
        try:  # is the backward itself still a stub?  Then say "not implemented yet".
            fn(inputs["dout"], None)
        except NotImplementedError:
            raise
        except Exception:
            pass
        raise ContractError(
            f"your {forward_name} is not implemented yet: do {forward_exercise} first "
            "(the backward is checked on the cache of your own forward)."
        ) from None
    except Exception as exc:
        raise ContractError(
            f"your {forward_name} raised {type(exc).__name__}: {exc} — fix {forward_exercise} first; "
            "the backward is checked with your own forward."
        ) from exc
    out, cache = _unpack_forward(result, inputs["x"], f"your {forward_name}")
    return {**unpack_grads(fn(inputs["dout"], cache)), "forward_out": out}


def wrong_forward(
    got: Mapping[str, Array], exp: Mapping[str, Array], tolerance: tuple[float, float],
    forward_name: str, forward_exercise: str,
) -> str | None:
    """The diagnosis for a backward checked with a wrong forward (``None`` if it is right)."""
    fwd = got.get("forward_out")
    if fwd is not None and not _close(fwd, exp["forward_out"], tolerance):
        return (
            f"your {forward_name} is wrong (its output does not match) — fix {forward_exercise} first; "
            "the backward was checked with it."
        )
    return None


def forward_call(name: str, *extra: str, eps: float | None = None) -> CallFn:
    """The ``call`` of a forward ``name(x, gamma, beta, *extra, eps) -> (out, cache)``.

    ``extra`` names further inputs passed between ``beta`` and ``eps`` (e.g.
    ``"num_groups"``); ``eps`` is the case's ``inputs["eps"]`` unless given here.  Only
    ``out`` is graded (the cache is the student's business); a return value that is not
    ``(out, cache)`` is a ContractError naming ``name``.
    """
    def call(fn: Callable[..., Any], inputs: Mapping[str, Any], ns: Mapping[str, Any]) -> dict[str, Any]:
        e = inputs["eps"] if eps is None else eps
        result = fn(inputs["x"], inputs["gamma"], inputs["beta"], *(inputs[k] for k in extra), e)
        out, _ = _unpack_forward(result, inputs["x"], name)
        return {"out": out}

    return call


def backward_call(forward_name: str, forward_exercise: str, *, eps: float | None = None) -> CallFn:
    """The ``call`` of a backward ``fn(dout, cache)`` checked on the student's own forward.

    Looks up ``forward_name`` in the namespace (the student's own, else the exercise's
    reference) and runs :func:`backward_on_own_forward`; ``eps`` as in :func:`forward_call`.
    """
    def call(fn: Callable[..., Any], inputs: Mapping[str, Any], ns: Mapping[str, Any]) -> dict[str, Any]:
        return backward_on_own_forward(fn, inputs, ns[forward_name], forward_name=forward_name,
                                       forward_exercise=forward_exercise,
                                       eps=inputs["eps"] if eps is None else eps)

    return call


def backward_diagnose(forward_name: str, forward_exercise: str, then: Diagnose) -> Diagnose:
    """A backward's ``diagnose``: the blame of :func:`wrong_forward` if the forward is wrong,
    else the diagnosis of ``then`` (e.g. dgamma not summed over the batch)."""
    def diagnose(case: Case, got: Mapping[str, Array], exp: Mapping[str, Array]) -> str | None:
        blame = wrong_forward(got, exp, case.tolerance, forward_name, forward_exercise)
        return blame if blame is not None else then(case, got, exp)

    return diagnose
