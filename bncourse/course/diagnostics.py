"""What a network's layers hold: batch-norm buffers and per-layer gradient norms.

One copy of each probe the lessons use (05 reads BN buffers, 02 and 06 measure the
gradient norm of each layer).  Importing this module imports torch.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from bncourse.errors import ParameterError

Float64Array = NDArray[np.float64]

__all__ = ["batchnorm_buffers", "weight_gradient_norms"]



def batchnorm_buffers(layer: nn.Module) -> tuple[Float64Array, Float64Array]:
    """``(running_mean, running_var)`` of a batch-norm layer as float64 NumPy copies.

    Shapes: both ``(C,)``.

    Raises:
        ParameterError: the layer keeps no running statistics (``track_running_stats=False``).
    """
    rm, rv = getattr(layer, "running_mean", None), getattr(layer, "running_var", None)
    if not isinstance(rm, torch.Tensor) or not isinstance(rv, torch.Tensor):
        raise ParameterError(f"{type(layer).__name__} has track_running_stats=False: no running statistics")
    return rm.detach().double().numpy().copy(), rv.detach().double().numpy().copy()


def weight_gradient_norms(model: nn.Module, x: Any, y: Any, layer_type: type[nn.Module] = nn.Linear) -> Float64Array:
    """‖∂L/∂W‖ of every ``layer_type`` layer (input to output) for the cross-entropy loss on one
    batch, in training mode.

    Computed on a deep copy, so the model's parameters, gradients, mode and BN buffers are
    left as they were.  A layer that received no gradient counts 0.

    Shapes: x ``(N, ...)`` (the model's input), y ``(N,)`` class indices; returns ``(L,)``.
    """
    probe = copy.deepcopy(model)
    probe.train()
    probe.zero_grad()
    loss = nn.functional.cross_entropy(probe(torch.as_tensor(x)), torch.as_tensor(y))
    loss.backward()
    norms = []
    for m in probe.modules():
        if isinstance(m, layer_type):
            grad = getattr(m, "weight").grad  # noqa: B009 - nn.Module types attributes as Tensor | Module
            norms.append(float(grad.norm()) if isinstance(grad, torch.Tensor) else 0.0)
    return np.array(norms)
