"""Batch normalization written from scratch for PyTorch: the forward and the closed-form backward.

:class:`BatchNormFunction` is a ``torch.autograd.Function`` whose backward is the closed
form of :func:`bncourse.reference.batchnorm_backward_alt` written by hand;
:func:`bncourse.nn.functional.batch_norm` uses it in the instructor edition.  This module
is an answer (notebooks 03 and 06 ask for this backward): the student build of the
package leaves it out, and there ``batch_norm`` is torch's own.  Importing it imports torch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from bncourse.errors import ParameterError
from bncourse.nn.shapes import channel_shape, reduce_dims

__all__ = ["BatchNormFunction"]


class BatchNormFunction(torch.autograd.Function):
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
                raise ParameterError("BatchNormFunction: use_batch_stats=False needs running statistics")
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
