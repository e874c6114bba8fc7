"""The solutions of notebook 03's exercises, one per exercise id.

A re-export, not a copy: the instructor's implementations live in
:mod:`bncourse.reference` (the course's NumPy library, also used by the experiments and
the tests), and this module only names them, exactly as the student's functions are named.

=========================  ===========================================================
exercise id                implementation
=========================  ===========================================================
``batchnorm_forward``      :func:`bncourse.reference.batchnorm_forward`
``batchnorm_backward``     :func:`bncourse.reference.batchnorm_backward`
``batchnorm_backward_alt`` :func:`bncourse.reference.batchnorm_backward_alt`
``numerical_gradient``     :func:`bncourse.reference.gradcheck.numerical_gradient`
=========================  ===========================================================
"""

from __future__ import annotations

from bncourse.reference import batchnorm_backward, batchnorm_backward_alt, batchnorm_forward
from bncourse.reference.gradcheck import numerical_gradient

__all__ = ["batchnorm_backward", "batchnorm_backward_alt", "batchnorm_forward", "numerical_gradient"]
