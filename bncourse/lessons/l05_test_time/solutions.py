"""The instructor's solutions of notebook 05's exercises (``population_stats``,
``batchnorm_inference``, ``BatchNorm1d``).

Each is named as its exercise id; :mod:`bncourse.lessons.l05_test_time.exercises` checks
students' code against them.  ``batchnorm_inference`` and ``BatchNorm1d`` are the library's
own (:mod:`bncourse.reference`), re-exported here, not copies.  NumPy only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bncourse import validation
from bncourse.errors import BatchSizeError
from bncourse.reference import BatchNorm1d, batchnorm_inference
from bncourse.validation import FloatArray

__all__ = ["BatchNorm1d", "batchnorm_inference", "population_stats"]



def population_stats(batches: Sequence[FloatArray]) -> tuple[FloatArray, FloatArray]:
    r"""Mean and unbiased variance of every row of every batch: the whole training set's statistics.

    .. math::
        N = \sum_b N_b, \quad
        \mu = \frac1N \sum_b \sum_{n} x_{b,n}, \quad
        \sigma^2 = \frac{1}{N - 1} \sum_b \sum_n (x_{b,n} - \mu)^2

    per feature.  This is what ``torch.nn.BatchNorm1d`` would store in ``running_mean``
    and ``running_var`` after one training-mode pass over the whole set as a single batch
    with ``momentum=1`` (the unbiased variance, as ``running_var`` always is).  By the law
    of total variance it is *not* the average of the batches' variances: the spread of
    the batch means adds to it.  Sums are accumulated in float64 (two passes over the
    batches, no concatenation), so large means do not cancel catastrophically.

    Shapes:
        batches: a non-empty sequence of ``(N_b, D)`` arrays (same D, N_b ≥ 1, N ≥ 2).

    Returns:
        ``(mean, var)``, each ``(D,)`` in the dtype of the first batch.

    Raises:
        ShapeError: no batches, a batch that is not 2-D, or mismatched D.
        DTypeError: a batch that is not floating point.
        BatchSizeError: fewer than 2 rows in total.
    """
    fn = "population_stats"
    arrays = validation.as_batches(batches, fn)
    D = int(arrays[0].shape[1])
    n = sum(b.shape[0] for b in arrays)
    if n < 2:
        raise BatchSizeError(f"{fn}: the unbiased variance needs at least 2 rows, got {n}")
    total = np.zeros(D, np.float64)
    for b in arrays:
        total += b.sum(axis=0, dtype=np.float64)  # Σ x
    mean = total / n  # μ = Σ x / N
    ss = np.zeros(D, np.float64)
    for b in arrays:
        ss += np.sum((b.astype(np.float64) - mean) ** 2, axis=0)  # Σ (x − μ)²
    var = ss / (n - 1)  # unbiased: divide by N − 1
    dtype = arrays[0].dtype
    return mean.astype(dtype), var.astype(dtype)
