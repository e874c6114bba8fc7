"""Batch normalization at test time: which statistics replace the batch's, and how good they are.

At test time there may be a single example, so BN needs per-feature statistics that do not
come from the test batch.  This module holds what notebook 05 runs and plots:

NumPy:

* :func:`running_average` -- PyTorch's update ``r ← (1 − m)·r + m·b`` (or the cumulative
  average for ``momentum=None``) replayed over a sequence of batch statistics;
* :func:`window_average` -- the plain average of the batch statistics over some steps
  (the seed's "drop early epochs" estimate);
* :func:`half_life`, :func:`steps_to_forget`, :func:`past_batch_weights` -- how fast a
  moving average moves and forgets its initial value;
* :func:`stat_distance` -- how far an estimate is from the population statistics.

PyTorch: :class:`BatchStatsRecorder` (records
every BN layer's batch statistics during training), :func:`population_statistics`,
:func:`with_statistics`, :func:`run_estimates_experiment` (the four estimates compared
over training), and the pitfalls :func:`companion_logits`, :func:`batch_of_one_error`,
:func:`train_mode_accuracy`.  Plots: :func:`plot_momentum_rules`,
:func:`plot_estimates`, :func:`plot_companions`.

The notebook's exercises (``population_stats``, ``batchnorm_inference``, ``BatchNorm1d``)
are not here: the notebook calls the student's versions through ``best_available``.

Importing this module imports torch and matplotlib.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch
from matplotlib.figure import Figure
from numpy.typing import NDArray
from torch import nn

from bncourse.conventions import BN_MOMENTUM
from bncourse.course.data import load_digits_split
from bncourse.course.diagnostics import batchnorm_buffers
from bncourse.course.models import make_mlp
from bncourse.course.plots import COLORS, MAX_WIDTH_IN, new_figure
from bncourse.course.training import accuracy, as_tensor, train
from bncourse.errors import ParameterError, ShapeError
from bncourse.validation import FloatArray, check_momentum

__all__ = [
    "ESTIMATES",
    "BatchStatsRecorder",
    "EstimatesResult",
    "batch_of_one_error",
    "bn_layers",
    "companion_logits",
    "evaluate_windows",
    "half_life",
    "past_batch_weights",
    "plot_companions",
    "plot_estimates",
    "plot_momentum_rules",
    "population_statistics",
    "prediction_changed",
    "run_estimates_experiment",
    "running_average",
    "stat_distance",
    "steps_to_forget",
    "train_mode_accuracy",
    "window_average",
    "with_statistics",
]

LayerStats = list[tuple[NDArray[np.float64], NDArray[np.float64]]]
"""One ``(mean, var)`` pair of ``(D_l,)`` float64 arrays per BN layer."""

ESTIMATES: dict[str, str] = {
    "population": "population (whole training set)",
    "ema": "EMA, momentum 0.1 (PyTorch default)",
    "cumulative": "cumulative average (momentum=None)",
    "late": "late half only (early steps dropped)",
}
"""The four test-time estimates compared in notebook 05: key -> legend label."""

ESTIMATE_COLORS: dict[str, str] = {
    "population": "#000000",
    "ema": "#d62728",
    "cumulative": "#1f77b4",
    "late": "#2ca02c",
}


# ---------------------------------------------------------------------------- NumPy part


def running_average(
    batch_stats: FloatArray, momentum: float | None = BN_MOMENTUM, initial: float = 0.0
) -> NDArray[np.float64]:
    r"""PyTorch's running estimate after each of a sequence of batch statistics.

    .. math::
        r_0 = \text{initial}, \qquad r_t = (1 - m_t)\, r_{t-1} + m_t\, b_t,
        \qquad m_t = \begin{cases} \text{momentum} \\ 1/t & \text{momentum = None (cumulative)} \end{cases}

    ``initial`` is 0 for ``running_mean`` and 1 for ``running_var`` (fed with unbiased
    batch variances).  With ``momentum=None`` the initial value is forgotten at the first
    step and ``r_t`` is the plain average of ``b_1 … b_t``.

    Shapes:
        batch_stats: ``(T, ...)``, one statistic per step.

    Returns:
        ``(T, ...)`` float64: the running value after each step.
    """
    momentum = check_momentum(momentum, "running_average")
    b = np.asarray(batch_stats, dtype=np.float64)
    if b.ndim < 1 or b.shape[0] == 0:
        raise ShapeError(f"running_average: expected (T, ...) with T >= 1, got shape {b.shape}")
    if momentum is None:  # r_t = (b_1 + … + b_t) / t
        counts = np.arange(1, b.shape[0] + 1, dtype=np.float64).reshape((-1,) + (1,) * (b.ndim - 1))
        return np.cumsum(b, axis=0) / counts
    out = np.empty_like(b)
    r = np.full(b.shape[1:], initial, dtype=np.float64)
    for t in range(b.shape[0]):
        r = (1.0 - momentum) * r + momentum * b[t]
        out[t] = r
    return out


def window_average(batch_stats: FloatArray, start: int, stop: int) -> NDArray[np.float64]:
    """Plain average of the batch statistics of steps ``start … stop − 1`` (0-based).

    Dropping the early steps (``start > 0``) drops statistics computed with weights that
    no longer exist.

    Shapes:
        batch_stats: ``(T, ...)``; returns ``(...)`` float64.
    """
    b = np.asarray(batch_stats, dtype=np.float64)
    if not 0 <= start < stop <= b.shape[0]:
        raise ParameterError(
            f"window_average: need 0 <= start < stop <= T={b.shape[0]}, got start={start}, stop={stop}"
        )
    return b[start:stop].mean(axis=0)


def half_life(weight_on_old: float) -> float:
    r"""Steps after which a moving average's weight on a past value has halved.

    With ``r ← a·r + (1 − a)·b`` the value from k steps ago weighs ``(1 − a)·a^k``, so the
    half-life is :math:`\ln 0.5 / \ln a`.  PyTorch's momentum 0.1 keeps ``a = 0.9``.
    """
    if not 0.0 < weight_on_old < 1.0:
        raise ParameterError(f"half_life: weight_on_old must be in (0, 1), got {weight_on_old!r}")
    return math.log(0.5) / math.log(weight_on_old)


def steps_to_forget(momentum: float, tol: float = 0.01) -> int:
    r"""Steps until the initial value's weight :math:`(1 - m)^k` falls below ``tol``.

    .. math:: k = \lceil \ln(\text{tol}) / \ln(1 - m) \rceil

    ``momentum`` is PyTorch's (the weight on the new batch).
    """
    if not 0.0 < momentum < 1.0 or not 0.0 < tol < 1.0:
        raise ParameterError(f"steps_to_forget: need 0 < momentum < 1 and 0 < tol < 1, got {momentum}, {tol}")
    return math.ceil(math.log(tol) / math.log(1.0 - momentum) - 1e-12)


def past_batch_weights(momentum: float, steps: int) -> NDArray[np.float64]:
    r"""Weight of the batch k = 0, 1, …, steps − 1 steps ago in PyTorch's running average.

    :math:`w_k = m (1 - m)^k` (what remains, :math:`(1 - m)^{\text{steps}}`, is on the
    initial value).
    """
    m = check_momentum(momentum, "past_batch_weights")
    if m is None:
        raise ParameterError("past_batch_weights: momentum=None (the cumulative average) weighs batches "
                             "by 1/t, not geometrically; pass a number in [0, 1]")
    k = np.arange(steps, dtype=np.float64)
    return m * (1.0 - m) ** k


def stat_distance(
    mean: FloatArray, var: FloatArray, ref_mean: FloatArray, ref_var: FloatArray
) -> tuple[float, float]:
    r"""How far an estimate ``(mean, var)`` is from reference statistics, per feature, averaged.

    .. math::
        d_\mu = \sqrt{\tfrac1D \sum_j \frac{(\mu_j - \mu^{\text{ref}}_j)^2}{\sigma^{2,\text{ref}}_j}},
        \qquad
        d_{\sigma^2} = \sqrt{\tfrac1D \sum_j \ln^2 \frac{\sigma^2_j}{\sigma^{2,\text{ref}}_j}}

    ``d_μ`` is the mean error in units of the reference standard deviation; ``d_σ²`` the
    RMS log-ratio of the variances (0.1 ≈ 10 % off).

    Shapes: all ``(D,)``.  Returns ``(d_mu, d_var)``.
    """
    m, v, rm, rv = (np.asarray(a, dtype=np.float64) for a in (mean, var, ref_mean, ref_var))
    if not (m.shape == v.shape == rm.shape == rv.shape) or m.ndim != 1:
        raise ShapeError(
            f"stat_distance: expected four (D,) arrays, got {m.shape}, {v.shape}, {rm.shape}, {rv.shape}"
        )
    d_mu = float(np.sqrt(np.mean((m - rm) ** 2 / rv)))
    d_var = float(np.sqrt(np.mean(np.log(v / rv) ** 2)))
    return d_mu, d_var


# ---------------------------------------------------------------------------- PyTorch part


def bn_layers(model: nn.Module) -> list[nn.BatchNorm1d]:
    """The model's ``torch.nn.BatchNorm1d`` layers, in forward order."""
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]


