"""Internal covariate shift, saturation, and the smoothness critique (notebook 02).

* The notebook's exercises (``activation_percentiles``, ``gradient_predictiveness``) are not
  here: :func:`run_figure1` takes the functions as arguments (the notebook passes
  ``best_available(...)``'s result).
* :mod:`bncourse.nn.noisy` holds the torch layers: ``NoisyShift`` (Santurkar et al.'s
  "noisy BN" noise after a BN layer) and ``L1BatchNorm`` (scale by the mean absolute
  deviation instead of the std).
* :func:`run_figure1` trains the BN paper's Figure-1 network (3 hidden layers of 100
  sigmoid units) on the digits and records, at every evaluation, the 15/50/85th
  percentiles of one last-layer sigmoid input, per-layer statistics of the
  pre-activations, and the loss landscape along the gradient direction.

Importing this module imports torch and matplotlib.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import nn

from bncourse.course.data import load_digits_split
from bncourse.course.diagnostics import weight_gradient_norms
from bncourse.course.models import make_mlp
from bncourse.course.plots import COLORS, new_figure
from bncourse.course.training import as_tensor, train
from bncourse.errors import ParameterError, ShapeError
from bncourse.nn.noisy import L1BatchNorm, NoisyShift
from bncourse.validation import FloatArray

__all__ = [
    "VARIANTS",
    "Figure1Run",
    "build_variant",
    "gradient_norms_per_layer",
    "layer_shift",
    "plot_accuracy_and_shift",
    "plot_figure1",
    "plot_gradients_and_saturation",
    "plot_landscape",
    "plot_layer_stats",
    "run_figure1",
    "saturation_per_layer",
    "sigmoid_input_stats",
]

PERCENTILES = (15.0, 50.0, 85.0)


VARIANTS = ("no BN", "BN", "BN after σ", "noisy BN", "ℓ1 BN")


def build_variant(variant: str, seed: int = 0) -> nn.Sequential:
    """The Figure-1 MLP (64 → 100 → 100 → 100 → 10, sigmoid) in one of :data:`VARIANTS`."""
    if variant == "no BN":
        return make_mlp(norm="none", seed=seed)
    if variant == "BN":
        return make_mlp(norm="bn", seed=seed)
    if variant == "BN after σ":
        return make_mlp(norm="bn_after", seed=seed)
    if variant == "noisy BN":
        counter = iter(range(100))
        return make_mlp(norm="bn", seed=seed,
                        norm_factory=lambda w: nn.Sequential(nn.BatchNorm1d(w), NoisyShift(w, seed=seed + next(counter))))
    if variant == "ℓ1 BN":
        return make_mlp(norm="bn", seed=seed, norm_factory=L1BatchNorm)
    raise ParameterError(f"variant must be one of {VARIANTS}, got {variant!r}")


def _sigmoid_inputs(model: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    """The input of every Sigmoid layer of ``model`` on ``x`` (no grad, current mode)."""
    captured: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, inp, _out: captured.append(inp[0].detach().clone()))
             for m in model if isinstance(m, nn.Sigmoid)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return captured


def _flat_params(model: nn.Module) -> FloatArray:
    return np.concatenate([p.detach().numpy().ravel() for p in model.parameters()]).astype(np.float64)


def _probe_functions(model: nn.Module, x: torch.Tensor, y: torch.Tensor
                     ) -> tuple[Callable[[FloatArray], float], Callable[[FloatArray], FloatArray]]:
    """Loss and gradient of a *copy* of ``model`` (training mode) as functions of flat params."""
    probe = copy.deepcopy(model)
    probe.train()
    params = list(probe.parameters())
    shapes = [p.shape for p in params]
    sizes = [p.numel() for p in params]

    def load(w: FloatArray) -> None:
        with torch.no_grad():
            for p, chunk, shape in zip(params, np.split(w, np.cumsum(sizes)[:-1]), shapes, strict=True):
                p.copy_(torch.as_tensor(chunk.reshape(shape), dtype=p.dtype))

    def loss_fn(w: FloatArray) -> float:
        load(w)
        with torch.no_grad():
            return float(nn.functional.cross_entropy(probe(x), y))

    def grad_fn(w: FloatArray) -> FloatArray:
        load(w)
        probe.zero_grad()
        nn.functional.cross_entropy(probe(x), y).backward()
        return np.concatenate([p.grad.numpy().ravel() for p in params]).astype(np.float64)  # type: ignore[union-attr]

    return loss_fn, grad_fn


@dataclass
class Figure1Run:
    """What :func:`run_figure1` recorded for one network variant.

    ``steps``/``test_acc`` as in :class:`~bncourse.course.training.History`; ``percentiles``
    (T, 3) of the tracked last-layer sigmoid input; ``layer_mean``/``layer_std`` (T, L, D)
    per-unit mean/std of every sigmoid input on the probe batch; ``loss_range`` and
    ``grad_change`` (T, K) along the gradient direction for the step sizes ``etas``.
    """

    variant: str
    steps: list[int]
    test_acc: list[float]
    percentiles: FloatArray
    layer_mean: FloatArray
    layer_std: FloatArray
    loss_along: FloatArray
    grad_change: FloatArray
    etas: FloatArray
    model: nn.Sequential | None = field(repr=False, default=None)


def run_figure1(
    variant: str,
    steps: int = 1500,
    lr: float = 2.0,
    eval_every: int = 50,
    unit: int = 0,
    etas: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0),
    *,
    percentile_fn: Callable[[FloatArray, Sequence[float]], FloatArray],
    predictiveness_fn: Callable[..., FloatArray] | None = None,
    probe_size: int = 256,
    probe_landscape: bool = True,
    seed: int = 0,
) -> Figure1Run:
    """Train one variant of the Figure-1 network on the digits and record its internals.

    At every evaluation: test accuracy; the 15/50/85th percentiles (via ``percentile_fn``,
    the ``activation_percentiles`` exercise's signature) of the input of sigmoid ``unit`` in
    the last hidden layer on the test set (eval mode); per-layer mean/std of each sigmoid
    input on a fixed probe batch of training examples; and, on that batch in training mode,
    the loss at ``w − η g`` and the gradient change ``‖∇L(w − η g) − g‖`` (via
    ``predictiveness_fn``, the ``gradient_predictiveness`` exercise's signature) for each η
    in ``etas`` — this landscape probe is skipped (empty arrays) with
    ``probe_landscape=False``, and then ``predictiveness_fn`` is not needed.
    """
    if probe_landscape and predictiveness_fn is None:
        raise ParameterError("run_figure1: probe_landscape=True needs predictiveness_fn "
                             "(a gradient_predictiveness implementation)")
    data = load_digits_split(seed=0)
    model = build_variant(variant, seed=seed)
    x_test = as_tensor(data.x_test)
    gen = np.random.default_rng(seed + 1000)
    probe_idx = gen.choice(len(data.x_train), size=probe_size, replace=False)
    x_probe, y_probe = as_tensor(data.x_train[probe_idx]), as_tensor(data.y_train[probe_idx])
    eta_arr = np.asarray(etas, dtype=np.float64)
    perc, means, stds, loss_along, grad_change = [], [], [], [], []

    def record(step: int, module: nn.Module) -> dict[str, Any]:
        m = cast(nn.Sequential, module)  # train passes back the model: build_variant's nn.Sequential
        was = m.training
        m.eval()
        last = _sigmoid_inputs(m, x_test)[-1].numpy()
        perc.append(percentile_fn(last, PERCENTILES)[:, unit])
        m.train(was)
        probe_model = copy.deepcopy(m)
        probe_model.train()
        ins = [z.numpy() for z in _sigmoid_inputs(probe_model, x_probe)]
        means.append(np.stack([z.mean(0) for z in ins]))
        stds.append(np.stack([z.std(0) for z in ins]))
        if predictiveness_fn is not None and probe_landscape:
            loss_fn, grad_fn = _probe_functions(m, x_probe, y_probe)
            w = _flat_params(m)
            g = grad_fn(w)
            loss_along.append([loss_fn(w - eta * g) for eta in eta_arr])
            grad_change.append(predictiveness_fn(grad_fn, w, eta_arr))
        return {}

    hist = train(model, data.x_train, data.y_train, data.x_test, data.y_test, steps=steps, lr=lr,
                 eval_every=eval_every, seed=seed, callback=record)
    shape = (len(hist.steps), len(eta_arr)) if probe_landscape else (0, len(eta_arr))
    return Figure1Run(variant, hist.steps, hist.test_acc, np.array(perc), np.array(means),
                      np.array(stds), np.array(loss_along).reshape(shape),
                      np.array(grad_change).reshape(shape), eta_arr, model)


def layer_shift(run: Figure1Run) -> FloatArray:
    """Per-layer distribution shift between consecutive evaluations.

    For each hidden layer: the mean over units of ``|Δmean| + |Δstd|`` of the sigmoid
    input between two evaluations, divided by the unit's std — how far the next layer's
    input distribution moves per ``eval_every`` steps.  Returns (T−1, L).
    """
    dm = np.abs(np.diff(run.layer_mean, axis=0))
    ds = np.abs(np.diff(run.layer_std, axis=0))
    scale = run.layer_std[1:] + 1e-8
    return ((dm + ds) / scale).mean(axis=2)


def gradient_norms_per_layer(model: nn.Module, x: Any, y: Any) -> FloatArray:
    """‖∂L/∂W‖ of every Linear layer on one batch in training mode, first to last
    (:func:`bncourse.course.diagnostics.weight_gradient_norms`; the model is left as it was)."""
    return weight_gradient_norms(model, x, y, nn.Linear)


def saturation_per_layer(model: nn.Sequential, x: Any, fraction_fn: Callable[[FloatArray, float], float],
                         threshold: float = 0.05) -> FloatArray:
    """Per hidden layer, ``fraction_fn(z, threshold)`` of its sigmoid inputs z (eval mode): the
    fraction of saturated units with the exercise ``saturated_fraction`` (the student's once it
    passes its check).  z reaches ``fraction_fn`` as a float64 ``(N, D)`` array."""
    was = model.training
    model.eval()
    try:
        ins = _sigmoid_inputs(model, torch.as_tensor(x))
    finally:
        model.train(was)
    return np.array([float(fraction_fn(z.detach().double().numpy(), threshold)) for z in ins])


def _variant_colors() -> dict[str, str]:
    """The colour of each network variant, the same in every figure of notebook 02."""
    return {"no BN": COLORS["no_bn"], "BN": COLORS["bn"], "noisy BN": COLORS["gn"],
            "BN after σ": COLORS["ln"], "ℓ1 BN": COLORS["in"]}


def _legend_below(fig: Figure, ax: Any, ncols: int | None = None) -> None:
    """One figure legend with ``ax``'s entries, under the panels (outside every axes, so it
    covers no data; the figure's constrained layout makes room for it)."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=ncols or len(labels), fontsize=10)


def plot_layer_stats(means: FloatArray, stds: FloatArray) -> Figure:
    """Per-unit (mean, std) of each hidden layer's pre-activation, one scatter panel per layer.

    ``means`` and ``stds`` are (L, D) from :func:`sigmoid_input_stats`.  The std axes are
    *not* shared: the std shrinks by a factor ~5 per layer, so on a common axis the deeper
    layers' units would sit in a flat line at 0.  Each std axis starts at 0 and the mean
    axes are shared (they span similar ranges).
    """
    m, s = np.asarray(means, dtype=np.float64), np.asarray(stds, dtype=np.float64)
    if m.ndim != 2 or m.shape != s.shape:
        raise ShapeError(f"means and stds must both be (L, D); got {m.shape} and {s.shape}")
    n_layers = m.shape[0]
    fig, axes = new_figure(ncols=n_layers, width=4.4 * n_layers, height=3.8, sharex=True, squeeze=False)
    for l, ax in enumerate(axes[0]):
        ax.scatter(m[l], s[l], s=10, color=COLORS["no_bn"])
        ax.set_ylim(0.0, 1.1 * float(s[l].max()))
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.set_title(f"layer {l + 1}: per-unit statistics of z{l + 1}")
        ax.set_xlabel("mean over the training set")
        ax.set_ylabel("std over the training set")
    return fig


def plot_figure1(runs: Sequence[Figure1Run]) -> Figure:
    """The BN paper's Figure 1 on digits: (a) test accuracy; (b, c, ...) percentiles of one
    last-layer sigmoid input over training, one panel per run.

    The percentile line styles are explained once, in a legend under the panels.
    """
    fig, axes = new_figure(ncols=1 + len(runs), width=4.3 * (1 + len(runs)), height=4.2)
    colors = [COLORS["no_bn"], COLORS["bn"], COLORS["gn"], COLORS["ln"], COLORS["in"]]
    for run, color in zip(runs, colors, strict=False):
        axes[0].plot(run.steps, run.test_acc, color=color, label=run.variant)
    axes[0].set_title("(a) Test accuracy")
    axes[0].set_xlabel("SGD step")
    axes[0].set_ylabel("accuracy")
    axes[0].legend(loc="lower right")
    for ax, run, letter in zip(axes[1:], runs, "bcdef", strict=False):
        for k, (q, style) in enumerate(zip(PERCENTILES, (":", "-", "--"), strict=True)):
            ax.plot(run.steps, run.percentiles[:, k], style, color="k",
                    label=f"{q:.0f}th percentile (over test examples)")
        ax.set_title(f"({letter}) {run.variant}: sigmoid input")
        ax.set_xlabel("SGD step")
        ax.set_ylabel("input of one last-layer sigmoid")
    if runs:
        _legend_below(fig, axes[1])
    return fig


def plot_gradients_and_saturation(init_grads: Mapping[str, FloatArray], saturation: Mapping[str, FloatArray]
                                  ) -> Figure:
    """Grouped bars: (left) ‖∂L/∂W‖ per layer at initialization (log y), from
    :func:`gradient_norms_per_layer`; (right) % of saturated sigmoid inputs per hidden layer
    after training, from :func:`saturation_per_layer` (fractions, shown ×100).

    One bar per variant in ``init_grads`` (each also a key of ``saturation``); the legend
    sits under the panels so it covers no bar.
    """
    missing = [name for name in init_grads if name not in saturation]
    if missing:
        raise ParameterError(f"saturation has no entry for {missing}; it has {sorted(saturation)}")
    colors = _variant_colors()
    fig, (ax1, ax2) = new_figure(ncols=2, width=12.0, height=4.6)
    width = 0.8 / max(len(init_grads), 1)
    for k, name in enumerate(init_grads):
        g = np.asarray(init_grads[name], dtype=np.float64)
        sat = 100 * np.asarray(saturation[name], dtype=np.float64)
        offset = (k - (len(init_grads) - 1) / 2) * width
        ax1.bar(np.arange(len(g)) + offset, g, width, color=colors.get(name, "k"), label=name)
        ax2.bar(np.arange(len(sat)) + offset, sat, width, color=colors.get(name, "k"), label=name)
    n_w = len(next(iter(init_grads.values()))) if init_grads else 0
    n_h = len(next(iter(saturation.values()))) if saturation else 0
    ax1.set_yscale("log")
    weight_labels = [f"W{i + 1}" for i in range(n_w)]
    if weight_labels:
        weight_labels[-1] += " (output)"
    ax1.set_xticks(range(n_w), weight_labels)
    ax1.set_title("Gradient norm per layer at initialization")
    ax1.set_ylabel("‖∂L/∂W‖ (log)")
    ax2.set_xticks(range(n_h), [f"layer {i + 1}" for i in range(n_h)])
    ax2.set_title("Saturated sigmoid units after training (test set)")
    ax2.set_ylabel("% of unit inputs with σ' < 0.05")
    _legend_below(fig, ax1)
    return fig


def plot_accuracy_and_shift(runs: Mapping[str, Figure1Run], shift: Mapping[str, FloatArray],
                            names: Sequence[str], max_step: int) -> Figure:
    """(left) Test accuracy and (right) the mean over layers of :func:`layer_shift` (log y)
    over SGD steps 0..``max_step``, one line per variant in ``names``; one legend under the
    panels."""
    colors = _variant_colors()
    fig, (ax1, ax2) = new_figure(ncols=2, width=12.0, height=4.6)
    for name in names:
        run = runs[name]
        ax1.plot(run.steps, run.test_acc, color=colors.get(name, "k"), label=name)
        ax2.plot(run.steps[1:], np.asarray(shift[name]).mean(axis=1), color=colors.get(name, "k"), label=name)
    ax1.set_xlim(0, max_step)
    ax1.set_title("Test accuracy")
    ax1.set_xlabel("SGD step")
    ax1.set_ylabel("accuracy")
    ax2.set_yscale("log")
    ax2.set_xlim(0, max_step)
    ax2.set_title("Input-distribution shift per 50 steps (mean of layers)")
    ax2.set_xlabel("SGD step")
    ax2.set_ylabel("(|Δmean| + |Δstd|) / std (log)")
    _legend_below(fig, ax1)
    return fig


def plot_landscape(runs: Sequence[Figure1Run]) -> Figure:
    """Santurkar-style landscape plots: shaded min–max over step sizes of (a) the loss along
    the gradient direction and (b) the gradient change, over training, per run (one legend
    under the panels)."""
    fig, (ax1, ax2) = new_figure(ncols=2, width=12.0, height=4.6)
    colors = _variant_colors()
    for run in runs:
        if run.loss_along.size == 0:
            continue
        c = colors.get(run.variant, "k")
        ax1.fill_between(run.steps, run.loss_along.min(1), run.loss_along.max(1), color=c, alpha=0.35,
                         label=run.variant)
        ax2.fill_between(run.steps, run.grad_change.min(1), run.grad_change.max(1), color=c, alpha=0.35,
                         label=run.variant)
    etas = runs[0].etas
    ax1.set_title(f"Loss along −∇L, step sizes η ∈ [{etas.min():g}, {etas.max():g}]")
    ax1.set_xlabel("SGD step")
    ax1.set_ylabel("training loss at w − η∇L (range)")
    ax1.set_yscale("log")
    ax2.set_title("Gradient predictiveness ‖∇L(w − η∇L) − ∇L(w)‖")
    ax2.set_xlabel("SGD step")
    ax2.set_ylabel("ℓ2 gradient change (range)")
    ax2.set_yscale("log")
    _legend_below(fig, ax1)
    return fig


def sigmoid_input_stats(model: nn.Sequential, x: Any) -> tuple[FloatArray, FloatArray]:
    """Per-unit mean and std of every sigmoid's input over the batch ``x`` (current mode).

    Returns (means, stds), each (L, D) for L hidden layers of D units.
    """
    ins = [z.numpy() for z in _sigmoid_inputs(model, torch.as_tensor(x))]
    return np.stack([z.mean(0) for z in ins]), np.stack([z.std(0) for z in ins])
