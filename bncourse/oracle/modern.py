"""Stand-ins for notebook 09's exercises: RMSNorm, ghost batch norm, weight standardization.

``F.rms_norm``, ``F.batch_norm`` on each ghost batch and ``F.layer_norm`` on the flattened
filters; computed in float64, returned in the dtype of the input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name
from numpy.typing import ArrayLike

from bncourse import validation
from bncourse.errors import ParameterError
from bncourse.oracle._torch import const, to_numpy
from bncourse.validation import FloatArray

__all__ = ["ghost_batchnorm_forward", "rmsnorm_forward", "weight_standardize"]


def rmsnorm_forward(x: ArrayLike, gamma: ArrayLike, eps: float = 1e-5) -> tuple[FloatArray, FloatArray]:
    """RMSNorm over the last axis: ``F.rms_norm(x, (D,), gamma, eps)``.

    Shapes: x ``(..., D)``, gamma ``(D,)`` → ``(out, rms)``: out like x, rms ``(..., 1)``.
    """
    fn = "rmsnorm_forward"
    xa = validation.as_float_array(x, "x", fn)
    D = xa.shape[-1]
    g = validation.as_param(gamma, "gamma", fn, (D,), xa.dtype)
    eps = validation.check_eps(eps, fn)
    with torch.no_grad():
        xt = const(xa)
        out = F.rms_norm(xt, (D,), const(g), eps)
        rms = torch.sqrt(xt.pow(2).mean(dim=-1, keepdim=True) + eps)
    return to_numpy(out, xa.dtype), to_numpy(rms, xa.dtype)


def ghost_batchnorm_forward(
    x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, ghost_size: int, eps: float = 1e-5
) -> tuple[FloatArray, FloatArray]:
    """Training-mode ``F.batch_norm`` on each slice of ``ghost_size`` consecutive examples.

    Shapes: x ``(N, D)`` with ghost_size dividing N; gamma, beta ``(D,)`` → ``(out, x_hat)``.

    Raises:
        ParameterError: ghost_size < 2 or does not divide N.
    """
    fn = "ghost_batchnorm_forward"
    xa = validation.as_float_array(x, "x", fn)
    validation.check_ndim(xa.shape, (2,), "x", fn, "(N, D)")
    N, D = xa.shape
    if int(ghost_size) != ghost_size or ghost_size < 2 or N % int(ghost_size):
        raise ParameterError(f"{fn}: ghost_size must be >= 2 and divide N={N}, got {ghost_size!r}")
    g = validation.as_param(gamma, "gamma", fn, (D,), xa.dtype)
    b = validation.as_param(beta, "beta", fn, (D,), xa.dtype)
    eps = validation.check_eps(eps, fn)
    with torch.no_grad():
        chunks = torch.split(const(xa), int(ghost_size))
        x_hat = torch.cat([F.batch_norm(c, None, None, training=True, eps=eps) for c in chunks])
        out = x_hat * const(g) + const(b)
    return to_numpy(out, xa.dtype), to_numpy(x_hat, xa.dtype)


def weight_standardize(w: ArrayLike, eps: float = 1e-5) -> FloatArray:
    """Each output unit's weights standardized over its fan-in: ``F.layer_norm`` of ``w`` flattened per row.

    Shapes: w ``(C_out, C_in)`` or ``(C_out, C_in, kh, kw)`` → like w.
    """
    fn = "weight_standardize"
    wa = validation.as_float_array(w, "w", fn)
    validation.check_min_ndim(wa.shape, 2, "w", fn, "(C_out, C_in, ...)")
    eps = validation.check_eps(eps, fn)
    with torch.no_grad():
        rows = const(wa).reshape(wa.shape[0], -1)
        out = F.layer_norm(rows, (rows.shape[1],), eps=eps).reshape(wa.shape)
    return to_numpy(out, wa.dtype)
