"""Normalizing weights instead of activations: weight norm and spectral norm.

Both match PyTorch's ``torch.nn.utils.parametrizations`` given the same inputs
(including the power-iteration vectors), which the tests check.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from bncourse import validation
from bncourse.errors import ParameterError, ShapeError
from bncourse.validation import FloatArray

__all__ = ["largest_singular_value", "spectral_norm", "weight_norm"]





def weight_norm(v: ArrayLike, g: ArrayLike, dim: int | None = 0) -> FloatArray:
    r"""Weight normalization (Salimans & Kingma, 2016): ``w = g · v / ‖v‖``.

    .. math::
        w = g \, \frac{v}{\lVert v \rVert}

    with the Euclidean norm over every axis except ``dim`` -- one norm and one g per
    slice along ``dim`` (per output unit for ``dim=0``) -- or over the whole tensor
    for ``dim=None``.  The direction comes from v, the length from g.  Same as
    ``torch.nn.utils.parametrizations.weight_norm(module, dim=dim)`` with
    ``original0 = g`` and ``original1 = v``.  (PyTorch also reads ``dim=-1`` as the
    whole tensor; here pass ``None``.)

    Shapes:
        v: any shape with at least one axis; g: ``(v.shape[dim],)`` or PyTorch's
        keepdims shape (``(out, 1, ...)``); a scalar or ``(1,)`` for ``dim=None``.

    Returns:
        w, shaped like v.

    Raises:
        ParameterError: ``dim`` out of range; ShapeError: g has the wrong size.
    """
    fn = "weight_norm"
    v = validation.as_float_array(v, "v", fn)
    g = validation.as_float_array(g, "g", fn).astype(v.dtype, copy=False)
    validation.check_min_ndim(v.shape, 1, "v", fn, "(out, ...)")
    if dim is None:
        axes: tuple[int, ...] = tuple(range(v.ndim))
        keep_shape: tuple[int, ...] = (1,) * v.ndim
    else:
        dim = validation.check_dim(dim, v.ndim, fn)
        axes = tuple(a for a in range(v.ndim) if a != dim)
        keep_shape = tuple(v.shape[a] if a == dim else 1 for a in range(v.ndim))
    if g.size != int(np.prod(keep_shape)):
        raise ShapeError(
            f"{fn}: g must have {int(np.prod(keep_shape))} entries (one per slice along "
            f"dim={dim}), got shape {g.shape}"
        )
    norm = np.sqrt(np.sum(v * v, axis=axes, keepdims=True))  # ‖v‖ over all axes but dim
    return np.ascontiguousarray(v * (g.reshape(keep_shape) / norm))  # w = g v / ‖v‖


def _as_matrix(weight: FloatArray, dim: int) -> FloatArray:
    """Move ``dim`` to the front and flatten the rest: ``(weight.shape[dim], -1)``."""
    return np.moveaxis(weight, dim, 0).reshape(weight.shape[dim], -1)


def _l2_normalize(a: FloatArray, eps: float) -> FloatArray:
    """``a / max(‖a‖, eps)``, like ``torch.nn.functional.normalize(a, dim=0, eps=eps)``."""
    return a / max(float(np.linalg.norm(a)), eps)


def spectral_norm(
    weight: ArrayLike,
    u: ArrayLike,
    n_power_iterations: int = 1,
    eps: float = 1e-12,
    *,
    v: ArrayLike | None = None,
    dim: int = 0,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""Spectral normalization (Miyato et al., 2018): ``W / σ(W)``, σ by power iteration.

    With W reshaped to a matrix ``(weight.shape[dim], -1)`` and
    ``normalize(a) = a / max(‖a‖, eps)``, each power iteration is

    .. math::
        u \leftarrow \text{normalize}(W v), \qquad v \leftarrow \text{normalize}(W^\top u)

    and then :math:`\sigma = u^\top W v`, :math:`W_{SN} = W / \sigma`.  The order,
    the eps and the final σ are those of
    ``torch.nn.utils.parametrizations.spectral_norm`` in training mode, which keeps u
    and v between calls.  If ``v`` is not given it is ``normalize(Wᵀ u)`` -- the v
    PyTorch holds after any power iteration on the same weight; pass PyTorch's ``_v``
    to match it exactly after the weight has changed.  ``n_power_iterations=0``
    gives PyTorch's evaluation mode (u, v fixed).  A 1-D weight is divided by its norm.

    σ is a lower bound on the largest singular value that tightens with iterations;
    compare with :func:`largest_singular_value`.

    Shapes:
        weight: ``(out, in)`` or ``(out, in, kh, kw)``; u: ``(weight.shape[dim],)``;
        v: ``(weight.size // weight.shape[dim],)``.

    Returns:
        ``(w_sn, u, sigma)``: ``w_sn`` like weight, the updated u (feed it to the next
        call, as PyTorch's ``_u`` buffer), and σ as a 0-d array.

    Raises:
        ShapeError: u or v has the wrong shape; ParameterError: bad dim, eps or
        ``n_power_iterations < 0``.
    """
    fn = "spectral_norm"
    weight = validation.as_float_array(weight, "weight", fn)
    u = validation.as_float_array(u, "u", fn).astype(weight.dtype, copy=False)
    validation.check_min_ndim(weight.shape, 1, "weight", fn, "(out, in) or (out, in, kh, kw)")
    if isinstance(n_power_iterations, bool) or not isinstance(
        n_power_iterations, (int, np.integer)
    ) or n_power_iterations < 0:
        raise ParameterError(
            f"{fn}: n_power_iterations must be an integer >= 0, got {n_power_iterations!r}"
        )
    eps = validation.check_eps(eps, fn)
    if weight.ndim == 1:  # nothing to approximate: σ = ‖w‖
        sigma = np.asarray(max(float(np.linalg.norm(weight)), eps), dtype=weight.dtype)
        return np.ascontiguousarray(weight / sigma), u.copy(), sigma
    dim = validation.check_dim(dim, weight.ndim, fn)

    W = _as_matrix(weight, dim)
    validation.check_shape(u.shape, (W.shape[0],), "u", fn)
    if v is None:
        v_ = _l2_normalize(W.T @ u, eps)  # v = normalize(Wᵀ u)
    else:
        v_ = validation.as_float_array(v, "v", fn).astype(weight.dtype, copy=False)
        validation.check_shape(v_.shape, (W.shape[1],), "v", fn)
    u_ = u.copy()
    for _ in range(n_power_iterations):
        u_ = _l2_normalize(W @ v_, eps)  # u ← normalize(W v)
        v_ = _l2_normalize(W.T @ u_, eps)  # v ← normalize(Wᵀ u)
    sigma = np.asarray(u_ @ (W @ v_), dtype=weight.dtype)  # σ = uᵀ W v
    return np.ascontiguousarray(weight / sigma), u_, sigma


def largest_singular_value(weight: ArrayLike, dim: int = 0) -> float:
    r"""The exact spectral norm :math:`\sigma_{\max}(W)` via SVD, for comparisons.

    Shapes:
        weight: ``(out, in)`` or ``(out, in, kh, kw)``, reshaped to
        ``(weight.shape[dim], -1)`` as :func:`spectral_norm` does.

    Returns:
        The largest singular value, a Python float.
    """
    fn = "largest_singular_value"
    weight = validation.as_float_array(weight, "weight", fn)
    validation.check_min_ndim(weight.shape, 2, "weight", fn, "(out, in) or (out, in, kh, kw)")
    dim = validation.check_dim(dim, weight.ndim, fn)
    return float(np.linalg.svd(_as_matrix(weight, dim), compute_uv=False)[0])
