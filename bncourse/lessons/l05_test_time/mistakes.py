"""Wrong implementations of notebook 05's exercises, one per known mistake.

Each has the signature of its exercise (``population_stats``, ``batchnorm_inference`` or
the ``BatchNorm1d`` class) and makes one mistake a student is likely to make;
:mod:`bncourse.lessons.l05_test_time.exercises` wraps each in a ``Mistake`` with its
diagnosis, shown when a student's outputs match its outputs.  The ``bn_*`` classes are one
compact NumPy module, :class:`WrongBN`, with one mistake switched on.  They are not course
code to learn from.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bncourse.lessons.l05_test_time import solutions

__all__ = [
    "WrongBN",
    "bn_biased_running",
    "bn_cumulative_off_by_one",
    "bn_eval_batch_stats",
    "bn_eval_no_eps",
    "bn_momentum_side",
    "bn_no_count",
    "bn_no_update",
    "bn_unbiased_normalize",
    "bn_var_init_zero",
    "inf_batch_stats",
    "inf_eps_outside",
    "inf_no_affine",
    "inf_no_eps",
    "inf_no_sqrt",
    "pop_biased",
    "pop_ema",
    "pop_last_batch",
    "pop_mean_of_batch_vars",
    "pop_mean_of_biased_vars",
    "pop_mean_of_stds",
    "pop_plain_mean_of_batch_vars",
    "pop_unweighted_means",
]

# ---------------------------------------------------------------------------- population_stats


def pop_mean_of_batch_vars(batches: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The batches' unbiased variances averaged (weighted by N_b − 1)."""
    n = np.array([len(b) for b in batches], dtype=np.float64)
    mean = sum(b.sum(0, dtype=np.float64) for b in batches) / n.sum()
    var = np.average([b.astype(np.float64).var(0, ddof=1) for b in batches], axis=0, weights=n - 1)
    dt = batches[0].dtype
    return mean.astype(dt), var.astype(dt)


