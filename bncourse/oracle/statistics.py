"""Stand-ins for the statistics exercises: standardize, percentiles, saturation, population stats.

scikit-learn's ``StandardScaler`` for standardization, ``torch.var_mean`` for the
population statistics, ``torch.quantile`` for the percentiles, autograd through
``torch.sigmoid`` for its slope.  Computed in float64, returned in the input's dtype.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from numpy.typing import ArrayLike

from bncourse import validation
from bncourse.errors import BatchSizeError, ShapeError
from bncourse.oracle._torch import const, leaf, to_numpy
from bncourse.validation import FloatArray

__all__ = ["activation_percentiles", "population_stats", "saturated_fraction", "standardize"]


def standardize(
    x_train: ArrayLike, x_test: ArrayLike, eps: float = 1e-8
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Standardize both sets with the training set's per-feature mean and population std.

    ``sklearn.preprocessing.StandardScaler`` fitted on x_train (in float64), with its
    ``scale_`` set to 1 where the std is ``<= eps`` (a constant feature: no 0/0), then
    ``transform`` of both sets.  The returned std is the divisor used.  Inputs are not
    modified; the dtype of x_train is kept.

    Shapes: x_train ``(n, d)``, x_test ``(m, d)`` → x_train_std ``(n, d)``,
    x_test_std ``(m, d)``, mean ``(d,)``, std ``(d,)``.
    """
    from sklearn.preprocessing import StandardScaler

    train = np.asarray(x_train)
    dtype = train.dtype if np.issubdtype(train.dtype, np.floating) else np.dtype(np.float64)
    scaler = StandardScaler().fit(np.array(train, dtype=np.float64))
    assert scaler.var_ is not None and scaler.mean_ is not None  # fitted with_mean, with_std
    std = np.sqrt(scaler.var_)
    scaler.scale_ = np.where(std <= eps, 1.0, std)
    test = np.array(x_test, dtype=np.float64)
    return (scaler.transform(np.array(train, dtype=np.float64)).astype(dtype), scaler.transform(test).astype(dtype),
            scaler.mean_.astype(dtype), np.asarray(scaler.scale_).astype(dtype))


def activation_percentiles(z: ArrayLike, qs: Sequence[float] = (15.0, 50.0, 85.0)) -> FloatArray:
    """Each unit's percentiles over the batch: ``torch.quantile(z, qs / 100, dim=0)``, linear interpolation.

    Shapes: z ``(N, D)`` → ``(len(qs), D)`` in z's dtype.

    Raises:
        ShapeError: z is not 2-D.
    """
    za = np.asarray(z)
    if za.ndim != 2:
        raise ShapeError(f"activation_percentiles expects z of shape (N, D), got shape {za.shape}")
    dtype = za.dtype if np.issubdtype(za.dtype, np.floating) else np.dtype(np.float64)
    with torch.no_grad():
        q = const(np.asarray(list(qs), dtype=np.float64) / 100.0)
        return to_numpy(torch.quantile(const(za), q, dim=0, interpolation="linear"), dtype)


def saturated_fraction(z: ArrayLike, threshold: float = 0.05) -> float:
    """The fraction of entries where the sigmoid's slope, ``torch.autograd.grad`` of
    ``torch.sigmoid``, is below ``threshold``.

    Shapes: z any shape → a Python float in [0, 1].
    """
    zt = leaf(z)
    (slope,) = torch.autograd.grad(torch.sigmoid(zt).sum(), zt)  # σ'(z), elementwise
    return float((slope < threshold).to(torch.float64).mean())


def population_stats(batches: Sequence[ArrayLike]) -> tuple[FloatArray, FloatArray]:
    """Mean and unbiased variance of all rows of all batches: ``torch.var_mean(torch.cat(...), correction=1)``.

    Shapes:
        batches: a non-empty sequence of ``(N_b, D)`` arrays (same D, N = Σ N_b ≥ 2).

    Returns:
        ``(mean, var)``, each ``(D,)`` in the dtype of the first batch.

    Raises:
        ShapeError: no batches, a batch that is not 2-D, or mismatched D.
        DTypeError: a batch that is not floating point.
        BatchSizeError: fewer than 2 rows in total.
    """
    fn = "population_stats"
    arrays = validation.as_batches(batches, fn)
    n = int(np.sum([len(b) for b in arrays]))
    if n < 2:
        raise BatchSizeError(f"{fn}: the unbiased variance needs at least 2 rows, got {n}")
    with torch.no_grad():
        var, mean = torch.var_mean(torch.cat([const(b) for b in arrays]), dim=0, correction=1)
    return to_numpy(mean, arrays[0].dtype), to_numpy(var, arrays[0].dtype)
