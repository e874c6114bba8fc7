"""Wrong implementations of notebook 01's exercises, one per known mistake.

Each function has the signature of its exercise (``standardize`` or
``gd_steps_to_converge``) and makes one mistake a student is likely to make;
:mod:`bncourse.lessons.l01_feature_scaling.exercises` wraps each in a ``Mistake`` with
its diagnosis, shown when a student's outputs match its outputs.  They are not course
code to learn from.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bncourse.lessons.l01_feature_scaling import solutions
from bncourse.validation import Array

__all__ = [
    "gd_grad_twice",
    "gd_loss_criterion",
    "gd_max_abs_norm",
    "gd_no_bias",
    "gd_norm_without_bias",
    "gd_sum_not_mean",
    "std_constant_zeroed",
    "std_eps_added",
    "std_eps_in_sqrt",
    "std_over_everything",
    "std_per_example",
    "std_pooled",
    "std_raw_std_returned",
    "std_swapped",
    "std_test_stats",
    "std_unbiased",
    "std_variance",
]



# =========================================================================== standardize


def _stats(x: Array, *, axis: int | None = 0, ddof: int = 0, eps: float = 1e-8) -> tuple[Array, Array]:
    keep = axis != 0
    mean = x.mean(axis=axis, keepdims=keep)
    std = x.std(axis=axis, ddof=ddof, keepdims=keep) if x.shape[0] > ddof else np.zeros_like(mean)
    return mean, np.where(std <= eps, np.ones_like(std), std)


def std_test_stats(x_train: Array, x_test: Array, eps: float = 1e-8) -> tuple[Array, ...]:
    """The test set standardized with its own statistics."""
    m, s = _stats(x_train, eps=eps)
    mt, st = _stats(x_test, eps=eps)
    return (x_train - m) / s, (x_test - mt) / st, m, s


def std_pooled(x_train: Array, x_test: Array, eps: float = 1e-8) -> tuple[Array, ...]:
    """Statistics of train and test together."""
    m, s = _stats(np.concatenate([x_train, x_test]), eps=eps)
    return (x_train - m) / s, (x_test - m) / s, m, s


def _std_axis(axis: int | None) -> Callable[..., tuple[Array, ...]]:
    def impl(x_train: Array, x_test: Array, eps: float = 1e-8) -> tuple[Array, ...]:
        m, s = _stats(x_train, axis=axis, eps=eps)
        # per example (axis=1) each test row has its own statistics; over everything the
        # training set's single mean and std are reused
        mt, st = _stats(x_test, axis=axis, eps=eps) if axis == 1 else (m, s)
        d = x_train.shape[1]
        return (x_train - m) / s, (x_test - mt) / st, np.broadcast_to(np.mean(m), (d,)), np.broadcast_to(np.mean(s), (d,))
    return impl


std_per_example = _std_axis(1)
"""Each example standardized over its features (axis=1)."""

std_over_everything = _std_axis(None)
"""One mean and one std for the whole array."""


def std_unbiased(x_train: Array, x_test: Array, eps: float = 1e-8) -> tuple[Array, ...]:
    """The unbiased std (ddof=1)."""
    m, s = _stats(x_train, ddof=1, eps=eps)
    return (x_train - m) / s, (x_test - m) / s, m, s


def std_variance(x_train: Array, x_test: Array, eps: float = 1e-8) -> tuple[Array, ...]:
    """Divided by the variance instead of the std."""
    m, s = _stats(x_train, eps=eps)
    v = s**2
    return (x_train - m) / v, (x_test - m) / v, m, v


def std_eps_added(x_train: Array, x_test: Array, eps: float = 1e-8) -> tuple[Array, ...]:
    """eps added to every std instead of used as a threshold."""
    m = x_train.mean(axis=0)
    s = x_train.std(axis=0) + x_train.dtype.type(eps)
    return (x_train - m) / s, (x_test - m) / s, m, s


def std_eps_in_sqrt(x_train: Array, x_test: Array, eps: float = 1e-8) -> tuple[Array, ...]:
    """Batch norm's √(var + eps) instead of the threshold."""
    m = x_train.mean(axis=0)
    s = np.sqrt(x_train.var(axis=0) + x_train.dtype.type(eps))
    return (x_train - m) / s, (x_test - m) / s, m, s


