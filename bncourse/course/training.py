"""A small, seeded training loop shared by the notebooks' experiments.

``train`` runs plain SGD (optionally with momentum) on mini-batches drawn with a seeded
generator, evaluates on a held-out set every ``eval_every`` steps and calls an optional
``callback(step, model)`` whose returned dict is recorded too.  It returns a
:class:`History`; it never prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from bncourse.errors import ParameterError

__all__ = ["History", "accuracy", "as_tensor", "minibatch_step", "steps_to_reach", "train"]

Callback = Callable[[int, nn.Module], dict[str, Any] | None]


@dataclass
class History:
    """What ``train`` recorded.

    ``steps`` are the steps at which the model was evaluated (0 = before training);
    ``train_loss`` is the mean mini-batch loss since the previous evaluation (NaN at step
    0); ``test_acc`` the held-out accuracy; ``records`` the callback's values per step;
    ``diverged`` is True if the loss became NaN/inf (training then stops).
    """

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    diverged: bool = False

    def record_array(self, key: str) -> NDArray[np.float64]:
        """Stack one callback key over the evaluations."""
        return np.array([r[key] for r in self.records], dtype=np.float64)

    @property
    def final_acc(self) -> float:
        return self.test_acc[-1] if self.test_acc else float("nan")


def as_tensor(x: NDArray[Any] | torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A torch tensor from a NumPy array (labels stay int64)."""
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
    if dtype is not None and t.is_floating_point():
        t = t.to(dtype)
    return t


@torch.no_grad()
def accuracy(model: nn.Module, x: Any, y: Any, train_mode: bool = False) -> float:
    """Fraction of ``x`` classified as ``y``; evaluates in eval mode unless ``train_mode``."""
    was_training = model.training
    model.train(train_mode)
    try:
        logits = model(as_tensor(x))
        return float((logits.argmax(1) == as_tensor(y)).float().mean())
    finally:
        model.train(was_training)


def train(
    model: nn.Module,
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    *,
    steps: int,
    batch_size: int = 60,
    lr: float = 0.1,
    sgd_momentum: float = 0.0,
    weight_decay: float = 0.0,
    eval_every: int = 50,
    seed: int = 0,
    callback: Callback | None = None,
    before_step: Callable[[int, nn.Module], None] | None = None,
) -> History:
    """Train ``model`` with SGD and cross-entropy on mini-batches sampled with replacement.

    Args:
        steps: number of SGD steps.
        batch_size: examples per step (≥ 2 for BN in training mode).
        lr, sgd_momentum, weight_decay: SGD hyper-parameters (``sgd_momentum`` is the
            optimizer's heavy-ball momentum, not batch norm's running-average momentum).
        eval_every: evaluate test accuracy (and call ``callback``) every this many steps,
            and at step 0.
        seed: seeds the mini-batch sampling (the model is seeded when it is built).
        callback: ``callback(step, model) -> dict`` recorded at each evaluation.
        before_step: ``before_step(step, model)`` called before each SGD step.

    Returns:
        A :class:`History`.
    """
    if steps < 0 or batch_size < 1 or eval_every < 1:
        raise ParameterError(
            f"need steps >= 0, batch_size >= 1, eval_every >= 1, got {steps}, {batch_size}, {eval_every}"
        )
    xt, yt = as_tensor(x_train), as_tensor(y_train)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=sgd_momentum, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    hist = History()
    running: list[float] = []

    def evaluate(step: int) -> None:
        hist.steps.append(step)
        hist.train_loss.append(float(np.mean(running)) if running else float("nan"))
        hist.test_acc.append(accuracy(model, x_test, y_test))
        rec = callback(step, model) if callback is not None else None
        hist.records.append(dict(rec or {}))
        running.clear()

    evaluate(0)
    model.train()
    for step in range(1, steps + 1):
        if before_step is not None:
            before_step(step, model)
        idx = torch.randint(0, len(xt), (batch_size,), generator=gen)
        loss = loss_fn(model(xt[idx]), yt[idx])
        if not torch.isfinite(loss):
            hist.diverged = True
            running.append(float("nan"))
            evaluate(step)
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
        running.append(loss.item())
        if step % eval_every == 0 or step == steps:
            evaluate(step)
            model.train()
    return hist


def minibatch_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                   gen: torch.Generator, batch_size: int,
                   before_step: Callable[[nn.Module], None] | None = None) -> torch.Tensor:
    """One optimizer step on the cross-entropy of a mini-batch of ``batch_size`` rows of
    ``(x, y)`` drawn (with replacement) by ``gen``; ``before_step(model)`` runs between the
    backward pass and the step (e.g. gradient clipping).  Returns the batch's loss (a
    0-dim tensor, before the step)."""
    idx = torch.randint(0, len(x), (batch_size,), generator=gen)
    loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
    opt.zero_grad()
    loss.backward()
    if before_step is not None:
        before_step(model)
    opt.step()
    return loss


def steps_to_reach(history: History, target_acc: float) -> int | None:
    """The first evaluated step at which test accuracy ≥ ``target_acc`` (None if never)."""
    for s, a in zip(history.steps, history.test_acc, strict=True):
        if a >= target_acc:
            return s
    return None
