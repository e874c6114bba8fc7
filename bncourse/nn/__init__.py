"""PyTorch modules written from scratch, with hand-written backward passes.

* :mod:`bncourse.nn.functional` -- :func:`~bncourse.nn.functional.batch_norm`, like
  ``torch.nn.functional.batch_norm``; in the instructor edition it runs
  :mod:`bncourse.nn.from_scratch` (the closed-form backward, an answer the student build
  leaves out), in the student build torch's own.
* :mod:`bncourse.nn.batchnorm` -- :class:`BatchNorm1d`, :class:`BatchNorm2d`, drop-in
  replacements for torch's.
* :mod:`bncourse.nn.renorm` -- Batch Renormalization (:class:`BatchRenorm1d`, ``2d``).
* :mod:`bncourse.nn.noisy` -- :class:`NoisyShift` and :class:`L1BatchNorm`, the layers of
  Santurkar et al.'s experiments.
* :mod:`bncourse.nn.distributed` -- synchronized batch norm across processes (imported
  on its own: it starts processes).

Importing this package imports torch.
"""

from __future__ import annotations

from bncourse.nn import functional
from bncourse.nn.batchnorm import BatchNorm1d, BatchNorm2d
from bncourse.nn.noisy import L1BatchNorm, NoisyShift
from bncourse.nn.renorm import BatchRenorm1d, BatchRenorm2d

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchRenorm1d",
    "BatchRenorm2d",
    "L1BatchNorm",
    "NoisyShift",
    "functional",
]
