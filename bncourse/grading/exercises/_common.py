"""Helpers shared by the exercise modules whose backward runs on the student's own forward.

Not an exercise module itself (the leading underscore keeps it out of discovery).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from bncourse.grading.registry import ContractError

Array = np.ndarray

__all__ = ["_close", "_unpack_forward", "backward_on_own_forward", "unpack_grads", "wrong_forward"]


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
        what = f"a {type(result).__name__}" + (
            f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""
        )
        raise ContractError(f"{who} must return a pair `return out, cache`, got {what}.")
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
        what = f"a {type(grads).__name__}" + (
            f" of length {len(grads)}" if isinstance(grads, (tuple, list)) else ""
        )
        raise ContractError(f"the backward must return three arrays `return dx, dgamma, dbeta`, got {what}.")
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