def pop_plain_mean_of_batch_vars(batches: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The batches' unbiased variances averaged, each batch with the same weight."""
    mean, _ = solutions.population_stats(batches)
    var = np.mean([b.astype(np.float64).var(0, ddof=1) for b in batches], axis=0)
    return mean, var.astype(batches[0].dtype)


def pop_mean_of_biased_vars(batches: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The batches' biased variances averaged."""
    mean, _ = solutions.population_stats(batches)
    var = np.mean([b.astype(np.float64).var(0) for b in batches], axis=0)
    return mean, var.astype(batches[0].dtype)


def pop_mean_of_stds(batches: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The batches' stds averaged, then squared."""
    mean, _ = solutions.population_stats(batches)
    std = np.mean([b.astype(np.float64).std(0, ddof=1) for b in batches], axis=0)
    return mean, (std**2).astype(batches[0].dtype)


def pop_unweighted_means(batches: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The batch means averaged with equal weights, whatever the batch sizes."""
    _, var = solutions.population_stats(batches)
    mean = np.mean([b.astype(np.float64).mean(0) for b in batches], axis=0)
    return mean.astype(batches[0].dtype), var


def pop_biased(batches: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The variance divided by N instead of N − 1."""
    mean, var = solutions.population_stats(batches)
    n = sum(len(b) for b in batches)
    return mean, (var.astype(np.float64) * (n - 1) / n).astype(var.dtype)


def pop_last_batch(batches: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The last batch's statistics only."""
    b = batches[-1].astype(np.float64)
    return b.mean(0).astype(batches[-1].dtype), b.var(0, ddof=1).astype(batches[-1].dtype)


def pop_ema(batches: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's moving average (momentum 0.1) of the batch statistics."""
    rm, rv = np.zeros(batches[0].shape[1]), np.ones(batches[0].shape[1])
    for b in batches:
        b64 = b.astype(np.float64)
        rm = 0.9 * rm + 0.1 * b64.mean(0)
        rv = 0.9 * rv + 0.1 * b64.var(0, ddof=1)
    return rm.astype(batches[0].dtype), rv.astype(batches[0].dtype)


# ---------------------------------------------------------------------------- batchnorm_inference


def inf_batch_stats(
    x: Any, gamma: Any, beta: Any, running_mean: Any, running_var: Any, eps: float = 1e-5
) -> Any:
    """The test batch's own statistics instead of the running ones."""
    mu, var = x.mean(0), x.var(0)
    return gamma * (x - mu) / np.sqrt(var + eps) + beta


def inf_no_eps(
    x: Any, gamma: Any, beta: Any, running_mean: Any, running_var: Any, eps: float = 1e-5
) -> Any:
    """ε left out."""
    return gamma * (x - running_mean) / np.sqrt(running_var) + beta


def inf_no_sqrt(
    x: Any, gamma: Any, beta: Any, running_mean: Any, running_var: Any, eps: float = 1e-5
) -> Any:
    """Divided by the variance instead of its square root."""
    return gamma * (x - running_mean) / (running_var + eps) + beta


def inf_eps_outside(
    x: Any, gamma: Any, beta: Any, running_mean: Any, running_var: Any, eps: float = 1e-5
) -> Any:
    """ε added outside the square root."""
    return gamma * (x - running_mean) / (np.sqrt(running_var) + eps) + beta


def inf_no_affine(
    x: Any, gamma: Any, beta: Any, running_mean: Any, running_var: Any, eps: float = 1e-5
) -> Any:
    """x̂ returned without γ and β."""
    return (x - running_mean) / np.sqrt(running_var + eps)


# ---------------------------------------------------------------------------- BatchNorm1d


class WrongBN:
    """A compact NumPy BatchNorm1d whose class attributes switch on one known mistake."""

    momentum_side = False
    biased_running = False
    var_init_zero = False
    eval_batch_stats = False
    no_count = False
    no_update = False
    cumulative_off_by_one = False
    eval_no_eps = False
    unbiased_normalize = False

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1) -> None:
        self.eps, self.momentum = eps, momentum
        self.weight, self.bias = np.ones(num_features), np.zeros(num_features)
        self.running_mean = np.zeros(num_features)
        self.running_var = np.zeros(num_features) if self.var_init_zero else np.ones(num_features)
        self.num_batches_tracked = 0
        self.training = True

    def train(self) -> None:
        self.training = True

    def eval(self) -> None:
        self.training = False

    def _update(self, x: np.ndarray) -> None:
        if not self.no_count:
            self.num_batches_tracked += 1
        if self.no_update:
            return
        if self.momentum is None:
            n = self.num_batches_tracked + (1 if self.cumulative_off_by_one else 0)
            m = 1.0 / max(n, 1)
        else:
            m = self.momentum
        var = x.var(0, ddof=0 if self.biased_running else 1)
        if self.momentum_side:
            self.running_mean = m * self.running_mean + (1 - m) * x.mean(0)
            self.running_var = m * self.running_var + (1 - m) * var
        else:
            self.running_mean = (1 - m) * self.running_mean + m * x.mean(0)
            self.running_var = (1 - m) * self.running_var + m * var

    def forward(self, x: np.ndarray) -> np.ndarray:
        dt = x.dtype
        if self.training or self.eval_batch_stats:
            ddof = 1 if self.unbiased_normalize else 0
            mu, var, eps = x.mean(0), x.var(0, ddof=ddof), self.eps
            if self.training:
                self._update(x)
        else:
            mu, var = self.running_mean, self.running_var
            eps = 0.0 if self.eval_no_eps else self.eps
        out = self.weight * (x - mu) / np.sqrt(var + eps) + self.bias
        return out.astype(dt)


def _wrong(**flags: bool) -> type:
    """A ``WrongBN`` subclass named ``BatchNorm1d`` (as the student's class) with ``flags`` on."""
    return type("BatchNorm1d", (WrongBN,), dict(flags))


bn_momentum_side = _wrong(momentum_side=True)
"""Running statistics weight the new batch by 1 − momentum."""
bn_biased_running = _wrong(biased_running=True)
"""running_var updated with the biased batch variance."""
bn_var_init_zero = _wrong(var_init_zero=True)
"""running_var starts at zeros."""
bn_eval_batch_stats = _wrong(eval_batch_stats=True)
"""Eval mode still normalizes with the batch's statistics."""
bn_no_count = _wrong(no_count=True)
"""num_batches_tracked never incremented."""
bn_no_update = _wrong(no_update=True)
"""Running statistics never updated."""
bn_cumulative_off_by_one = _wrong(cumulative_off_by_one=True)
"""momentum=None's factor 1/n computed before the counter is incremented."""
bn_eval_no_eps = _wrong(eval_no_eps=True)
"""Eval mode divides by √running_var, without ε."""
bn_unbiased_normalize = _wrong(unbiased_normalize=True)
"""Training mode normalizes with the unbiased batch variance."""
