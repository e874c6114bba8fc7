"""How per-channel quantities line up with an ``(N, C, ...)`` tensor.  Imports torch."""

from __future__ import annotations

from torch import Tensor

__all__ = ["channel_shape", "reduce_dims"]


def reduce_dims(x: Tensor) -> list[int]:
    """Every dimension except the channel dimension 1: ``[0, 2, 3, ...]``."""
    return [0, *range(2, x.dim())]


def channel_shape(x: Tensor) -> list[int]:
    """``[1, C, 1, ...]``: how a per-channel vector broadcasts against x."""
    return [1, x.shape[1]] + [1] * (x.dim() - 2)
