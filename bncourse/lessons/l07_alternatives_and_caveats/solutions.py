"""The solutions of notebook 07's exercises, one per exercise id.

A re-export, not a copy: the instructor's implementations live in
:mod:`bncourse.reference` (the course's NumPy library, also used by the experiments and
the tests), and this module only names them, exactly as the student's functions are named.

========================  ==================================================
exercise id               implementation
========================  ==================================================
``layernorm_forward``     :func:`bncourse.reference.layernorm_forward`
``layernorm_backward``    :func:`bncourse.reference.layernorm_backward`
``groupnorm_forward``     :func:`bncourse.reference.groupnorm_forward`
``groupnorm_backward``    :func:`bncourse.reference.groupnorm_backward`
``batch_renorm_forward``  :func:`bncourse.reference.batch_renorm_forward`
========================  ==================================================
"""

from __future__ import annotations

from bncourse.reference import (
    batch_renorm_forward,
    groupnorm_backward,
    groupnorm_forward,
    layernorm_backward,
    layernorm_forward,
)

__all__ = ["batch_renorm_forward", "groupnorm_backward", "groupnorm_forward", "layernorm_backward", "layernorm_forward"]
