"""The conventions the whole course uses, written down once.

They are PyTorch's (``torch.nn.BatchNorm1d/2d``):

* ``EPS = 1e-5`` is added to the variance *inside* the square root:
  ``x_hat = (x - mu) / sqrt(var + eps)``.
* The batch variance used to normalize is the **biased** one (divide by ``m``).
* ``running_var`` stores the **unbiased** batch variance (divide by ``m - 1``).
* ``running_mean`` starts at 0, ``running_var`` at 1, ``num_batches_tracked`` at 0.
* The moving-average update weights the **new** batch by ``momentum`` (:data:`BN_MOMENTUM`;
  the optimizer's momentum is another thing, :data:`SGD_MOMENTUM`)::

      running = (1 - momentum) * running + momentum * batch_statistic   # momentum = 0.1

* ``momentum=None`` means the cumulative (simple) average: the factor is
  ``1 / num_batches_tracked`` after the counter has been incremented.

Keras/TensorFlow write the same rule on the old value:
``moving = moving * m_keras + batch * (1 - m_keras)`` with ``m_keras = 0.99`` and
``epsilon = 1e-3``.  So Keras's momentum ``m`` is PyTorch's ``1 - m``: Keras's default
0.99 is PyTorch's 0.01, and PyTorch's default 0.1 is Keras's 0.9.
"""

from __future__ import annotations

__all__ = [
    "BN_MOMENTUM",
    "EPS",
    "KERAS_BN_MOMENTUM",
    "KERAS_EPS",
    "SGD_MOMENTUM",
    "ema_update",
    "keras_momentum_to_torch",
    "torch_momentum_to_keras",
]

EPS: float = 1e-5
"""PyTorch's default epsilon, added to the variance inside the square root."""

BN_MOMENTUM: float = 0.1
"""PyTorch's default batch-norm momentum: the weight of the *new* batch statistic in the
running averages.  Not the optimizer's momentum (:data:`SGD_MOMENTUM`)."""

KERAS_BN_MOMENTUM: float = 0.99
"""Keras's default batch-norm momentum: the weight of the *old* moving value."""

SGD_MOMENTUM: float = 0.9
"""The heavy-ball momentum of the course's SGD runs (``torch.optim.SGD(momentum=...)``): the
weight of the previous update in the next one.  Unrelated to :data:`BN_MOMENTUM`, despite
the word."""

KERAS_EPS: float = 1e-3
"""Keras's default epsilon."""


def keras_momentum_to_torch(m_keras: float) -> float:
    """PyTorch momentum equivalent to Keras momentum ``m_keras`` (``1 - m_keras``)."""
    return 1.0 - m_keras


def torch_momentum_to_keras(m_torch: float) -> float:
    """Keras momentum equivalent to PyTorch momentum ``m_torch`` (``1 - m_torch``)."""
    return 1.0 - m_torch


def ema_update(running: float, batch: float, momentum: float = BN_MOMENTUM) -> float:
    """One step of PyTorch's rule: ``(1 - momentum) * running + momentum * batch``."""
    return (1.0 - momentum) * running + momentum * batch
