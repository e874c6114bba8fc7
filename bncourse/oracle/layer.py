"""Stand-in for notebook 05's ``BatchNorm1d``: a NumPy face on ``torch.nn.BatchNorm1d``.

The same constructor, attributes and methods as the course's NumPy class (what the
exercise's check and the notebook use): NumPy arrays in and out, the parameters and
buffers readable and assignable as arrays, ``train``/``eval``, ``forward``/``backward``,
``state_dict``/``load_state_dict``.  The state and the math live in a
``torch.nn.BatchNorm1d`` of the given dtype (float64 by default); ``backward`` is
``torch.autograd.grad`` through the last forward pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, DTypeLike
from torch import Tensor

from bncourse import validation
from bncourse.conventions import BN_MOMENTUM, EPS
from bncourse.errors import BNCourseError, DTypeError, ShapeError
from bncourse.oracle._torch import const, to_numpy, torch_dtype
from bncourse.validation import FloatArray

__all__ = ["BatchNorm1d"]

_PARAMS = ("weight", "bias")
_STATS = ("running_mean", "running_var")


class BatchNorm1d:
    """Batch normalization with running statistics: ``torch.nn.BatchNorm1d`` behind NumPy arrays.

    Args:
        num_features: C.
        eps: added to the variance inside the square root. Default 1e-5.
        momentum: weight of the new batch in the running averages, in [0, 1], or ``None``
            for a cumulative average. Default 0.1.
        affine: learn γ (``weight``) and β (``bias``); else both are ``None``.
        track_running_stats: keep ``running_mean``, ``running_var``, ``num_batches_tracked``;
            else they are ``None`` and batch statistics are used in both modes.
        dtype: dtype of the parameters, buffers and computation (default float64); the
            output has the dtype of the input.

    Attributes:
        weight, bias: ``(C,)`` arrays (views of torch's parameters) or ``None``; assigning an
            array replaces the parameter.
        running_mean, running_var: ``(C,)`` arrays (copies of torch's buffers) or ``None``.
        num_batches_tracked: ``int`` or ``None``.
        training: ``True`` after :meth:`train`, ``False`` after :meth:`eval`.
        dweight, dbias: ``∂L/∂γ``, ``∂L/∂β`` from the last :meth:`backward` (or ``None``).

    Shapes:
        x: ``(N, C)`` or ``(N, C, L)``; output: like x.
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
        self._torch_dtype = torch_dtype(self.dtype)
        self._module = torch.nn.BatchNorm1d(
            self.num_features, eps=self.eps, momentum=self.momentum, affine=self.affine,
            track_running_stats=self.track_running_stats, dtype=self._torch_dtype,
        )
        self.dweight: FloatArray | None = None
        self.dbias: FloatArray | None = None
        self._last: tuple[Tensor, Tensor, np.dtype[Any], tuple[Tensor, ...]] | None = None

    # ------------------------------------------------------------------ state as arrays

    def _vector(self, value: ArrayLike, name: str) -> Tensor:
        arr = np.array(value, dtype=self.dtype)  # a copy
        validation.check_shape(arr.shape, (self.num_features,), name, type(self).__name__)
        return const(arr, self._torch_dtype)

    @property
    def weight(self) -> FloatArray | None:
        w = self._module.weight
        return None if w is None else w.detach().numpy()

    @weight.setter
    def weight(self, value: ArrayLike | None) -> None:
        self._set_param("weight", value)

    @property
    def bias(self) -> FloatArray | None:
        b = self._module.bias
        return None if b is None else b.detach().numpy()

    @bias.setter
    def bias(self, value: ArrayLike | None) -> None:
        self._set_param("bias", value)

    def _set_param(self, name: str, value: ArrayLike | None) -> None:
        # a new Parameter (not copy_ into the old one): a graph recorded earlier keeps its own
        setattr(self._module, name, None if value is None else torch.nn.Parameter(self._vector(value, name)))

    def _buffer(self, name: str) -> FloatArray | None:
        t = getattr(self._module, name)
        return None if t is None else to_numpy(t, self.dtype)

    def _set_buffer(self, name: str, value: ArrayLike | None) -> None:
        if value is None:
            setattr(self._module, name, None)
        else:
            self._module.register_buffer(name, self._vector(value, name))

    @property
    def running_mean(self) -> FloatArray | None:
        return self._buffer("running_mean")

    @running_mean.setter
    def running_mean(self, value: ArrayLike | None) -> None:
        self._set_buffer("running_mean", value)

    @property
    def running_var(self) -> FloatArray | None:
        return self._buffer("running_var")

    @running_var.setter
    def running_var(self, value: ArrayLike | None) -> None:
        self._set_buffer("running_var", value)

    @property
    def num_batches_tracked(self) -> int | None:
        t = self._module.num_batches_tracked
        return None if t is None else int(t)

    @num_batches_tracked.setter
    def num_batches_tracked(self, value: int | None) -> None:
        self._module.register_buffer(
            "num_batches_tracked", None if value is None else torch.tensor(int(value), dtype=torch.long)
        )

    @property
    def training(self) -> bool:
        return self._module.training

    @training.setter
    def training(self, mode: bool) -> None:
        self._module.train(bool(mode))

    # ------------------------------------------------------------------ mode and state

    def train(self, mode: bool = True) -> BatchNorm1d:
        """Switch to training mode (batch statistics, buffers updated); returns self."""
        self.training = bool(mode)
        return self

    def eval(self) -> BatchNorm1d:
        """Switch to evaluation mode (running statistics if tracked); returns self."""
        return self.train(False)

    def reset_running_stats(self) -> None:
        """``running_mean = 0``, ``running_var = 1``, ``num_batches_tracked = 0`` (torch's own reset)."""
        self._module.reset_running_stats()

    def state_dict(self) -> dict[str, FloatArray | int]:
        """Copies of the parameters and buffers under ``torch.nn.BatchNorm1d``'s keys."""
        state: dict[str, FloatArray | int] = {}
        for key in _PARAMS + _STATS:
            value = getattr(self, key)
            if value is not None:
                state[key] = np.array(value)
        if self.num_batches_tracked is not None:
            state["num_batches_tracked"] = self.num_batches_tracked
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load arrays saved by :meth:`state_dict` (or anything ``np.asarray`` accepts).

        Raises:
            ShapeError: a key is missing or unexpected, or an array has the wrong shape.
        """
        fn = f"{type(self).__name__}.load_state_dict"
        expected = set(self.state_dict())
        if set(state) != expected:
            raise ShapeError(f"{fn}: expected keys {sorted(expected)}, got {sorted(state)}")
        for key in _PARAMS + _STATS:
            if key in state:
                value = np.asarray(state[key]).astype(self.dtype)
                validation.check_shape(value.shape, (self.num_features,), key, fn)
                setattr(self, key, value)
        if "num_batches_tracked" in state:
            self.num_batches_tracked = int(state["num_batches_tracked"])

    # ------------------------------------------------------------------ forward/backward

    def forward(self, x: ArrayLike) -> FloatArray:
        """``torch.nn.BatchNorm1d`` on x; in training mode it also updates the running statistics.

        Shapes:
            x: ``(N, C)`` or ``(N, C, L)`` → out, like x (same dtype).

        Raises:
            ShapeError, DTypeError; BatchSizeError: batch statistics over one value (N·L = 1).
        """
        fn = f"{type(self).__name__}.forward"
        xa = validation.as_float_array(x, "x", fn)
        C = self.num_features
        if xa.ndim not in (2, 3) or xa.shape[1] != C:
            raise ShapeError(f"{fn} expects x of shape (N, {C}) or (N, {C}, L), got shape {xa.shape}")
        if self.training or self._module.running_mean is None:
            validation.check_batch_size(xa.shape, (0,) if xa.ndim == 2 else (0, 2), fn)
        xt = const(xa, self._torch_dtype).requires_grad_(True)
        params = tuple(p for p in (self._module.weight, self._module.bias) if p is not None)
        out = self._module(xt)
        self._last = (xt, out, xa.dtype, params)
        return to_numpy(out, xa.dtype)

    __call__ = forward

    def backward(self, dout: ArrayLike) -> FloatArray:
        """``torch.autograd.grad`` through the last :meth:`forward`; sets ``dweight`` and ``dbias``.

        Shapes:
            dout: like the last x → dx, like x.

        Raises:
            BNCourseError: no forward pass yet; ShapeError if dout has the wrong shape.
        """
        fn = f"{type(self).__name__}.backward"
        if self._last is None:
            raise BNCourseError(f"{fn}: call forward before backward")
        xt, out, dtype, params = self._last
        d = validation.as_float_array(dout, "dout", fn)
        validation.check_shape(d.shape, tuple(xt.shape), "dout", fn)
        grads = torch.autograd.grad(out, (xt, *params), const(d, self._torch_dtype), retain_graph=True)
        if len(params) == 2:
            self.dweight, self.dbias = to_numpy(grads[1], self.dtype), to_numpy(grads[2], self.dtype)
        return to_numpy(grads[0], dtype)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.num_features}, eps={self.eps}, "
            f"momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats})"
        )
