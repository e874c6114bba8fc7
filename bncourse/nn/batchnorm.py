"""Batch normalization for PyTorch, written from scratch with a hand-written backward.

:class:`BatchNorm1d` and :class:`BatchNorm2d` are drop-in replacements for
``torch.nn.BatchNorm1d/2d``: the same constructor, the same parameters (``weight``,
``bias``) and buffers (``running_mean``, ``running_var``, ``num_batches_tracked``), so
the same ``state_dict`` keys, and the same training/evaluation behaviour.  The math is
in :func:`bncourse.nn.functional.batch_norm`, whose backward is the closed form of
:func:`bncourse.reference.batchnorm_backward_alt`; the modules only do the bookkeeping.  Importing this module imports torch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from bncourse import validation
from bncourse.conventions import BN_MOMENTUM, EPS
from bncourse.errors import DTypeError, ShapeError
from bncourse.nn import functional

__all__ = ["BatchNorm1d", "BatchNorm2d"]


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
        momentum: float | None = BN_MOMENTUM,
        affine: bool = True,
        track_running_stats: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        fn = type(self).__name__
        self.num_features, self.eps, self.momentum = validation.check_batchnorm_args(
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
            validation.check_batch_size(tuple(x.shape), functional.reduce_dims(x), type(self).__name__)

        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative average
                factor = 1.0 / float(self.num_batches_tracked)
        # buffers are passed when they are updated (training) or used (evaluation)
        pass_buffers = not self.training or self.track_running_stats
        return functional.batch_norm(
            x,
            self.running_mean if pass_buffers else None,
            self.running_var if pass_buffers else None,
            self.weight,
            self.bias,
            training=use_batch_stats,
            momentum=factor,
            eps=self.eps,
        )

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