def std_constant_zeroed(x_train: Array, x_test: Array, eps: float = 1e-8) -> tuple[Array, ...]:
    """A constant feature set to 0 on the test set too."""
    m, s = _stats(x_train, eps=eps)
    const = x_train.std(axis=0) <= eps
    zero = x_train.dtype.type(0)
    return (np.where(const, zero, (x_train - m) / s), np.where(const, zero, (x_test - m) / s), m, s)


def std_raw_std_returned(x_train: Array, x_test: Array, eps: float = 1e-8) -> tuple[Array, ...]:
    """The raw std returned instead of the divisor used."""
    m, s = _stats(x_train, eps=eps)
    return (x_train - m) / s, (x_test - m) / s, m, x_train.std(axis=0)


def std_swapped(x_train: Array, x_test: Array, eps: float = 1e-8) -> tuple[Array, ...]:
    """mean and std returned in each other's place."""
    a, b, m, s = solutions.standardize(x_train, x_test, eps)
    return a, b, s, m


# =========================================================================== gd_steps_to_converge


def _gd(
    x: Array, y: Array, lr: float, tol: float = 1e-6, max_steps: int = 100_000, *,
    bias: bool = True, norm_b: bool = True, grad_scale: float = 1.0, reduce: str = "mean",
    norm: str = "l2", criterion: str = "grad",
) -> int:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, d = x.shape
    w, b = np.zeros(d), 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        for step in range(max_steps + 1):
            r = x @ w + b - y
            gw = grad_scale * (x.T @ r if reduce == "sum" else x.T @ r / n)
            gb = grad_scale * (r.sum() if reduce == "sum" else r.mean()) if bias else 0.0
            parts = np.append(gw, gb) if (bias and norm_b) else gw
            if criterion == "loss":
                value = 0.5 * np.mean(r**2)
            elif norm == "max":
                value = np.max(np.abs(parts))
            else:
                value = np.sqrt(np.sum(parts**2))
            if value <= tol:
                return step
            if not np.isfinite(value):
                return -1
            w = w - lr * gw
            b = b - lr * gb
    return -1


def gd_no_bias(x: Array, y: Array, lr: float, tol: float = 1e-6, max_steps: int = 100_000) -> int:
    """No bias (or a bias that is never updated)."""
    return _gd(x, y, lr, tol, max_steps, bias=False)


def gd_norm_without_bias(x: Array, y: Array, lr: float, tol: float = 1e-6, max_steps: int = 100_000) -> int:
    """∂L/∂b left out of the gradient norm."""
    return _gd(x, y, lr, tol, max_steps, norm_b=False)


def gd_grad_twice(x: Array, y: Array, lr: float, tol: float = 1e-6, max_steps: int = 100_000) -> int:
    """The gradient of mean(r²) (a factor 2 too large)."""
    return _gd(x, y, lr, tol, max_steps, grad_scale=2.0)


def gd_sum_not_mean(x: Array, y: Array, lr: float, tol: float = 1e-6, max_steps: int = 100_000) -> int:
    """Gradients summed over the examples instead of averaged."""
    return _gd(x, y, lr, tol, max_steps, reduce="sum")


def gd_max_abs_norm(x: Array, y: Array, lr: float, tol: float = 1e-6, max_steps: int = 100_000) -> int:
    """The largest gradient entry instead of the Euclidean norm."""
    return _gd(x, y, lr, tol, max_steps, norm="max")


def gd_loss_criterion(x: Array, y: Array, lr: float, tol: float = 1e-6, max_steps: int = 100_000) -> int:
    """Stops when the loss, not the gradient norm, is below tol."""
    return _gd(x, y, lr, tol, max_steps, criterion="loss")
