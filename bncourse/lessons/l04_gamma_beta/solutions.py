"""The instructor's solutions of notebook 04's exercises (``recover_identity``,
``bias_grad_through_bn``, ``scale_invariance_check``).

Each function is named as its exercise id; :mod:`bncourse.lessons.l04_gamma_beta.exercises`
checks students' code against them.  NumPy only; the batch-norm passes come from
:mod:`bncourse.reference` (the notebook's students may use them too).
"""

from __future__ import annotations

import numpy as np

from bncourse.conventions import EPS
from bncourse.errors import ShapeError
from bncourse.reference import batchnorm_backward_alt, batchnorm_forward
from bncourse.validation import FloatArray

__all__ = ["bias_grad_through_bn", "recover_identity", "scale_invariance_check"]



def recover_identity(x: FloatArray, eps: float = EPS) -> tuple[FloatArray, FloatArray]:
    """The γ and β for which batch norm returns its input unchanged.

    .. math::  \\gamma = \\sqrt{\\sigma_B^2 + \\epsilon}, \\qquad \\beta = \\mu_B

    so that ``γ·(x − μ)/√(σ² + ε) + β = x``.  Statistics are per feature over the batch,
    with the biased variance, as in the forward pass.

    Shapes: x (N, D) → gamma (D,), beta (D,), in x's dtype.
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ShapeError(f"recover_identity expects x of shape (N, D), got shape {x.shape}")
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    return np.sqrt(var + x.dtype.type(eps)), mu


def bias_grad_through_bn(
    x: FloatArray, W: FloatArray, b: FloatArray, gamma: FloatArray, beta: FloatArray,
    dout: FloatArray, eps: float = EPS,
) -> tuple[FloatArray, FloatArray]:
    """Gradients of a linear layer ``z = x Wᵀ + b`` followed by batch norm (training mode).

    .. math::  \\frac{\\partial L}{\\partial W} = dz^\\top x, \\qquad
               \\frac{\\partial L}{\\partial b} = \\sum_i dz_i = 0

    The bias gradient is zero (up to rounding) because batch norm's ``dx`` sums to zero
    over the batch: the bias only shifts μ_B, which BN subtracts again.

    Shapes: x (N, D_in), W (D, D_in), b, gamma, beta (D,), dout (N, D) →
    dW (D, D_in), db (D,).
    """
    z = x @ W.T + b
    _, cache = batchnorm_forward(z, gamma, beta, eps)
    dz, _, _ = batchnorm_backward_alt(dout, cache)
    return dz.T @ x, dz.sum(axis=0)


def scale_invariance_check(
    x: FloatArray, W: FloatArray, gamma: FloatArray, beta: FloatArray, dout: FloatArray,
    scales: FloatArray, eps: float = EPS,
) -> tuple[FloatArray, FloatArray]:
    """Measure BN(a·W x) = BN(W x) and ‖∂L/∂(aW)‖ ∝ 1/a for each a in ``scales``.

    For each scale a the weights are ``W_a = a·W``, ``z = x W_aᵀ``, ``out_a = BN(z)`` and
    ``dW_a = ∂L/∂W_a`` for the upstream gradient ``dout``.

    Returns:
        out_diff: (len(scales),) ``max |out_a − out_1|`` (out_1 = the output for a = 1).
        grad_norm: (len(scales),) Frobenius norm ‖dW_a‖, which scales like 1/a (while
        a²·var ≫ ε).
    """
    scales = np.asarray(scales, dtype=x.dtype)
    out_1, _ = batchnorm_forward(x @ W.T, gamma, beta, eps)
    diffs, norms = [], []
    for a in scales:
        out_a, cache = batchnorm_forward(x @ (a * W).T, gamma, beta, eps)
        dz, _, _ = batchnorm_backward_alt(dout, cache)
        diffs.append(np.abs(out_a - out_1).max())
        norms.append(np.sqrt(np.sum((dz.T @ x) ** 2)))
    return np.array(diffs, dtype=x.dtype), np.array(norms, dtype=x.dtype)
