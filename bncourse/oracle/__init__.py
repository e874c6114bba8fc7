"""Stand-ins computed by torch (and SciPy): the answer-free library the student edition ships.

One stand-in per graded exercise, with the name, signature, defaults, return structure,
shapes and dtypes of the instructor's solution -- NumPy in, NumPy out -- but computed
by the libraries' own functions (``F.batch_norm``, ``F.layer_norm``, ``F.group_norm``,
``torch.autograd.grad``, ``torch.quantile``, ``torch.optim.SGD``,
``torch.nn.utils.fusion``, ``torch.nn.utils.parametrizations``, ``torch.linalg``,
scikit-learn's ``StandardScaler``, SciPy's finite differences), never by the course's
NumPy formulas.  Experiments and notebooks use
them where they need a working implementation that is not the answer key
(:mod:`bncourse.reference`), and the student edition's fallback runs them until a
student's own function passes its check.

A forward pass that has a backward returns an opaque :class:`AutogradCache` (torch's
graph) as its cache; only the stand-in backward of the same forward reads it (any other
cache is a ``TypeError``), so pair stand-ins with stand-ins.

Modules (each imports torch; ``import bncourse.oracle`` itself does not -- names are
loaded on first use):

    statistics     standardize, activation_percentiles, saturated_fraction, population_stats
    landscape      gd_steps_to_converge, gradient_predictiveness
    batchnorm      batchnorm_forward / _backward / _backward_alt / _inference,
                   spatial_batchnorm_forward / _backward, recover_identity,
                   bias_grad_through_bn, scale_invariance_check, fold_batchnorm
    layer          BatchNorm1d
    normalization  normalize, layernorm_forward / _backward, groupnorm_forward / _backward,
                   batch_renorm_forward / _backward (BatchRenormResult)
    linalg         weight_norm, spectral_norm, largest_singular_value
    gradcheck      numerical_gradient (SciPy)
    network        softmax_cross_entropy, linear_backward, network_backward, batchnorm_layer_forward
    modern         rmsnorm_forward, ghost_batchnorm_forward, weight_standardize

This package never imports :mod:`bncourse.reference`, the lessons or the grader
(import-linter contracts in ``pyproject.toml``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bncourse.oracle._torch import AutogradCache
    from bncourse.oracle.batchnorm import (
        batchnorm_backward,
        batchnorm_backward_alt,
        batchnorm_forward,
        batchnorm_inference,
        bias_grad_through_bn,
        fold_batchnorm,
        recover_identity,
        scale_invariance_check,
        spatial_batchnorm_backward,
        spatial_batchnorm_forward,
    )
    from bncourse.oracle.gradcheck import numerical_gradient
    from bncourse.oracle.landscape import gd_steps_to_converge, gradient_predictiveness
    from bncourse.oracle.layer import BatchNorm1d
    from bncourse.oracle.linalg import largest_singular_value, spectral_norm, weight_norm
    from bncourse.oracle.modern import ghost_batchnorm_forward, rmsnorm_forward, weight_standardize
    from bncourse.oracle.network import (
        batchnorm_layer_forward,
        linear_backward,
        network_backward,
        softmax_cross_entropy,
    )
    from bncourse.oracle.normalization import (
        BatchRenormResult,
        batch_renorm_backward,
        batch_renorm_forward,
        groupnorm_backward,
        groupnorm_forward,
        layernorm_backward,
        layernorm_forward,
        normalize,
    )
    from bncourse.oracle.statistics import (
        activation_percentiles,
        population_stats,
        saturated_fraction,
        standardize,
    )

_HOME = {
    "softmax_cross_entropy": "network",
    "network_backward": "network",
    "linear_backward": "network",
    "batchnorm_layer_forward": "network",
    "AutogradCache": "_torch",
    "BatchNorm1d": "layer",
    "BatchRenormResult": "normalization",
    "activation_percentiles": "statistics",
    "batch_renorm_backward": "normalization",
    "batch_renorm_forward": "normalization",
    "batchnorm_backward": "batchnorm",
    "batchnorm_backward_alt": "batchnorm",
    "batchnorm_forward": "batchnorm",
    "batchnorm_inference": "batchnorm",
    "bias_grad_through_bn": "batchnorm",
    "fold_batchnorm": "batchnorm",
    "gd_steps_to_converge": "landscape",
    "ghost_batchnorm_forward": "modern",
    "gradient_predictiveness": "landscape",
    "groupnorm_backward": "normalization",
    "groupnorm_forward": "normalization",
    "largest_singular_value": "linalg",
    "layernorm_backward": "normalization",
    "layernorm_forward": "normalization",
    "normalize": "normalization",
    "numerical_gradient": "gradcheck",
    "population_stats": "statistics",
    "recover_identity": "batchnorm",
    "rmsnorm_forward": "modern",
    "saturated_fraction": "statistics",
    "scale_invariance_check": "batchnorm",
    "spatial_batchnorm_backward": "batchnorm",
    "spatial_batchnorm_forward": "batchnorm",
    "spectral_norm": "linalg",
    "standardize": "statistics",
    "weight_norm": "linalg",
    "weight_standardize": "modern",
}
"""Public name -> the submodule that defines it (imported on first access)."""

__all__ = [
    "AutogradCache",
    "BatchNorm1d",
    "BatchRenormResult",
    "activation_percentiles",
    "batch_renorm_backward",
    "batch_renorm_forward",
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "batchnorm_forward",
    "batchnorm_inference",
    "batchnorm_layer_forward",
    "bias_grad_through_bn",
    "fold_batchnorm",
    "gd_steps_to_converge",
    "ghost_batchnorm_forward",
    "gradient_predictiveness",
    "groupnorm_backward",
    "groupnorm_forward",
    "largest_singular_value",
    "layernorm_backward",
    "layernorm_forward",
    "linear_backward",
    "network_backward",
    "normalize",
    "numerical_gradient",
    "population_stats",
    "recover_identity",
    "rmsnorm_forward",
    "saturated_fraction",
    "scale_invariance_check",
    "softmax_cross_entropy",
    "spatial_batchnorm_backward",
    "spatial_batchnorm_forward",
    "spectral_norm",
    "standardize",
    "weight_norm",
    "weight_standardize",
]


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` (and with it torch) on first access."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
