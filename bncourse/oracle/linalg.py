"""Stand-ins for weight normalization, spectral normalization and the largest singular value.

``torch.nn.utils.parametrizations.weight_norm`` / ``spectral_norm`` on a throw-away
module holding the weight, and ``torch.linalg.svdvals``.  Computed in float64,
returned in the dtype of the weight.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name
from numpy.typing import ArrayLike
from torch.nn.utils import parametrizations

from bncourse import validation
from bncourse.errors import ParameterError, ShapeError
from bncourse.oracle._torch import const, to_numpy
from bncourse.validation import FloatArray

__all__ = ["largest_singular_value", "spectral_norm", "weight_norm"]




def _holder(weight: FloatArray) -> torch.nn.Module:
    """A module whose only parameter, ``weight``, is a float64 copy of ``weight``."""
    module = torch.nn.Module()
    module.register_parameter("weight", torch.nn.Parameter(const(weight)))
    return module


def weight_norm(v: ArrayLike, g: ArrayLike, dim: int | None = 0) -> FloatArray:
    """``w = g · v / ‖v‖``: torch's ``parametrizations.weight_norm`` with ``original0 = g``, ``original1 = v``.

    The norm is over every axis except ``dim`` (``dim=None``: the whole tensor).

    Shapes:
        v: any shape with at least one axis; g: ``(v.shape[dim],)`` or the keepdims shape
        (a scalar or ``(1,)`` for ``dim=None``).

    Returns:
        w, shaped like v, in v's dtype.

    Raises:
        ParameterError: ``dim`` out of range; ShapeError: g has the wrong size.
    """
    fn = "weight_norm"
    va = validation.as_float_array(v, "v", fn)
    ga = validation.as_float_array(g, "g", fn)
    validation.check_min_ndim(va.shape, 1, "v", fn, "(out, ...)")
    torch_dim = -1 if dim is None else validation.check_dim(dim, va.ndim, fn)  # torch reads -1 as the whole tensor
    module = parametrizations.weight_norm(_holder(va), "weight", dim=torch_dim)
    param: Any = module.parametrizations.weight
    if ga.size != param.original0.numel():
        raise ShapeError(f"{fn}: g must have {param.original0.numel()} entries (one per slice along "
                         f"dim={dim}), got shape {ga.shape}")
    with torch.no_grad():
        param.original0.copy_(const(ga).reshape(param.original0.shape))
        return to_numpy(module.weight, va.dtype)


def spectral_norm(
    weight: ArrayLike,
    u: ArrayLike,
    n_power_iterations: int = 1,
    eps: float = 1e-12,
    *,
    v: ArrayLike | None = None,
    dim: int = 0,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``W / σ(W)`` with σ from power iteration: torch's ``parametrizations.spectral_norm``, training mode.

    Its buffers ``_u`` and ``_v`` are set to ``u`` and ``v`` (``v = F.normalize(Wᵀu)`` if
    not given), it runs ``n_power_iterations`` (0: evaluation mode), and σ is torch's
    ``uᵀ W v`` with the updated vectors.  A 1-D weight is divided by its norm.  The global
    torch random state is left as it was (the parametrization draws random vectors when
    it is built).

    Shapes:
        weight: ``(out, in)`` or ``(out, in, kh, kw)``; u: ``(weight.shape[dim],)``;
        v: ``(weight.size // weight.shape[dim],)``.

    Returns:
        ``(w_sn, u, sigma)``: w_sn like weight, the updated u, σ as a 0-d array.

    Raises:
        ShapeError: u or v has the wrong shape; ParameterError: bad dim, eps or
        ``n_power_iterations < 0``.
    """
    fn = "spectral_norm"
    w = validation.as_float_array(weight, "weight", fn)
    ua = validation.as_float_array(u, "u", fn).astype(w.dtype, copy=False)
    validation.check_min_ndim(w.shape, 1, "weight", fn, "(out, in) or (out, in, kh, kw)")
    if isinstance(n_power_iterations, bool) or not isinstance(n_power_iterations, (int, np.integer)) \
            or n_power_iterations < 0:
        raise ParameterError(f"{fn}: n_power_iterations must be an integer >= 0, got {n_power_iterations!r}")
    eps = validation.check_eps(eps, fn)
    if w.ndim == 1:  # torch's parametrization divides a vector by max(‖w‖, eps)
        with torch.no_grad():
            wt = const(w)
            sigma = torch.linalg.vector_norm(wt).clamp_min(eps)
            return to_numpy(F.normalize(wt, dim=0, eps=eps), w.dtype), ua.copy(), to_numpy(sigma, w.dtype)
    dim = validation.check_dim(dim, w.ndim, fn)
    rows = w.shape[dim]
    validation.check_shape(ua.shape, (rows,), "u", fn)
    with torch.random.fork_rng(devices=[]):  # building it draws random u, v: keep the caller's RNG
        module = parametrizations.spectral_norm(_holder(w), "weight", n_power_iterations=max(1, n_power_iterations),
                                                eps=eps, dim=dim)
    param: Any = module.parametrizations.weight[0]  # type: ignore[index,union-attr]
    W_mat = param._reshape_weight_to_matrix(module.parametrizations.weight.original)  # type: ignore[union-attr]
    with torch.no_grad():
        param._u.copy_(const(ua))
        if v is None:
            param._v.copy_(F.normalize(torch.mv(W_mat.T, param._u), dim=0, eps=eps))
        else:
            va = validation.as_float_array(v, "v", fn)
            validation.check_shape(va.shape, (W_mat.shape[1],), "v", fn)
            param._v.copy_(const(va))
    module.train(n_power_iterations > 0)
    with torch.no_grad():
        w_sn: Any = module.weight
        sigma = torch.vdot(param._u, torch.mv(W_mat, param._v))
    return to_numpy(w_sn, w.dtype), to_numpy(param._u, w.dtype), to_numpy(sigma, w.dtype)


def largest_singular_value(weight: ArrayLike, dim: int = 0) -> float:
    """The exact spectral norm σ_max: ``torch.linalg.svdvals`` of the weight as a matrix.

    Shapes:
        weight: ``(out, in)`` or ``(out, in, kh, kw)``, as ``(weight.shape[dim], -1)``.

    Returns:
        A Python float.
    """
    fn = "largest_singular_value"
    w = validation.as_float_array(weight, "weight", fn)
    validation.check_min_ndim(w.shape, 2, "weight", fn, "(out, in) or (out, in, kh, kw)")
    dim = validation.check_dim(dim, w.ndim, fn)
    matrix = const(w).movedim(dim, 0).reshape(w.shape[dim], -1)
    return float(torch.linalg.svdvals(matrix)[0])
