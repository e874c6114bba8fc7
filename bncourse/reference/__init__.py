"""NumPy reference implementations: the answers the course's exercises are checked against.

Functions compute, classes hold state.  Conventions are PyTorch's
(:mod:`bncourse.conventions`): eps = 1e-5 inside the square root, the biased variance to
normalize, the unbiased one in ``running_var``, momentum 0.1 weighting the new batch.
Every function accepts float32 and float64, preserves the dtype, returns contiguous
arrays, never mutates its inputs, and raises a :class:`~bncourse.errors.BNCourseError`
subclass on bad input.  This package imports only NumPy (no torch, no matplotlib).

Modules:
    batchnorm   batchnorm_forward / _backward / _backward_alt / _inference for (N, D)
    spatial     spatial_batchnorm_forward / _backward for (N, C, H, W)
    module      BatchNorm1d, the stateful layer with running statistics
    normalization  normalize(x, axes) and layernorm / groupnorm / instancenorm
    fold        fold_batchnorm into a linear or conv layer
    renorm      batch_renorm_forward / _backward
    weightnorm  weight_norm, spectral_norm, largest_singular_value

The functions are the formulas as written, at every size.  ``_fast`` (not imported here,
not used by the course) has the same batch norm functions with cache-blocked kernels,
for the benchmarks.
"""

from __future__ import annotations

from bncourse.reference.batchnorm import (
    BatchNormCache,
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    batchnorm_inference,
)
from bncourse.reference.fold import fold_batchnorm
from bncourse.reference.module import BatchNorm1d
from bncourse.reference.normalization import (
    GroupNormCache,
    LayerNormCache,
    NormalizeCache,
    groupnorm_backward,
    groupnorm_forward,
    instancenorm_backward,
    instancenorm_forward,
    layernorm_backward,
    layernorm_forward,
    normalize,
    normalize_backward,
)
from bncourse.reference.renorm import (
    BatchRenormCache,
    BatchRenormResult,
    batch_renorm_backward,
    batch_renorm_forward,
)
from bncourse.reference.spatial import spatial_batchnorm_backward, spatial_batchnorm_forward
from bncourse.reference.weightnorm import largest_singular_value, spectral_norm, weight_norm

__all__ = [
    "BatchNorm1d",
    "BatchNormCache",
    "BatchRenormCache",
    "BatchRenormResult",
    "GroupNormCache",
    "LayerNormCache",
    "NormalizeCache",
    "batch_renorm_backward",
    "batch_renorm_forward",
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "batchnorm_forward",
    "batchnorm_inference",
    "fold_batchnorm",
    "groupnorm_backward",
    "groupnorm_forward",
    "instancenorm_backward",
    "instancenorm_forward",
    "largest_singular_value",
    "layernorm_backward",
    "layernorm_forward",
    "normalize",
    "normalize_backward",
    "spatial_batchnorm_backward",
    "spatial_batchnorm_forward",
    "spectral_norm",
    "weight_norm",
]
