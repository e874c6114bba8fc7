"""Helpers shared by the exercise modules whose backward runs on the student's own forward.

Not an exercise module itself (the leading underscore keeps it out of discovery).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bncourse.grading.registry import ContractError

Array = np.ndarray

__all__ = ["_close", "_unpack_forward", "unpack_grads"]


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