def _running_stats(layer: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's running_mean and running_var buffers (it must track running statistics)."""
    rm, rv = layer.running_mean, layer.running_var
    if rm is None or rv is None:
        raise ParameterError("BatchNorm1d layer has track_running_stats=False: no running statistics")
    return rm, rv


def _clone(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` without any hooks (so recorders do not see the copy)."""
    twin = copy.deepcopy(model)
    for m in twin.modules():
        m._forward_pre_hooks.clear()
        m._forward_hooks.clear()
    return twin


class BatchStatsRecorder:
    """Records the batch mean and unbiased batch variance every BN layer sees in training mode.

    These are exactly the statistics ``torch.nn.BatchNorm1d`` feeds into its running
    averages, so :func:`running_average` replayed on them reproduces the buffers.

    Attributes:
        means, variances: per layer, a list with one ``(D_l,)`` float64 array per
            training-mode forward pass.

    Example::

        rec = BatchStatsRecorder(model)       # hooks attached
        train(model, ...)
        means, variances = rec.arrays()       # per layer: (T, D_l)
        rec.remove()
    """

    def __init__(self, model: nn.Module) -> None:
        self.layers = bn_layers(model)
        if not self.layers:
            raise ParameterError("BatchStatsRecorder: the model has no torch.nn.BatchNorm1d layer")
        self.means: list[list[NDArray[np.float64]]] = [[] for _ in self.layers]
        self.variances: list[list[NDArray[np.float64]]] = [[] for _ in self.layers]
        self._handles = [
            layer.register_forward_pre_hook(self._hook(i)) for i, layer in enumerate(self.layers)
        ]

    def _hook(self, i: int) -> Any:
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            if module.training:
                x = inputs[0].detach().double()
                self.means[i].append(x.mean(0).numpy())
                self.variances[i].append(x.var(0, unbiased=True).numpy())

        return hook

    @property
    def steps(self) -> int:
        """Number of training-mode forward passes recorded."""
        return len(self.means[0])

    def arrays(self) -> tuple[list[NDArray[np.float64]], list[NDArray[np.float64]]]:
        """Per layer, the recorded means and variances stacked to ``(T, D_l)``."""
        return [np.stack(m) for m in self.means], [np.stack(v) for v in self.variances]

    def remove(self) -> None:
        """Detach the hooks."""
        for h in self._handles:
            h.remove()
        self._handles = []


def population_statistics(model: nn.Module, x: Any) -> LayerStats:
    """Every BN layer's exact statistics over ``x`` (e.g. the whole training set).

    One training-mode forward pass of all of ``x`` as a single batch, on a copy of the
    model with ``momentum=1``: each BN layer then stores the mean and the *unbiased*
    variance of its input over all rows, and layer l's input is normalized by layers
    < l with their population statistics -- exactly what the layers would see at test
    time with these statistics.  The model itself is not touched.

    Returns:
        One ``(mean, var)`` pair of ``(D_l,)`` float64 arrays per BN layer.
    """
    twin = _clone(model)
    for layer in bn_layers(twin):
        layer.reset_running_stats()
        layer.momentum = 1.0
    twin.train()
    with torch.no_grad():
        twin(as_tensor(x))
    return _buffers(twin)


def with_statistics(model: nn.Module, stats: LayerStats) -> nn.Module:
    """A copy of ``model`` in eval mode whose BN layers use ``stats`` as running statistics."""
    twin = _clone(model)
    layers = bn_layers(twin)
    if len(stats) != len(layers):
        raise ShapeError(f"with_statistics: the model has {len(layers)} BN layers, got {len(stats)} (mean, var) pairs")
    with torch.no_grad():
        for layer, (mean, var) in zip(layers, stats, strict=True):
            rm, rv = _running_stats(layer)
            rm.copy_(torch.as_tensor(mean))
            rv.copy_(torch.as_tensor(var))
    return twin.eval()


def _buffers(model: nn.Module) -> LayerStats:
    """Every BN layer's (running_mean, running_var) as float64 NumPy copies."""
    return [batchnorm_buffers(layer) for layer in bn_layers(model)]


@dataclass
class EstimatesResult:
    """What :func:`run_estimates_experiment` measured, at each evaluation step.

    Attributes:
        steps: ``(K,)`` evaluation steps (training steps done).
        steps_per_epoch: training-set size / batch size.
        accuracy: estimate key -> ``(K,)`` test accuracy with that estimate in every BN layer.
        d_mean, d_var: estimate key -> ``(K,)`` :func:`stat_distance` of the estimate for
            ``layer`` to the population statistics at the same step.
        final_d_mean, final_d_var: the same, to the *final* population statistics.
        layer: index of the BN layer whose distances are reported.
        replay_error: max |EMA replayed from the recorded batch statistics − torch's
            buffers| over all layers at the end (float32 buffers: ≈ 1e-7).
        final: estimate key -> final per-layer statistics.
        batch_means, batch_vars: the recorded batch statistics, per layer ``(T, D_l)``.
        model: the trained model (torch's own EMA in its buffers).
    """

    steps: NDArray[np.int64]
    steps_per_epoch: float
    accuracy: dict[str, NDArray[np.float64]]
    d_mean: dict[str, NDArray[np.float64]]
    d_var: dict[str, NDArray[np.float64]]
    final_d_mean: dict[str, NDArray[np.float64]]
    final_d_var: dict[str, NDArray[np.float64]]
    layer: int
    replay_error: float
    final: dict[str, LayerStats] = field(default_factory=dict)
    batch_means: list[NDArray[np.float64]] = field(default_factory=list)
    batch_vars: list[NDArray[np.float64]] = field(default_factory=list)
    model: nn.Module | None = None


def _estimates_now(model: nn.Module, rec: BatchStatsRecorder, x_train: Any) -> dict[str, LayerStats]:
    """The four estimates of every layer's statistics after the steps recorded so far."""
    means, variances = rec.arrays()
    T = rec.steps
    est: dict[str, LayerStats] = {
        "population": population_statistics(model, x_train),
        "ema": _buffers(model),
        "cumulative": [
            (running_average(m, None)[-1], running_average(v, None)[-1])
            for m, v in zip(means, variances, strict=True)
        ],
        "late": [
            (window_average(m, T // 2, T), window_average(v, T // 2, T))
            for m, v in zip(means, variances, strict=True)
        ],
    }
    return est


def run_estimates_experiment(
    steps: int = 1000,
    lr: float = 0.5,
    batch_size: int = 60,
    eval_every: int = 50,
    layer: int = -1,
    seed: int = 0,
) -> EstimatesResult:
    """Train ``make_mlp(norm="bn")`` on the digits and compare the four test-time estimates.

    At every evaluation (step 0 excluded: nothing is recorded yet) each BN layer gets
    four estimates of its statistics: the population statistics of the current model
    over the whole training set, PyTorch's EMA (momentum 0.1, the model's buffers), the
    cumulative average of all batch statistics so far (``momentum=None``) and the
    average of the last half of the steps only.  For each: test accuracy with it
    plugged into every BN layer, and its distance (:func:`stat_distance`) to the
    population statistics of layer ``layer``, now and at the end of training.

    Returns:
        An :class:`EstimatesResult`.
    """
    if steps < eval_every:
        raise ParameterError(f"run_estimates_experiment: need steps >= eval_every, got {steps} < {eval_every}")
    data = load_digits_split(seed=seed)
    model = make_mlp(norm="bn", seed=seed)
    rec = BatchStatsRecorder(model)
    snapshots: list[tuple[int, dict[str, LayerStats]]] = []
    acc: dict[str, list[float]] = {k: [] for k in ESTIMATES}
    replay_error = 0.0

    def callback(step: int, m: nn.Module) -> None:
        if step == 0:
            return None
        est = _estimates_now(m, rec, data.x_train)
        for key, stats in est.items():
            acc[key].append(accuracy(with_statistics(m, stats), data.x_test, data.y_test))
        snapshots.append((step, est))
        return None

    train(
        model, data.x_train, data.y_train, data.x_test, data.y_test,
        steps=steps, batch_size=batch_size, lr=lr, eval_every=eval_every, seed=seed, callback=callback,
    )
    rec.remove()
    means, variances = rec.arrays()
    for (bm, bv), mu, var in zip(_buffers(model), means, variances, strict=True):
        replay_error = max(
            float(np.abs(running_average(mu, BN_MOMENTUM, 0.0)[-1] - bm).max()),
            float(np.abs(running_average(var, BN_MOMENTUM, 1.0)[-1] - bv).max()),
            replay_error,
        )
    final_pop = snapshots[-1][1]["population"][layer]
    d_mean: dict[str, list[float]] = {k: [] for k in ESTIMATES}
    d_var: dict[str, list[float]] = {k: [] for k in ESTIMATES}
    fd_mean: dict[str, list[float]] = {k: [] for k in ESTIMATES}
    fd_var: dict[str, list[float]] = {k: [] for k in ESTIMATES}
    for _, est in snapshots:
        pop = est["population"][layer]
        for key in ESTIMATES:
            dm, dv = stat_distance(*est[key][layer], *pop)
            fm, fv = stat_distance(*est[key][layer], *final_pop)
            d_mean[key].append(dm)
            d_var[key].append(dv)
            fd_mean[key].append(fm)
            fd_var[key].append(fv)

    def arr(d: dict[str, list[float]]) -> dict[str, NDArray[np.float64]]:
        return {k: np.asarray(v, dtype=np.float64) for k, v in d.items()}

    return EstimatesResult(
        steps=np.array([s for s, _ in snapshots], dtype=np.int64),
        steps_per_epoch=len(data.x_train) / batch_size,
        accuracy=arr(acc),
        d_mean=arr(d_mean),
        d_var=arr(d_var),
        final_d_mean=arr(fd_mean),
        final_d_var=arr(fd_var),
        layer=layer if layer >= 0 else len(means) + layer,
        replay_error=replay_error,
        final=snapshots[-1][1],
        batch_means=means,
        batch_vars=variances,
        model=model,
    )


def companion_logits(model: nn.Module, x: Any, index: int, companions: Sequence[Any]) -> dict[str, Any]:
    """Logits of example ``x[index]`` in training mode next to different companions, and in eval mode.

    For each ``c`` in ``companions`` (an array of other examples), a copy of the model
    in training mode (batch statistics; the model's buffers are not touched) sees the
    batch ``[x[index], *c]``; the first row of its output is example ``index``'s logits.

    Returns:
        ``{"train": (len(companions), classes) logits, "eval": (classes,) logits}`` as
        float64 NumPy arrays.
    """
    xi = as_tensor(np.asarray(x)[index : index + 1])
    rows = []
    twin = _clone(model).train()  # batch statistics; only the copy's buffers change
    with torch.no_grad():
        for c in companions:
            rows.append(twin(torch.cat([xi, as_tensor(c)]))[0].double().numpy())
        ev = _clone(model).eval()(xi)[0].double().numpy()
    return {"train": np.stack(rows), "eval": ev}


def batch_of_one_error(model: nn.Module, x: Any) -> str:
    """The message of the error a training-mode forward pass of a single example raises.

    Returns ``"no error"`` if it does not raise (it should, for a BN model).
    """
    twin = _clone(model).train()
    try:
        with torch.no_grad():
            twin(as_tensor(np.asarray(x)[:1]))
    except ValueError as exc:
        return f"{type(exc).__name__}: {exc}"
    return "no error"


def train_mode_accuracy(model: nn.Module, x: Any, y: Any, batch_size: int) -> float:
    """Test accuracy when BN (wrongly) stays in training mode: each test batch normalizes itself.

    ``x`` is cut into consecutive batches of ``batch_size`` (a last batch of 1 is merged
    into the previous one, since it would raise); buffers are not touched.
    """
    if batch_size < 2:
        raise ParameterError(f"train_mode_accuracy: batch_size must be >= 2, got {batch_size}")
    xt, yt = as_tensor(np.asarray(x)), as_tensor(np.asarray(y))
    n = len(xt)
    bounds = [*range(0, n, batch_size), n]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
        bounds.pop(-2)
    twin = _clone(model).train()
    correct = 0
    with torch.no_grad():
        for a, b in itertools.pairwise(bounds):
            correct += int((twin(xt[a:b]).argmax(1) == yt[a:b]).sum())
    return correct / n


# ---------------------------------------------------------------------------- plots


def plot_momentum_rules(
    rules: dict[str, float], n_steps: int = 200, change_at: int = 100, noise: float = 0.3, seed: int = 0
) -> Figure:
    """Two panels: the weight each rule puts on past batches, and the rules tracking a noisy statistic.

    Args:
        rules: label -> PyTorch momentum (weight on the new batch), e.g.
            ``{"seed 001 as written": 0.9, "PyTorch 0.1": 0.1, "Keras 0.99": 0.01}``.
        n_steps: length of the simulated training run.
        change_at: step at which the true statistic jumps from 1 to 2.
        noise: std of the batch statistic around the true value.
    """
    fig, (ax_w, ax_t) = new_figure(ncols=2, width=MAX_WIDTH_IN, height=6.2)
    palette = [COLORS["student"], COLORS["bn"], COLORS["gn"], COLORS["ln"], COLORS["in"]]
    rng = np.random.default_rng(seed)
    truth = np.where(np.arange(1, n_steps + 1) <= change_at, 1.0, 2.0)
    batch = truth + noise * rng.standard_normal(n_steps)
    ax_t.plot(np.arange(1, n_steps + 1), batch, color="#bbbbbb", lw=1, label="batch statistic")
    ax_t.plot(np.arange(1, n_steps + 1), truth, color=COLORS["reference"], lw=1.2, ls="--", label="true value")
    k = np.arange(0, 60)
    for (label, m), color in zip(rules.items(), palette, strict=False):
        hl = half_life(1.0 - m)
        ax_w.semilogy(k, past_batch_weights(m, len(k)), "o-", ms=3, color=color,
                      label=f"{label}: half-life {hl:.1f} steps")
        ax_t.plot(np.arange(1, n_steps + 1), running_average(batch, m, 0.0), color=color, label=label)
    ax_w.set_ylim(1e-6, 1.5)
    ax_w.set_title("Weight of the batch from k steps ago")
    ax_w.set_xlabel("k (steps ago)")
    ax_w.set_ylabel("weight in the running estimate")
    ax_t.set_title("Running estimate (starts at 0)")
    ax_t.set_xlabel("training step")
    ax_t.set_ylabel("noisy statistic")
    # One legend under both panels (a rule has the same colour in each): the rules with their
    # half-lives in the first column, the simulated statistic in the second.
    rules_h, rules_l = ax_w.get_legend_handles_labels()
    stat_h, stat_l = ax_t.get_legend_handles_labels()
    fig.legend(rules_h + stat_h[:2], rules_l + stat_l[:2], loc="outside lower center",
               ncols=2 if len(rules_l) >= 2 else 1)
    return fig


def plot_estimates(result: EstimatesResult) -> Figure:
    """Three panels over training: test accuracy per estimate, and its mean/variance distance."""
    fig, axes = new_figure(ncols=3, width=MAX_WIDTH_IN, height=5.6)
    epochs = result.steps / result.steps_per_epoch
    for key, label in ESTIMATES.items():
        c = ESTIMATE_COLORS[key]
        axes[0].plot(epochs, 100 * result.accuracy[key], color=c, label=label)
        if key != "population":
            axes[1].semilogy(epochs, result.d_mean[key], color=c, label=label)
            axes[2].semilogy(epochs, result.d_var[key], color=c, label=label)
    axes[0].set_title("(a) test accuracy")
    axes[0].set_ylabel("test accuracy (%)")
    lo = min(float(np.min(100 * v[len(v) // 5 :])) for v in result.accuracy.values())
    axes[0].set_ylim(max(0.0, lo - 2.0), 100.0)
    axes[1].set_title("(b) mean: distance")
    axes[1].set_ylabel(r"$d_\mu$ (population std units)")
    axes[2].set_title("(c) variance: distance")
    axes[2].set_ylabel(r"$d_{\sigma^2}$ (RMS log ratio)")
    for ax in axes:
        ax.set_xlabel("epochs of training")
    fig.suptitle(f"Each estimate of BN layer {result.layer + 1}'s statistics against the population's")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2)
    return fig


def plot_companions(probs: NDArray[np.float64], labels: Sequence[str], true_class: int, title: str) -> Figure:
    """Grouped bars: class probabilities of one example under several batch companions / eval mode.

    Shapes: probs ``(len(labels), classes)``.
    """
    fig, ax = new_figure(width=MAX_WIDTH_IN, height=4.8)
    n, c = probs.shape
    width = 0.8 / n
    for i, label in enumerate(labels):
        ax.bar(np.arange(c) + (i - (n - 1) / 2) * width, probs[i], width=width, label=label)
    ax.set_xticks(np.arange(c))
    ax.set_xlabel(f"class (true class: {true_class})")
    ax.set_ylabel("predicted probability")
    ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5))  # beside the bars, not on them
    return fig


def evaluate_windows(
    result: EstimatesResult, windows: dict[str, tuple[int, int]], x: Any, y: Any
) -> dict[str, tuple[float, float, float]]:
    """Test accuracy and distance to the final population statistics of window-average estimates.

    Args:
        result: a finished :func:`run_estimates_experiment`.
        windows: label -> ``(start, stop)`` training steps (0-based, stop exclusive) whose
            batch statistics are averaged (:func:`window_average`) for every BN layer.
        x, y: the test set.

    Returns:
        label -> ``(accuracy, d_mu, d_var)`` with the distances (:func:`stat_distance`)
        for layer ``result.layer`` to the final population statistics.
    """
    model = cast(nn.Module, result.model)  # run_estimates_experiment always sets it
    pop = result.final["population"][result.layer]
    rows: dict[str, tuple[float, float, float]] = {}
    for label, (start, stop) in windows.items():
        stats = [
            (window_average(m, start, stop), window_average(v, start, stop))
            for m, v in zip(result.batch_means, result.batch_vars, strict=True)
        ]
        d_mu, d_var = stat_distance(*stats[result.layer], *pop)
        rows[label] = (accuracy(with_statistics(model, stats), x, y), d_mu, d_var)
    return rows


def prediction_changed(model: nn.Module, x: Any, indices: Sequence[int], companions: Sequence[Any]) -> NDArray[np.bool_]:
    """For each example ``x[i]``, whether some companion batch changes its training-mode prediction.

    Compared with the eval-mode prediction; see :func:`companion_logits`.

    Returns:
        ``(len(indices),)`` bool.
    """
    changed = []
    for i in indices:
        out = companion_logits(model, x, i, companions)
        changed.append(bool(np.any(out["train"].argmax(1) != out["eval"].argmax())))
    return np.array(changed, dtype=bool)
