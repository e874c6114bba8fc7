"""Stand-ins for the optimization exercises: steps of gradient descent, gradient predictiveness.

Gradient descent is ``torch.optim.SGD`` on a float64 ``torch.nn.Linear`` with the loss
``½·F.mse_loss``, its gradients from autograd; the step of the predictiveness probe is
one ``torch.optim.SGD`` step too.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name
from numpy.typing import ArrayLike

from bncourse import validation
from bncourse.errors import ParameterError
from bncourse.oracle._torch import F64, const, torch_dtype
from bncourse.validation import FloatArray

__all__ = ["gd_steps_to_converge", "gradient_predictiveness"]


def gd_steps_to_converge(
    x: ArrayLike, y: ArrayLike, lr: float, tol: float = 1e-6, max_steps: int = 100_000
) -> int:
    """The number of full-batch gradient-descent steps until ``‖∇L‖₂ <= tol``, or -1.

    Model ``torch.nn.Linear(d, 1)`` in float64 started at ``w = 0, b = 0``, loss
    ``L = ½·F.mse_loss(x·w + b, y)``, updates by ``torch.optim.SGD(lr=lr)``.  Before each
    update the norm of the gradient (of w and b together) is compared with ``tol``: the
    first step count t in ``0..max_steps`` that satisfies it is returned (0 if the start
    does), -1 if none does or the gradient stops being finite (a learning rate above
    ``2/λmax`` diverges).

    Shapes: x ``(n, d)``, y ``(n,)`` → int.

    Raises:
        ShapeError: x is not (n, d) or y is not (n,).
        ParameterError: lr is not a finite number > 0.
    """
    xa, ya = validation.as_regression_data(x, y)
    if not (math.isfinite(lr) and lr > 0):
        raise ParameterError(f"lr must be a finite number > 0, got {lr}")

    xt, yt = const(xa), const(ya)
    model = torch.nn.Linear(xa.shape[1], 1, dtype=F64)
    params = list(model.parameters())
    with torch.no_grad():
        for p in params:
            p.zero_()
    optimizer = torch.optim.SGD(params, lr=lr)
    for step in range(max_steps + 1):
        optimizer.zero_grad()
        loss = 0.5 * F.mse_loss(model(xt).squeeze(1), yt)
        loss.backward()
        norm = float(torch.linalg.vector_norm(torch.cat([p.grad.reshape(-1) for p in params if p.grad is not None])))
        if norm <= tol:
            return step
        if not math.isfinite(norm):  # diverged: it will never come back
            return -1
        optimizer.step()
    return -1


def gradient_predictiveness(
    grad_fn: Callable[[FloatArray], ArrayLike], w: ArrayLike, etas: ArrayLike
) -> FloatArray:
    """``‖∇L(w − η·g) − g‖₂`` for each step size η, with ``g = ∇L(w)``.

    The step ``w − η·g`` is one ``torch.optim.SGD(lr=η)`` step from w with gradient g, the
    distance ``torch.dist``.

    Shapes: grad_fn maps ``(P,) → (P,)``; w ``(P,)``; etas ``(K,)`` → ``(K,)`` in w's dtype.
    """
    wa = np.asarray(w)
    dtype = torch_dtype(wa.dtype)
    g = torch.as_tensor(np.asarray(grad_fn(wa)))
    distances = []
    for eta in np.asarray(etas).reshape(-1):
        param = torch.nn.Parameter(const(wa, dtype))
        param.grad = g.to(dtype).clone()
        torch.optim.SGD([param], lr=float(eta)).step()  # w − η·g
        g_eta = torch.as_tensor(np.asarray(grad_fn(param.detach().numpy().copy())))
        distances.append(float(torch.dist(g_eta.to(F64), g.to(F64))))
    return np.array(distances, dtype=wa.dtype)
