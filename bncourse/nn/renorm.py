"""Batch Renormalization (Ioffe, 2017, arXiv:1702.03275) as PyTorch modules.

:class:`BatchRenorm1d` and :class:`BatchRenorm2d` correct the batch statistics towards the
running ones with ``r`` and ``d`` (clipped by ``r_max`` and ``d_max``);
:func:`renorm_limits` is the paper's relaxation schedule for those limits.

Importing this module imports torch.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from bncourse.conventions import BN_MOMENTUM, EPS
from bncourse.errors import ParameterError, ShapeError

__all__ = ["BatchRenorm1d", "BatchRenorm2d", "renorm_limits"]


class _BatchRenorm(nn.Module):
    r"""Batch Renormalization; subclasses fix the input's dimensionality.

    Training mode, with μ_B, biased σ²_B over every dim but 1, ``σ_B = √(σ²_B + ε)``,
    ``σ_run = √(running_var + ε)``:

    .. math::
        r = \operatorname{clip}(\sigma_B / \sigma_{run}, 1/r_{max}, r_{max}), \quad
        d = \operatorname{clip}((\mu_B - \mu_{run}) / \sigma_{run}, -d_{max}, d_{max}),
        \quad y = \gamma \Big(\frac{x - \mu_B}{\sigma_B} r + d\Big) + \beta

    r and d are *constants* for autograd (``detach``).  Then the running statistics are
    updated as in ``torch.nn.BatchNorm`` (momentum weights the new batch, unbiased
    variance).  Evaluation mode uses the running statistics.  ``r_max = 1, d_max = 0``
    is plain batch norm; ``r_max``/``d_max`` are plain attributes, so a training loop
    can relax them over time (:func:`renorm_limits`).
    """

    def __init__(
        self,
        num_features: int,
        eps: float = EPS,
        momentum: float = BN_MOMENTUM,
        r_max: float = 1.0,
        d_max: float = 0.0,
    ) -> None:
        super().__init__()
        self.running_mean: Tensor
        self.running_var: Tensor
        self.num_batches_tracked: Tensor
        if r_max < 1 or d_max < 0:
            raise ParameterError(f"need r_max >= 1 and d_max >= 0, got r_max={r_max}, d_max={d_max}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.r_max, self.d_max = float(r_max), float(d_max)
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        self.last_r: Tensor | None = None
        self.last_d: Tensor | None = None

    _ndim: tuple[int, ...] = ()
    _expects = ""

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() not in self._ndim or x.shape[1] != self.num_features:
            raise ShapeError(
                f"{type(self).__name__}({self.num_features}) expects {self._expects}, "
                f"got shape {tuple(x.shape)}"
            )
        dims = [0, *range(2, x.dim())]
        shape = [1, self.num_features] + [1] * (x.dim() - 2)
        w, b = self.weight.reshape(shape), self.bias.reshape(shape)
        if not self.training:
            inv = torch.rsqrt(self.running_var + self.eps).reshape(shape)
            return (x - self.running_mean.reshape(shape)) * inv * w + b
        m = x.numel() // x.shape[1]
        if m < 2:
            raise ShapeError(f"training batch renorm needs >1 value per channel, got x.shape={tuple(x.shape)}")
        mu = x.mean(dims)
        var = x.var(dims, unbiased=False)
        sigma_b = torch.sqrt(var + self.eps)
        sigma_run = torch.sqrt(self.running_var + self.eps)
        r = (sigma_b.detach() / sigma_run).clamp(1.0 / self.r_max, self.r_max)
        d = ((mu.detach() - self.running_mean) / sigma_run).clamp(-self.d_max, self.d_max)
        x_hat = (x - mu.reshape(shape)) / sigma_b.reshape(shape) * r.reshape(shape) + d.reshape(shape)
        with torch.no_grad():
            self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mu)
            self.running_var.mul_(1 - self.momentum).add_(self.momentum * var * (m / (m - 1)))
            self.num_batches_tracked.add_(1)
        self.last_r, self.last_d = r, d
        return x_hat * w + b


class BatchRenorm1d(_BatchRenorm):
    """Batch Renormalization for ``(N, C)`` or ``(N, C, L)`` inputs (see :class:`_BatchRenorm`)."""

    _ndim = (2, 3)
    _expects = "(N, C) or (N, C, L)"


class BatchRenorm2d(_BatchRenorm):
    """Batch Renormalization for ``(N, C, H, W)`` inputs, statistics over (N, H, W)."""

    _ndim = (4,)
    _expects = "(N, C, H, W)"


def renorm_limits(
    step: int,
    warmup: int,
    r_max: float = 3.0,
    r_max_at: int = 40_000,
    d_max: float = 5.0,
    d_max_at: int = 25_000,
) -> tuple[float, float]:
    """``(r_max, d_max)`` at ``step`` under Batch Renorm's relaxation schedule.

    Plain BN (1, 0) for the first ``warmup`` steps, then linear ramps reaching ``r_max``
    at step ``r_max_at`` and ``d_max`` at ``d_max_at``.  The paper's values are the
    defaults with ``warmup=5000`` (Ioffe 2017); pass scaled-down steps for short runs.
    """
    if not 0 <= warmup < min(r_max_at, d_max_at):
        raise ParameterError(f"need 0 <= warmup < r_max_at, d_max_at; got {warmup}, {r_max_at}, {d_max_at}")

    def ramp(final: float, start_value: float, at: int) -> float:
        frac = min(max((step - warmup) / (at - warmup), 0.0), 1.0)
        return start_value + frac * (final - start_value)

    return ramp(r_max, 1.0, r_max_at), ramp(d_max, 0.0, d_max_at)
