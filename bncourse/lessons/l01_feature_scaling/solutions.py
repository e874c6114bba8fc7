"""The instructor's solutions of notebook 01's exercises (``standardize``, ``gd_steps_to_converge``).

Each function is named as its exercise id; :mod:`bncourse.lessons.l01_feature_scaling.exercises`
checks students' code against them.  NumPy only.
"""

from __future__ import annotations

import numpy as np

from bncourse import validation
from bncourse.errors import ParameterError
from bncourse.validation import FloatArray

__all__ = ["gd_steps_to_converge", "standardize"]



def standardize(
    x_train: FloatArray, x_test: FloatArray, eps: float = 1e-8
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Standardize each feature with the *training* set's mean and std; reuse them on the test set.

    Solution of the exercise ``standardize``.

    .. math::  \\mu_j = \\frac1n\\sum_i x_{ij}, \\quad
               \\sigma_j = \\sqrt{\\tfrac1n \\sum_i (x_{ij} - \\mu_j)^2}, \\quad
               \\tilde x_{ij} = (x_{ij} - \\mu_j)/\\sigma_j

    Statistics are per feature, over the examples (axis 0), of ``x_train`` only; the
    population std (divide by n, ``ddof=0``), the course's convention (batch norm's too).
    Zero-variance policy: a feature whose training std is ``<= eps`` counts as constant and
    its std is replaced by 1, so it becomes ``x − μ`` (exactly 0 on the training set) and
    never 0/0 = NaN.  The returned ``std`` is the divisor actually used.  Inputs are not
    modified; the dtype is preserved.

    Shapes: x_train (n, d), x_test (m, d) → x_train_std (n, d), x_test_std (m, d),
    mean (d,), std (d,).
    """
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std = np.where(std <= eps, np.ones_like(std), std)
    return (x_train - mean) / std, (x_test - mean) / std, mean, std




def gd_steps_to_converge(
    x: FloatArray, y: FloatArray, lr: float, tol: float = 1e-6, max_steps: int = 100_000
) -> int:
    """Number of gradient-descent steps until the gradient norm is at most ``tol``.

    Solution of the exercise ``gd_steps_to_converge``.  Model ``ŷ = x·w + b``, loss
    ``L = ½·mean((ŷ − y)²)``, start ``w = 0, b = 0``, update ``θ ← θ − lr·∇L(θ)`` with

    .. math::  \\nabla_w L = x^T r / n, \\quad \\partial_b L = \\mathrm{mean}(r), \\quad r = xw + b - y.

    Returns the smallest ``t`` in ``0..max_steps`` with ``‖∇L(θ_t)‖₂ ≤ tol`` (θ_t is θ after
    t updates; 0 if the start already satisfies it), or ``-1`` if there is none (too few
    steps, or a learning rate above ``2/λmax`` that makes GD diverge).  Computes in float64.

    Shapes: x (n, d), y (n,) → int.

    Raises:
        ShapeError: x is not (n, d) or y is not (n,).
        ParameterError: lr is not a finite number > 0.
    """
    xa, ya = validation.as_regression_data(x, y)
    if not (np.isfinite(lr) and lr > 0):
        raise ParameterError(f"lr must be a finite number > 0, got {lr}")
    n, d = xa.shape
    w, b = np.zeros(d), 0.0
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging run overflows: a result
        for step in range(max_steps + 1):
            r = xa @ w + b - ya
            grad_w = xa.T @ r / n
            grad_b = r.mean()
            norm = np.sqrt(grad_w @ grad_w + grad_b**2)
            if norm <= tol:
                return step
            if not np.isfinite(norm):  # diverged: it will never come back
                return -1
            w = w - lr * grad_w
            b = b - lr * grad_b
    return -1
