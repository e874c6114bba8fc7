"""Small PyTorch models for the course's experiments on the 8×8 digits.

``make_mlp`` builds the BN paper's Figure-1 network at laptop scale (fully connected
layers of sigmoid units, optionally with a normalization layer before or after each
activation); ``make_cnn`` builds a two-block CNN for 1×8×8 images with a choice of
normalization.  Both are seeded, so the same arguments give the same initial weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from bncourse.errors import ParameterError

__all__ = ["ACTIVATIONS", "NORMS", "activation_layer", "init_scaled_", "make_cnn", "make_mlp"]

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
}

NORMS = ("none", "bn", "bn_after", "ln", "gn", "in")
"""Normalization choices: BatchNorm before the activation (``"bn"``, the paper's choice),
BatchNorm after it (``"bn_after"``), LayerNorm, GroupNorm, InstanceNorm, or none."""


def activation_layer(name: str) -> nn.Module:
    """A new activation module by name (a key of :data:`ACTIVATIONS`); ParameterError otherwise."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ParameterError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}") from None


def init_scaled_(model: nn.Module, scale: float) -> nn.Module:
    """Multiply every Linear/Conv weight by ``scale`` in place (for initialization sweeps)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.weight.mul_(scale)
    return model


def make_mlp(
    in_features: int = 64,
    hidden: Sequence[int] = (100, 100, 100),
    out_features: int = 10,
    activation: str = "sigmoid",
    norm: str = "none",
    norm_factory: Callable[[int], nn.Module] | None = None,
    init_scale: float = 1.0,
    seed: int = 0,
) -> nn.Sequential:
    """A fully connected network ``Linear → [norm] → act → [norm] ... → Linear``.

    Args:
        norm: ``"none"``, ``"bn"`` (BatchNorm1d before each activation), ``"bn_after"``
            (after it) or ``"ln"`` (LayerNorm before it).
        norm_factory: builds the normalization layer for ``width`` features instead of
            the default one (e.g. ``bncourse.nn.BatchNorm1d`` or a noisy BN).
        init_scale: multiplies the default initial weights (1.0 = PyTorch's default).
        seed: seeds the initial weights.

    Shapes: input (N, in_features) → logits (N, out_features).
    """
    if norm not in ("none", "bn", "bn_after", "ln"):
        raise ParameterError(f"make_mlp norm must be 'none', 'bn', 'bn_after' or 'ln', got {norm!r}")
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    width_in = in_features
    for width in hidden:
        layers.append(nn.Linear(width_in, width))
        norm_layer: nn.Module | None = None
        if norm != "none":
            if norm_factory is not None:
                norm_layer = norm_factory(width)
            elif norm == "ln":
                norm_layer = nn.LayerNorm(width)
            else:
                norm_layer = nn.BatchNorm1d(width)
        if norm_layer is not None and norm != "bn_after":
            layers.append(norm_layer)
        layers.append(activation_layer(activation))
        if norm_layer is not None and norm == "bn_after":
            layers.append(norm_layer)
        width_in = width
    layers.append(nn.Linear(width_in, out_features))
    model = nn.Sequential(*layers)
    if init_scale != 1.0:
        init_scaled_(model, init_scale)
    return model


def _norm2d(norm: str, channels: int, groups: int, factory: Callable[[int], nn.Module] | None) -> nn.Module | None:
    if norm == "none":
        return None
    if factory is not None:
        return factory(channels)
    if norm == "bn":
        return nn.BatchNorm2d(channels)
    if norm == "gn":
        return nn.GroupNorm(min(groups, channels), channels)
    if norm == "ln":
        return nn.GroupNorm(1, channels)  # LayerNorm over (C, H, W)
    if norm == "in":
        return nn.GroupNorm(channels, channels)  # InstanceNorm with affine per channel
    raise ParameterError(f"make_cnn norm must be one of {NORMS[:1] + NORMS[1:2] + NORMS[3:]}, got {norm!r}")


def make_cnn(
    channels: Sequence[int] = (16, 32),
    activation: str = "relu",
    norm: str = "none",
    groups: int = 4,
    norm_factory: Callable[[int], nn.Module] | None = None,
    init_scale: float = 1.0,
    n_classes: int = 10,
    seed: int = 0,
) -> nn.Sequential:
    """A small CNN for 1×8×8 digits: ``[conv3×3 → norm → act] × len(channels) → pool → linear``.

    The second and later blocks use stride 2 (8×8 → 4×4 → 2×2).  With a normalization
    the convolutions have no bias (it would be absorbed by β).

    Args:
        norm: ``"none"``, ``"bn"``, ``"gn"`` (``groups`` groups), ``"ln"`` (GroupNorm with
            one group = LayerNorm over C, H, W) or ``"in"`` (one group per channel).
        norm_factory: builds the normalization for ``channels`` channels instead (e.g.
            ``bncourse.nn.BatchNorm2d``).

    Shapes: input (N, 1, 8, 8) → logits (N, n_classes).
    """
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    c_in = 1
    for i, c in enumerate(channels):
        stride = 1 if i == 0 else 2
        norm_layer = _norm2d(norm, c, groups, norm_factory)
        layers.append(nn.Conv2d(c_in, c, 3, stride=stride, padding=1, bias=norm_layer is None))
        if norm_layer is not None:
            layers.append(norm_layer)
        layers.append(activation_layer(activation))
        c_in = c
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, n_classes)]
    model = nn.Sequential(*layers)
    if init_scale != 1.0:
        init_scaled_(model, init_scale)
    return model
