"""What every stand-in shares: NumPy ↔ torch conversion and the autograd cache.

The stand-ins take and return NumPy arrays.  Inside they compute in float64 tensors
(:func:`leaf`, :func:`const`) and hand back arrays in the caller's dtype
(:func:`to_numpy`).  A forward pass that has a backward returns an
:class:`AutogradCache`: torch's graph from the inputs to the output, which
:func:`backward_through` differentiates with ``torch.autograd.grad``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, DTypeLike
from torch import Tensor

from bncourse import validation
from bncourse.validation import FloatArray

__all__ = ["AutogradCache", "backward_through", "const", "leaf", "to_numpy", "torch_dtype"]

F64 = torch.float64


def torch_dtype(dtype: DTypeLike) -> torch.dtype:
    """The torch dtype of a NumPy dtype (``np.float32`` → ``torch.float32``)."""
    return torch.from_numpy(np.empty(0, dtype=np.dtype(dtype))).dtype


def const(a: ArrayLike, dtype: torch.dtype = F64) -> Tensor:
    """A float64 (or ``dtype``) tensor holding a *copy* of ``a``."""
    return torch.tensor(np.asarray(a), dtype=dtype)


def leaf(a: ArrayLike, dtype: torch.dtype = F64) -> Tensor:
    """Like :func:`const`, and ``requires_grad``: an input autograd differentiates for."""
    return const(a, dtype).requires_grad_(True)


def to_numpy(t: Tensor, dtype: DTypeLike) -> FloatArray:
    """A new C-contiguous NumPy array with the values of ``t``, in ``dtype``."""
    return np.array(t.detach().cpu().numpy(), dtype=dtype, order="C")


class AutogradCache:
    """The cache of a stand-in forward pass: torch's graph, not a formula.

    It holds the input tensors (``x`` and the parameters, which require grad), the
    output tensor and how the output was made; the stand-in backward of the same forward
    differentiates the output with ``torch.autograd.grad``.  Any other backward (the
    course's solution, a student's) cannot read it, and the stand-in backwards read no
    other cache.

    Attributes:
        forward: the name of the stand-in forward that made it, e.g. ``"batchnorm_forward"``.
        inputs: name → leaf tensor (float64), e.g. ``{"x", "gamma", "beta"}``.
        output: the output tensor (float64), shaped like ``x``.
        dtype: the dtype of ``x``, in which the gradients are returned.
        eps: the ε of the forward.
    """

    __slots__ = ("dtype", "eps", "forward", "inputs", "output")

    def __init__(
        self, forward: str, inputs: dict[str, Tensor], output: Tensor, dtype: np.dtype[Any], eps: float
    ) -> None:
        self.forward = forward
        self.inputs = inputs
        self.output = output
        self.dtype = np.dtype(dtype)
        self.eps = eps

    def __repr__(self) -> str:
        return (f"<bncourse.oracle.{self.forward} cache: torch graph of an output of shape "
                f"{tuple(self.output.shape)}, {self.dtype}>")


def backward_through(dout: ArrayLike, cache: Any, fn: str, forward: str) -> tuple[FloatArray, ...]:
    """The gradients of ``Σ output · dout`` with respect to each of ``cache.inputs``, in order.

    ``fn`` is the calling backward's name, ``forward`` the stand-in forward whose cache it
    needs.  The graph is kept, so a cache may be differentiated again.

    Raises:
        TypeError: ``cache`` is not an :class:`AutogradCache` of ``forward``.
        DTypeError, ShapeError: ``dout`` is not a float array shaped like the output.
    """
    if not isinstance(cache, AutogradCache) or cache.forward != forward:
        got = (f"the cache of bncourse.oracle.{cache.forward}" if isinstance(cache, AutogradCache)
               else f"a {type(cache).__name__}")
        raise TypeError(
            f"{fn} (bncourse.oracle): the stand-in backward needs the stand-in forward's cache, "
            f"the second value returned by bncourse.oracle.{forward}; got {got}. A backward reads "
            "only the cache of its own forward: pair the stand-ins together and your own "
            "functions together."
        )
    dout = validation.as_float_array(dout, "dout", fn)
    validation.check_shape(dout.shape, tuple(cache.output.shape), "dout", fn)
    grads = torch.autograd.grad(cache.output, tuple(cache.inputs.values()),
                                grad_outputs=const(dout, cache.output.dtype), retain_graph=True)
    return tuple(to_numpy(g, cache.dtype) for g in grads)
