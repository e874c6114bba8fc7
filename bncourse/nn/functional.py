"""Functional batch normalization for PyTorch, like ``torch.nn.functional.batch_norm``.

:func:`batch_norm` takes the same arguments as torch's and computes the same thing, with
the closed-form backward of :func:`bncourse.reference.batchnorm_backward_alt` written by
hand in :class:`_BatchNormFn` (a ``torch.autograd.Function``).  The modules of
:mod:`bncourse.nn` do their bookkeeping and call it.  Importing this module imports torch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from bncourse.conventions import BN_MOMENTUM, EPS
from bncourse.errors import ParameterError

__all__ = ["batch_norm", "channel_shape", "reduce_dims"]


def reduce_dims(x: Tensor) -> list[int]:
    """Every dimension except the channel dimension 1: ``[0, 2, 3, ...]``."""
    return [0, *range(2, x.dim())]


def channel_shape(x: Tensor) -> list[int]:
    """``[1, C, 1, ...]``: how a per-channel vector broadcasts against x."""
    return [1, x.shape[1]] + [1] * (x.dim() - 2)


class _BatchNormFn(torch.autograd.Function):
    r"""``y = γ (x − μ)/√(σ² + ε) + β`` with a closed-form backward.

    ``forward(x, gamma, beta, running_mean, running_var, use_batch_stats, factor, eps)``:
    with ``use_batch_stats`` μ, σ² are the batch's (biased) statistics over every
    dimension but 1, and the running buffers, if given, are updated in place:
    ``running = (1 − factor)·running + factor·batch`` with the unbiased variance.
    Otherwise μ, σ² are the running buffers.  ``gamma``/``beta`` may be ``None``.
    """

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        x: Tensor,
        gamma: Tensor | None,
        beta: Tensor | None,
        running_mean: Tensor | None,
        running_var: Tensor | None,
        use_batch_stats: bool,
        factor: float,
        eps: float,
    ) -> Tensor:
        dims, shape = reduce_dims(x), channel_shape(x)
        if use_batch_stats:
            mu = x.mean(dim=dims, keepdim=True)  # μ = (1/m) Σ x
            x_centered = x - mu
            var = (x_centered * x_centered).mean(dim=dims, keepdim=True)  # σ², biased
            if running_mean is not None and running_var is not None:
                m = x.numel() // x.shape[1]
                running_mean.mul_(1.0 - factor).add_(factor * mu.flatten())
                running_var.mul_(1.0 - factor).add_((factor * m / (m - 1)) * var.flatten())
        else:
            if running_mean is None or running_var is None:
                raise ParameterError("_BatchNormFn: use_batch_stats=False needs running statistics")
            x_centered = x - running_mean.view(shape)
            var = running_var.view(shape)
        inv_std = torch.rsqrt(var + eps)  # 1/√(σ² + ε)
        x_hat = x_centered * inv_std  # x̂ = (x − μ)/√(σ² + ε)
        out = x_hat
        if gamma is not None:
            out = out * gamma.view(shape)
        if beta is not None:
            out = out + beta.view(shape)  # y = γ x̂ + β

        # gamma is None when not affine: save_for_backward accepts None (its stub says Tensor)
        ctx.save_for_backward(x_hat, inv_std, gamma)  # type: ignore[arg-type]
        ctx.use_batch_stats = use_batch_stats  # type: ignore[attr-defined]
        ctx.eps = eps  # type: ignore[attr-defined]
        return out.contiguous()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dout: Tensor) -> tuple[Tensor | None, ...]:
        x_hat, inv_std, gamma = ctx.saved_tensors
        dims, shape = reduce_dims(dout), channel_shape(dout)
        m = dout.numel() // dout.shape[1]

        dbeta = dout.sum(dim=dims, keepdim=True)  # Σ dy
        dgamma = (dout * x_hat).sum(dim=dims, keepdim=True)  # Σ dy x̂
        scale = inv_std if gamma is None else gamma.view(shape) * inv_std  # γ/√(σ² + ε)
        if ctx.use_batch_stats:  # dx = (γ inv_std / m)(m dy − Σ dy − x̂ Σ dy x̂)
            dx = (scale / m) * (m * dout - dbeta - x_hat * dgamma)
        else:  # running statistics are constants
            dx = scale * dout

        needs = ctx.needs_input_grad
        return (
            dx.contiguous() if needs[0] else None,
            dgamma.flatten() if needs[1] else None,
            dbeta.flatten() if needs[2] else None,
            None,  # running_mean
            None,  # running_var
            None,  # use_batch_stats
            None,  # factor
            None,  # eps
        )


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
    out: Tensor = _BatchNormFn.apply(input, weight, bias, running_mean, running_var, training,
                                     float(momentum), float(eps))
    return out
