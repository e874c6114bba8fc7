"""Wrong implementations of notebook 02's exercises, one per known mistake.

Each function has the signature of its exercise (``activation_percentiles`` or
``gradient_predictiveness``) and makes one mistake a student is likely to make;
:mod:`bncourse.lessons.l02_internal_covariate_shift.exercises` wraps each in a ``Mistake``
with its diagnosis, shown when a student's outputs match its outputs.  They are not course
code to learn from.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bncourse.lessons.l02_internal_covariate_shift import solutions

__all__ = [
    "gp_ascent",
    "gp_no_difference",
    "gp_relative",
    "gp_squared",
    "perc_fractions",
    "perc_lower",
    "perc_rank_index",
    "sat_greater",
    "sat_percent",
    "sat_sigma_not_slope",
    "sat_tanh_slope",
]

QS = (15.0, 50.0, 85.0)


# --- activation_percentiles ------------------------------------------------------------

def perc_fractions(z: Any, qs: Any = QS) -> Any:
    """qs divided by 100 (np.quantile's fractions given to np.percentile)."""
    return np.percentile(z, np.asarray(qs) / 100.0, axis=0).astype(z.dtype)


def perc_lower(z: Any, qs: Any = QS) -> Any:
    """The lower neighbour instead of linear interpolation."""
    return np.percentile(z, list(qs), axis=0, method="lower").astype(z.dtype)


def perc_rank_index(z: Any, qs: Any = QS) -> Any:
    """The sorted batch indexed at int(q/100·N)."""
    zs = np.sort(z, axis=0)
    n = z.shape[0]
    return np.stack([zs[min(int(q / 100.0 * n), n - 1)] for q in qs]).astype(z.dtype)


# --- gradient_predictiveness -----------------------------------------------------------

def gp_ascent(grad_fn: Any, w: Any, etas: Any) -> Any:
    """A step along +g instead of −g."""
    g = grad_fn(w)
    return np.array([np.linalg.norm(grad_fn(w + eta * g) - g) for eta in etas], dtype=w.dtype)


def gp_squared(grad_fn: Any, w: Any, etas: Any) -> Any:
    """The squared distance instead of the distance."""
    g = grad_fn(w)
    return np.array([np.sum((grad_fn(w - eta * g) - g) ** 2) for eta in etas], dtype=w.dtype)


def gp_no_difference(grad_fn: Any, w: Any, etas: Any) -> Any:
    """The norm of the new gradient, without subtracting g."""
    g = grad_fn(w)
    return np.array([np.linalg.norm(grad_fn(w - eta * g)) for eta in etas], dtype=w.dtype)


def gp_relative(grad_fn: Any, w: Any, etas: Any) -> Any:
    """The distance divided by ‖g‖."""
    g = grad_fn(w)
    return (solutions.gradient_predictiveness(grad_fn, w, etas) / np.linalg.norm(g)).astype(w.dtype)


# --- saturated_fraction ----------------------------------------------------------------


def _sigmoid(z: Any) -> Any:
    return 1.0 / (1.0 + np.exp(-np.asarray(z)))


def sat_sigma_not_slope(z: Any, threshold: float = 0.05) -> float:
    """Compares sigmoid(z) itself, not its slope, with the threshold."""
    return float(np.mean(_sigmoid(z) < threshold))


def sat_greater(z: Any, threshold: float = 0.05) -> float:
    """Counts the steep units (slope above the threshold)."""
    s = _sigmoid(z)
    return float(np.mean(s * (1.0 - s) > threshold))


def sat_tanh_slope(z: Any, threshold: float = 0.05) -> float:
    """Uses 1 − sigmoid(z)², the form of tanh's derivative."""
    s = _sigmoid(z)
    return float(np.mean(1.0 - s**2 < threshold))


def sat_percent(z: Any, threshold: float = 0.05) -> float:
    """Returns a percentage instead of a fraction."""
    s = _sigmoid(z)
    return float(100.0 * np.mean(s * (1.0 - s) < threshold))
