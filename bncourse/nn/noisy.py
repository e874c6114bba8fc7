"""Torch layers for notebook 02's experiments: Santurkar et al.'s noisy BN and an ℓ1 BN."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["L1BatchNorm", "NoisyShift"]


class NoisyShift(nn.Module):
    """Santurkar et al.'s "noisy BN", placed right after a BN layer.

    In training mode, at every forward pass (one SGD step) it draws for each unit j a mean
    ``mu_j ~ U(-mean_range, mean_range)`` and a scale ``s_j ~ U(1 - scale_range,
    1 + scale_range)``, then transforms every activation independently:

    .. math::  y'_{ij} = (s_j + 0.1\\,\\xi_{ij})\\, y_{ij} + \\mu_j + 0.1\\,\\zeta_{ij},
               \\qquad \\xi, \\zeta \\sim \\mathcal{N}(0, 1)

    — non-zero-mean, non-unit-variance noise from a distribution that changes every step.
    In eval mode it is the identity.  Shapes: (N, D) → (N, D).
    """

    def __init__(self, num_features: int, mean_range: float = 1.0, scale_range: float = 0.5,
                 seed: int = 0) -> None:
        super().__init__()
        self.num_features = num_features
        self.mean_range = mean_range
        self.scale_range = scale_range
        self.generator = torch.Generator().manual_seed(seed)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return y
        d, gen = self.num_features, self.generator
        mu = (torch.rand(d, generator=gen) * 2 - 1) * self.mean_range
        s = 1 + (torch.rand(d, generator=gen) * 2 - 1) * self.scale_range
        xi = torch.randn(y.shape, generator=gen)
        zeta = torch.randn(y.shape, generator=gen)
        return (s + 0.1 * xi) * y + mu + 0.1 * zeta


class L1BatchNorm(nn.Module):
    """Batch norm with the ℓ1 scale: divide by the mean absolute deviation.

    .. math::  \\hat x = \\frac{x - \\mu_B}{\\sqrt{\\pi/2}\\;\\mathrm{mean}_B|x - \\mu_B| + \\epsilon},
               \\qquad y = \\gamma \\hat x + \\beta

    (√(π/2) makes the scale equal to the std for Gaussian inputs).  Running mean and
    scale are kept as in BN (momentum 0.1) for eval mode.  Shapes: (N, D) → (N, D).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.running_mean: torch.Tensor
        self.running_scale: torch.Tensor
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_scale", torch.ones(num_features))
        self.eps, self.momentum = eps, momentum

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            mu = x.mean(0)
            scale = (x - mu).abs().mean(0) * math.sqrt(math.pi / 2)
            with torch.no_grad():
                self.running_mean.lerp_(mu, self.momentum)
                self.running_scale.lerp_(scale, self.momentum)
        else:
            mu, scale = self.running_mean, self.running_scale
        return self.weight * (x - mu) / (scale + self.eps) + self.bias
