"""``BatchNorm1d`` in NumPy: the bookkeeping around the pure functions.

The math lives in :mod:`bncourse.reference.normalization` and
:mod:`bncourse.reference.batchnorm`; this class only owns the state -- the parameters
``weight`` (γ) and ``bias`` (β), the buffers ``running_mean``, ``running_var`` and
``num_batches_tracked`` -- and applies PyTorch's rules for updating and using it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from bncourse import validation
from bncourse.conventions import BN_MOMENTUM, EPS
from bncourse.errors import BNCourseError, DTypeError, ShapeError
from bncourse.reference.normalization import (
    NormalizeCache,
    accumulator,
    normalize,
    normalize_backward,
)
from bncourse.validation import FloatArray

__all__ = ["BatchNorm1d"]



class BatchNorm1d:
    r"""Batch normalization with running statistics, with ``torch.nn.BatchNorm1d``'s semantics.

    .. math::
        y = \gamma \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta

    In training mode (the default, and always when ``track_running_stats=False``) μ and
    σ² are the batch's mean and *biased* variance over ``(N,)`` or ``(N, L)``, and every
    forward pass updates the buffers, weighting the **new** batch by ``momentum``:

    .. math::
        \mu_{\text{run}} \leftarrow (1 - \text{momentum})\,\mu_{\text{run}}
            + \text{momentum}\,\mu_B, \qquad
        \sigma^2_{\text{run}} \leftarrow (1 - \text{momentum})\,\sigma^2_{\text{run}}
            + \text{momentum}\,\frac{m}{m - 1}\sigma^2_B

    with m the number of values per feature: ``running_var`` stores the **unbiased**
    variance while the normalization uses the biased one.  ``momentum=None`` uses the
    cumulative average, factor ``1 / num_batches_tracked`` (after incrementing it).  In
    evaluation mode, μ and σ² are ``running_mean`` and ``running_var``.

    Args:
        num_features: C, the number of features (channels).
        eps: added to the variance inside the square root. Default 1e-5.
        momentum: weight of the new batch in the running averages, in [0, 1], or
            ``None`` for a cumulative average. Default 0.1.
        affine: learn γ (``weight``, ones) and β (``bias``, zeros); if False both are
            ``None`` and γ = 1, β = 0.
        track_running_stats: keep ``running_mean`` (zeros), ``running_var`` (ones) and
            ``num_batches_tracked`` (0); if False they are ``None`` and batch statistics
            are used in both modes, as in PyTorch.
        dtype: dtype of the parameters and buffers (default float64).  The output has
            the dtype of the input.

    Attributes:
        weight, bias: ``(C,)`` or ``None``.
        running_mean, running_var: ``(C,)`` or ``None``.
        num_batches_tracked: ``int`` or ``None``.
        training: ``True`` after :meth:`train`, ``False`` after :meth:`eval`.
        dweight, dbias: ``∂L/∂γ`` and ``∂L/∂β`` from the last :meth:`backward`
            (overwritten, not accumulated; ``None`` before the first call or if not affine).

    Shapes:
        x: ``(N, C)`` or ``(N, C, L)``; output: like x.

    Example::

        bn = BatchNorm1d(3)
        y = bn.forward(np.random.randn(8, 3))   # training mode, buffers updated
        dx = bn.backward(np.ones((8, 3)))        # sets bn.dweight, bn.dbias
        bn.eval(); y1 = bn(np.random.randn(1, 3))  # one example is fine in eval mode
    """

    def __init__(
        self,
        num_features: int,
        eps: float = EPS,
        momentum: float | None = BN_MOMENTUM,
        affine: bool = True,
        track_running_stats: bool = True,
        dtype: DTypeLike = np.float64,
    ) -> None:
        fn = type(self).__name__
        self.num_features, self.eps, self.momentum = validation.check_batchnorm_args(
            num_features, eps, momentum, fn
        )
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self.dtype = np.dtype(dtype)
        if not np.issubdtype(self.dtype, np.floating):
            raise DTypeError(f"{fn}: dtype must be floating point, got {self.dtype}")
        self.training = True

        C = self.num_features
        self.weight: FloatArray | None = np.ones(C, self.dtype) if affine else None
        self.bias: FloatArray | None = np.zeros(C, self.dtype) if affine else None
        self.running_mean: FloatArray | None = None
        self.running_var: FloatArray | None = None
        self.num_batches_tracked: int | None = None
        if track_running_stats:
            self.reset_running_stats()
        self.dweight: FloatArray | None = None
        self.dbias: FloatArray | None = None
        self._cache: _ForwardCache | None = None

    # ------------------------------------------------------------------ mode and state

    def train(self, mode: bool = True) -> BatchNorm1d:
        """Switch to training mode (batch statistics, buffers updated); returns self."""
        self.training = bool(mode)
        return self

    def eval(self) -> BatchNorm1d:
        """Switch to evaluation mode (running statistics if tracked); returns self."""
        return self.train(False)

    def reset_running_stats(self) -> None:
        """``running_mean = 0``, ``running_var = 1``, ``num_batches_tracked = 0``."""
        if self.track_running_stats:
            self.running_mean = np.zeros(self.num_features, self.dtype)
            self.running_var = np.ones(self.num_features, self.dtype)
            self.num_batches_tracked = 0

    def state_dict(self) -> dict[str, FloatArray | int]:
        """Copies of the parameters and buffers under ``torch.nn.BatchNorm1d``'s keys.

        Returns:
            A dict with ``weight``, ``bias`` (if affine) and ``running_mean``,
            ``running_var``, ``num_batches_tracked`` (if tracked).
        """
        state: dict[str, FloatArray | int] = {}
        for key in ("weight", "bias", "running_mean", "running_var"):
            value = getattr(self, key)
            if value is not None:
                state[key] = value.copy()
        if self.num_batches_tracked is not None:
            state["num_batches_tracked"] = self.num_batches_tracked
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load arrays (NumPy, or anything ``np.asarray`` accepts) saved by :meth:`state_dict`.

        Raises:
            ShapeError: a key is missing or unexpected, or an array has the wrong shape.
        """
        fn = f"{type(self).__name__}.load_state_dict"
        expected = set(self.state_dict())
        if set(state) != expected:
            raise ShapeError(f"{fn}: expected keys {sorted(expected)}, got {sorted(state)}")
        for key in ("weight", "bias", "running_mean", "running_var"):
            if key in state:
                value = np.array(state[key], dtype=self.dtype)  # a copy
                validation.check_shape(value.shape, (self.num_features,), key, fn)
                setattr(self, key, value)
        if "num_batches_tracked" in state:
            self.num_batches_tracked = int(np.asarray(state["num_batches_tracked"]))

    # ------------------------------------------------------------------ forward/backward

    def _check_input(self, x: ArrayLike, fn: str) -> FloatArray:
        x = validation.as_float_array(x, "x", fn)
        C = self.num_features
        if x.ndim not in (2, 3) or x.shape[1] != C:
            raise ShapeError(
                f"{fn} expects x of shape (N, {C}) or (N, {C}, L), got shape {x.shape}"
            )
        return x

    def forward(self, x: ArrayLike) -> FloatArray:
        """Normalize ``x``; in training mode also update the running statistics.

        Shapes:
            x: ``(N, C)`` or ``(N, C, L)``.

        Returns:
            out, like x (same dtype, contiguous).

        Raises:
            ShapeError: x is not ``(N, C)``/``(N, C, L)`` with C = ``num_features``.
            DTypeError: x is not floating point.
            BatchSizeError: batch statistics over a single value (N·L = 1).
        """
        fn = f"{type(self).__name__}.forward"
        x = self._check_input(x, fn)
        axes = (0,) if x.ndim == 2 else (0, 2)
        shape = (1, self.num_features) + (1,) * (x.ndim - 2)  # broadcasts per feature

        rm, rv = self.running_mean, self.running_var
        if self.training or rm is None or rv is None:  # batch statistics
            validation.check_batch_size(x.shape, axes, fn)
            x_hat, norm = normalize(x, axes=axes, eps=self.eps)
            if self.training and rm is not None and rv is not None:
                self._update_running_stats(rm, rv, norm, m=x.size // self.num_features)
            cache = _ForwardCache(x_hat, norm.inv_std, norm)
        else:  # running statistics, constants
            mu = rm.reshape(shape).astype(x.dtype)
            inv_std = (1.0 / np.sqrt(rv + self.eps)).reshape(shape).astype(x.dtype)
            x_hat = (x - mu) * inv_std  # x̂ = (x − μ_run)/√(σ²_run + ε)
            cache = _ForwardCache(x_hat, inv_std, None)

        self._cache = cache
        if self.weight is None or self.bias is None:
            return np.ascontiguousarray(x_hat)
        gamma = self.weight.reshape(shape).astype(x.dtype, copy=False)
        beta = self.bias.reshape(shape).astype(x.dtype, copy=False)
        return np.ascontiguousarray(gamma * x_hat + beta)  # y = γ x̂ + β

    __call__ = forward

    def _update_running_stats(
        self, running_mean: FloatArray, running_var: FloatArray, norm: NormalizeCache, m: int
    ) -> None:
        """running ← (1 − factor)·running + factor·batch, with the unbiased batch variance."""
        self.num_batches_tracked = (self.num_batches_tracked or 0) + 1
        # momentum weights the new batch; momentum=None: cumulative average 1/n
        factor = 1.0 / self.num_batches_tracked if self.momentum is None else self.momentum
        mu = norm.mean.reshape(self.num_features)
        var_unbiased = norm.var.reshape(self.num_features) * (m / (m - 1))  # m/(m−1) σ²_B
        new_mean = (1.0 - factor) * running_mean + factor * mu
        new_var = (1.0 - factor) * running_var + factor * var_unbiased
        self.running_mean = new_mean.astype(self.dtype, copy=False)
        self.running_var = new_var.astype(self.dtype, copy=False)

    def backward(self, dout: ArrayLike) -> FloatArray:
        r"""Gradient through the last :meth:`forward`; sets ``dweight`` and ``dbias``.

        .. math::
            \frac{\partial L}{\partial \beta} = \sum dy, \quad
            \frac{\partial L}{\partial \gamma} = \sum dy\,\hat x, \quad
            \frac{\partial L}{\partial x} = \text{normalize\_backward}(\gamma\, dy)
            \ \text{(batch statistics)} \ \text{or}\ \frac{\gamma\, dy}{\sqrt{\sigma^2_{\text{run}}
            + \epsilon}} \ \text{(running statistics)}

        with the sums over ``(N,)`` or ``(N, L)``.

        Shapes:
            dout: like the last x.

        Returns:
            dx, like x.

        Raises:
            BNCourseError: no forward pass yet; ShapeError if dout has the wrong shape.
        """
        fn = f"{type(self).__name__}.backward"
        if self._cache is None:
            raise BNCourseError(f"{fn}: call forward before backward")
        x_hat, inv_std, norm = self._cache
        dout = validation.as_float_array(dout, "dout", fn).astype(x_hat.dtype, copy=False)
        validation.check_shape(dout.shape, x_hat.shape, "dout", fn)
        axes = (0,) if dout.ndim == 2 else (0, 2)
        shape = (1, self.num_features) + (1,) * (dout.ndim - 2)

        if self.weight is not None:
            acc = accumulator(dout.dtype)
            self.dbias = dout.sum(axis=axes, dtype=acc).astype(self.dtype)  # Σ dy
            self.dweight = np.sum(dout * x_hat, axis=axes, dtype=acc).astype(self.dtype)  # Σ dy x̂
            dx_hat = dout * self.weight.reshape(shape).astype(dout.dtype, copy=False)
        else:
            dx_hat = dout
        if norm is not None:  # μ, σ² came from the batch: the gradient flows through them
            return normalize_backward(dx_hat, norm)
        return np.ascontiguousarray(dx_hat * inv_std)  # running stats are constants

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.num_features}, eps={self.eps}, "
            f"momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats})"
        )


class _ForwardCache(NamedTuple):
    """What :meth:`BatchNorm1d.backward` needs from the last forward pass."""

    x_hat: FloatArray
    inv_std: FloatArray
    """Shaped to broadcast against x: ``(1, C)`` or ``(1, C, 1)``."""
    norm: NormalizeCache | None
    """The kernel's cache when batch statistics were used, else ``None``."""
