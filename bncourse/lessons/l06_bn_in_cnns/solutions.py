"""The solutions of notebook 06's exercises, one per exercise id.

A re-export, not a copy: the instructor's implementations live in
:mod:`bncourse.reference` (the course's NumPy library, also used by the tests), and this
module only names them, exactly as the student's functions are named.

==============================  ========================================================
exercise id                     implementation
==============================  ========================================================
``spatial_batchnorm_forward``   :func:`bncourse.reference.spatial_batchnorm_forward`
``spatial_batchnorm_backward``  :func:`bncourse.reference.spatial_batchnorm_backward`
``fold_batchnorm``              :func:`bncourse.reference.fold_batchnorm`
==============================  ========================================================
"""

from __future__ import annotations

from bncourse.reference import fold_batchnorm, spatial_batchnorm_backward, spatial_batchnorm_forward

__all__ = ["fold_batchnorm", "spatial_batchnorm_backward", "spatial_batchnorm_forward"]
