"""Functional batch normalization for PyTorch, like ``torch.nn.functional.batch_norm``.

:func:`batch_norm` takes the same arguments as torch's and computes the same thing.  In
the instructor edition it runs the course's from-scratch implementation
(:class:`bncourse.nn.from_scratch.BatchNormFunction`, with the closed-form backward of
:func:`bncourse.reference.batchnorm_backward_alt` written by hand); in the student build,
which carries no answers, it is ``torch.nn.functional.batch_norm`` itself
(:data:`BACKEND` says which).  The modules of :mod:`bncourse.nn` do their bookkeeping and
call it.  Importing this module imports torch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from bncourse.conventions import BN_MOMENTUM, EPS
from bncourse.edition import is_student_edition
from bncourse.errors import ParameterError
from bncourse.nn.shapes import channel_shape, reduce_dims

__all__ = ["BACKEND", "batch_norm", "channel_shape", "reduce_dims"]

BACKEND = "torch.nn.functional.batch_norm" if is_student_edition() else "bncourse (from scratch)"
"""Which implementation :func:`batch_norm` runs in this build of the package."""


def batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = BN_MOMENTUM,
    eps: float = EPS,
) -> Tensor:
    r"""Batch normalization of ``input`` over every dimension but 1, as ``torch.nn.functional.batch_norm``.

    .. math::
        y = \gamma \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta

    With ``training=True``, μ and σ² are the batch's statistics (σ² biased) and the
    running buffers, when given, are updated in place:
    ``running = (1 − momentum)·running + momentum·batch`` with the unbiased variance.
    With ``training=False``, μ and σ² are ``running_mean`` and ``running_var``.

    Shapes:
        input: ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)``; running_mean, running_var,
        weight, bias: ``(C,)``.  Returns a tensor shaped like input.

    Raises:
        ParameterError: ``training=False`` without running statistics.
    """
    if not training and (running_mean is None or running_var is None):
        raise ParameterError("batch_norm: training=False needs running_mean and running_var")
    if is_student_edition():
        return torch.nn.functional.batch_norm(input, running_mean, running_var, weight, bias,
                                              training, float(momentum), float(eps))
    from bncourse.nn.from_scratch import BatchNormFunction

    out: Tensor = BatchNormFunction.apply(input, weight, bias, running_mean, running_var, training,
                                          float(momentum), float(eps))
    return out
