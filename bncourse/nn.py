"""Batch normalization for PyTorch, written from scratch with a hand-written backward.

:class:`BatchNorm1d` and :class:`BatchNorm2d` are drop-in replacements for
``torch.nn.BatchNorm1d/2d``: the same constructor, the same parameters (``weight``,
``bias``) and buffers (``running_mean``, ``running_var``, ``num_batches_tracked``), so
the same ``state_dict`` keys, and the same training/evaluation behaviour.  The math is
in :class:`_BatchNormFn`, a ``torch.autograd.Function`` whose backward is the closed
form of :func:`bncourse.reference.batchnorm_backward_alt`; the modules only do the
bookkeeping.  Importing this module imports torch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx, once_differentiable

from bncourse.conventions import EPS, MOMENTUM
from bncourse.errors import DTypeError, ParameterError, ShapeError
from bncourse.reference import _checks

__all__ = ["BatchNorm1d", "BatchNorm2d"]


def _reduce_dims(x: Tensor) -> list[int]:
    """Every dimension except the channel dimension 1: ``[0, 2, 3, ...]``."""
    return [0, *range(2, x.dim())]


def _channel_shape(x: Tensor) -> list[int]:
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
        dims, shape = _reduce_dims(x), _channel_shape(x)
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
        dims, shape = _reduce_dims(dout), _channel_shape(dout)
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


class _BatchNorm(nn.Module):
    r"""Base of :class:`BatchNorm1d` and :class:`BatchNorm2d`; they differ only in the input check.

    .. math::
        y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \gamma + \beta

    with mean and biased variance per channel over every dimension but 1.  In training
    mode (or always, if ``track_running_stats=False``) these are the batch's
    statistics, and the buffers are updated with momentum weighting the **new** batch:
    ``running = (1 − momentum)·running + momentum·batch``, where ``running_var`` gets the
    **unbiased** batch variance; ``momentum=None`` is a cumulative average (factor
    ``1/num_batches_tracked``).  In evaluation mode the running statistics are used.

    Args:
        num_features: C, the number of channels.
        eps: added to the variance inside the square root. Default 1e-5.
        momentum: weight of the new batch in the running averages, or ``None``. Default 0.1.
        affine: learn ``weight`` (γ, ones) and ``bias`` (β, zeros). Default True.
        track_running_stats: keep ``running_mean`` (zeros), ``running_var`` (ones) and
            ``num_batches_tracked``; if False they are ``None``. Default True.
        device, dtype: where and in which dtype to create parameters and buffers.
        bias: (keyword only, as in torch >= 2.10) with ``affine=True``, ``bias=False``
            keeps γ but drops β. Default True.
    """

    _version = 2  # as torch.nn's _NormBase, so state_dict metadata agrees

    def __init__(
        self,
        num_features: int,
        eps: float = EPS,
        momentum: float | None = MOMENTUM,
        affine: bool = True,
        track_running_stats: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        fn = type(self).__name__
        self.num_features, self.eps, self.momentum = _checks.check_batchnorm_args(
            num_features, eps, momentum, fn
        )
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        C = self.num_features

        self.weight: nn.Parameter | None
        self.bias: nn.Parameter | None
        if self.affine:
            self.weight = nn.Parameter(torch.ones(C, **factory))
        else:
            self.register_parameter("weight", None)
        if self.affine and bias:
            self.bias = nn.Parameter(torch.zeros(C, **factory))
        else:
            self.register_parameter("bias", None)

        self.running_mean: Tensor | None
        self.running_var: Tensor | None
        self.num_batches_tracked: Tensor | None
        if self.track_running_stats:
            self.register_buffer("running_mean", torch.zeros(C, **factory))
            self.register_buffer("running_var", torch.ones(C, **factory))
            self.register_buffer(
                "num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device)
            )
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        """``running_mean = 0``, ``running_var = 1``, ``num_batches_tracked = 0``."""
        if self.running_mean is not None and self.running_var is not None:
            self.running_mean.zero_()
            self.running_var.fill_(1.0)
        if self.num_batches_tracked is not None:
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        """Reset the running statistics and set ``weight = 1``, ``bias = 0``."""
        self.reset_running_stats()
        with torch.no_grad():
            if self.weight is not None:
                self.weight.fill_(1.0)
            if self.bias is not None:
                self.bias.zero_()

    def _check_input_dim(self, x: Tensor) -> None:
        raise NotImplementedError

    def _check_input(self, x: Tensor) -> None:
        fn = type(self).__name__
        if not isinstance(x, Tensor):
            raise DTypeError(f"{fn} expects a torch.Tensor, got {type(x).__name__}")
        self._check_input_dim(x)
        if x.shape[1] != self.num_features:
            raise ShapeError(
                f"{fn} expects {self.num_features} channels (x.shape[1]), "
                f"got shape {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise DTypeError(f"{fn} expects a floating-point input, got dtype {x.dtype}")
        for name in ("weight", "running_mean"):
            ref = getattr(self, name)
            if ref is not None and ref.dtype != x.dtype:
                raise DTypeError(
                    f"{fn}: input dtype {x.dtype} does not match the module's {name} "
                    f"dtype {ref.dtype} (convert one with .to(dtype))"
                )

    def forward(self, x: Tensor) -> Tensor:
        """Normalize x; in training mode also update the running statistics.

        Shape:
            input and output: ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)`` (see subclass).

        Raises:
            ShapeError, DTypeError: wrong shape, channel count or dtype.
            BatchSizeError: training-mode statistics over one value per channel.
        """
        self._check_input(x)
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        if use_batch_stats:
            _checks.check_batch_size(tuple(x.shape), _reduce_dims(x), type(self).__name__)

        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative average
                factor = 1.0 / float(self.num_batches_tracked)
        # buffers are passed when they are updated (training) or used (evaluation)
        pass_buffers = not self.training or self.track_running_stats
        out: Tensor = _BatchNormFn.apply(
            x,
            self.weight,
            self.bias,
            self.running_mean if pass_buffers else None,
            self.running_var if pass_buffers else None,
            use_batch_stats,
            factor,
            self.eps,
        )
        return out

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        *args: Any,
    ) -> None:
        # as torch.nn: state dicts saved before version 2 lack num_batches_tracked; count 0
        version = local_metadata.get("version")
        key = prefix + "num_batches_tracked"
        if (version is None or version < 2) and self.track_running_stats and key not in state_dict:
            state_dict[key] = torch.tensor(0, dtype=torch.long)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalization over ``(N, C)`` or ``(N, C, L)``, like ``torch.nn.BatchNorm1d``.

    Statistics per channel over ``(N,)`` or ``(N, L)``.  See :class:`_BatchNorm` for the
    formula, the arguments and the running-statistics rule.

    Shape:
        input and output: ``(N, C)`` or ``(N, C, L)``.

    Example::

        bn = BatchNorm1d(4)
        bn.load_state_dict(torch.nn.BatchNorm1d(4).state_dict())  # and the other way
        y = bn(torch.randn(8, 4))
    """

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() not in (2, 3):
            raise ShapeError(
                f"BatchNorm1d expects (N, C) or (N, C, L), got shape {tuple(x.shape)}"
            )


class BatchNorm2d(_BatchNorm):
    """Batch normalization over ``(N, C, H, W)``, like ``torch.nn.BatchNorm2d``.

    Statistics per channel over ``(N, H, W)``.  See :class:`_BatchNorm` for the formula,
    the arguments and the running-statistics rule.

    Shape:
        input and output: ``(N, C, H, W)``.

    Example::

        bn = BatchNorm2d(3)
        y = bn(torch.randn(8, 3, 5, 5))
    """

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() != 4:
            raise ShapeError(f"BatchNorm2d expects (N, C, H, W), got shape {tuple(x.shape)}")
