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

import contextlib
import copy
import itertools
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
from bncourse.course.plots import COLORS, MAX_WIDTH_IN, legend_below, new_figure
from bncourse.course.training import as_tensor, train
from bncourse.errors import ParameterError, ShapeError
from bncourse.nn.noisy import L1BatchNorm, NoisyShift
from bncourse.validation import FloatArray

__all__ = [
    "VARIANTS",
    "Figure1Run",
    "binned_by_loss",
    "build_variant",
    "gradient_ics",
    "gradient_norms_per_layer",
    "layer_shift",
    "plot_accuracy_and_shift",
    "plot_figure1",
    "plot_gradient_ics",
    "plot_gradients_and_saturation",
    "plot_landscape",
    "plot_layer_stats",
    "run_figure1",
    "run_seeds",
    "saturation_per_layer",
    "sigmoid_input_stats",
]

PERCENTILES = (15.0, 50.0, 85.0)


VARIANTS = ("no BN", "BN", "BN after sigmoid", "noisy BN", "ℓ1 BN")


def build_variant(variant: str, seed: int = 0) -> nn.Sequential:
    """The Figure-1 MLP (64 → 100 → 100 → 100 → 10, sigmoid) in one of :data:`VARIANTS`."""
    if variant == "no BN":
        return make_mlp(norm="none", seed=seed)
    if variant == "BN":
        return make_mlp(norm="bn", seed=seed)
    if variant == "BN after sigmoid":
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


def _one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """One BLAS thread for the probes' NumPy norms of ~27k-long vectors: with OpenBLAS's default
    thread pool on a busy machine, each such dot product costs milliseconds of synchronization."""
    try:
        from threadpoolctl import threadpool_limits  # a dependency of scikit-learn
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _flat_params(model: nn.Module) -> FloatArray:
    return np.concatenate([p.detach().numpy().ravel() for p in model.parameters()]).astype(np.float64)


def _probe_functions(model: nn.Module, x: torch.Tensor, y: torch.Tensor
                     ) -> tuple[Callable[[FloatArray], float], Callable[[FloatArray], FloatArray]]:
    """Loss and gradient of a *copy* of ``model`` (training mode) as functions of flat params (a noise
    layer draws the same noise at every call, so that the probe sees a fixed function)."""
    probe = copy.deepcopy(model)
    probe.train()
    params = list(probe.parameters())
    shapes = [p.shape for p in params]
    sizes = [p.numel() for p in params]

    def load(w: FloatArray) -> None:
        with torch.no_grad():
            for p, chunk, shape in zip(params, np.split(w, np.cumsum(sizes)[:-1]), shapes, strict=True):
                p.copy_(torch.as_tensor(chunk.reshape(shape), dtype=p.dtype))

    seen: list[tuple[FloatArray, float]] = []  # (w, loss) of grad_fn's calls: loss_fn reuses them
    noise = _noise_states(probe)

    def loss_fn(w: FloatArray) -> float:
        for w_seen, loss in seen:
            if np.array_equal(w_seen, w):
                return loss
        load(w)
        _set_noise_states(probe, noise)
        with torch.no_grad():
            return float(nn.functional.cross_entropy(probe(x), y))

    def grad_fn(w: FloatArray) -> FloatArray:
        load(w)
        _set_noise_states(probe, noise)
        probe.zero_grad()
        loss = nn.functional.cross_entropy(probe(x), y)
        loss.backward()
        seen.append((np.array(w, copy=True), float(loss.detach())))
        return np.concatenate([p.grad.numpy().ravel() for p in params]).astype(np.float64)  # type: ignore[union-attr]

    return loss_fn, grad_fn


@dataclass
class Figure1Run:
    """What :func:`run_figure1` recorded for one network variant and seed.

    ``steps``/``test_acc`` as in :class:`~bncourse.course.training.History`; ``percentiles``
    (T, 3) of the tracked last-layer sigmoid input; ``layer_mean``/``layer_std`` (T, L, D)
    per-unit mean/std of every sigmoid input on the probe batch, ``linear_mean``/``linear_std``
    the same for every hidden Linear layer's output (with BN: BN's *input*).  The probes ran
    at ``probe_steps`` (T_p of them): ``probe_loss`` (T_p,) the loss L(w) on the probe batch,
    ``grad_norm`` (T_p,) ‖∇L(w)‖, ``loss_along`` and ``grad_change`` (T_p, K) along the
    gradient direction for the step sizes ``etas``, and ``ics`` (T_p, L, 3) Santurkar et al.'s
    gradient ICS of the weights of Linear layers 2 … L+1 (:func:`gradient_ics`).
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
    seed: int = 0
    linear_mean: FloatArray = field(repr=False, default_factory=lambda: np.zeros((0,)))
    linear_std: FloatArray = field(repr=False, default_factory=lambda: np.zeros((0,)))
    probe_steps: list[int] = field(default_factory=list)
    probe_loss: FloatArray = field(repr=False, default_factory=lambda: np.zeros((0,)))
    grad_norm: FloatArray = field(repr=False, default_factory=lambda: np.zeros((0,)))
    ics: FloatArray = field(repr=False, default_factory=lambda: np.zeros((0, 0, 3)))

    def effective_smoothness(self) -> FloatArray:
        """(T_p,) "effective β-smoothness" along the gradient direction:
        max over η of ‖∇L(w − ηg) − g‖ / ‖ηg‖ (the largest change of the gradient per unit of
        distance moved; Santurkar et al.'s measure, here over this run's step sizes)."""
        dist = self.etas[None, :] * self.grad_norm[:, None] + 1e-12
        return np.asarray((self.grad_change / dist).max(axis=1), dtype=np.float64)

    def loss_variation(self) -> FloatArray:
        """(T_p,) range (max − min) of the loss over the points w − ηg along the gradient."""
        return np.asarray(self.loss_along.max(axis=1) - self.loss_along.min(axis=1), dtype=np.float64)


def _batch_statistics_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose BN layers normalize with the statistics of the batch they see
    (training mode, so the result does not depend on the running averages) and whose noise
    layers are off (eval mode)."""
    m = copy.deepcopy(model)
    m.train()
    for mod in m.modules():
        if isinstance(mod, NoisyShift):
            mod.eval()
    return m


def _linear_outputs(model: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    """The output of every hidden Linear layer (all but the last) on ``x`` (no grad, current mode)."""
    captured: list[torch.Tensor] = []
    linears = [m for m in model if isinstance(m, nn.Linear)][:-1]
    hooks = [m.register_forward_hook(lambda _m, _inp, out: captured.append(out.detach().clone())) for m in linears]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return captured


def _noise_states(model: nn.Module) -> list[torch.Tensor]:
    return [m.generator.get_state() for m in model.modules() if isinstance(m, NoisyShift)]


def _set_noise_states(model: nn.Module, states: list[torch.Tensor]) -> None:
    for m, state in zip([m for m in model.modules() if isinstance(m, NoisyShift)], states, strict=True):
        m.generator.set_state(state)


def _weight_grad(module: nn.Module) -> torch.Tensor:
    grad = cast(nn.Linear, module).weight.grad
    assert grad is not None, "backward() has run"
    return grad.detach()


def gradient_ics(model: nn.Sequential, x: Any, y: Any, lr: float) -> FloatArray:
    """Santurkar et al.'s internal covariate shift of every Linear layer after the first.

    For Linear layer i (i = 2 … L+1): G = ∂L/∂W_i on the batch (x, y) with all parameters as
    they are; G′ = the same gradient, same batch, after every parameter *before* layer i (the
    Linear and BN layers feeding it) has taken its SGD step of size ``lr`` computed on that
    batch.  ‖G − G′‖ is how much layer i's gradient changes because its input changed.  Runs on
    a copy of ``model`` in training mode; a noise layer draws the same noise for G and G′.

    Returns:
        (L, 3): per layer i = 2 … L+1, ``[‖G − G′‖₂, ‖G − G′‖₂ / ‖G‖₂, cos(G, G′)]``.
    """
    probe = cast(nn.Sequential, copy.deepcopy(model))
    probe.train()
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    noise = _noise_states(probe)
    modules = list(probe)
    params = [p for p in probe.parameters()]
    start = [p.detach().clone() for p in params]
    probe.zero_grad()
    nn.functional.cross_entropy(probe(xt), yt).backward()
    step = [-lr * p.grad.detach().clone() for p in params]  # type: ignore[union-attr]
    linear_idx = [k for k, m in enumerate(modules) if isinstance(m, nn.Linear)]
    before = [_weight_grad(modules[k]).clone() for k in linear_idx[1:]]
    index = {id(p): j for j, p in enumerate(params)}
    out = []
    for k, g in zip(linear_idx[1:], before, strict=True):
        earlier = {id(p) for m in modules[:k] for p in m.parameters()}
        with torch.no_grad():
            for p, p0 in zip(params, start, strict=True):
                p.copy_(p0 + step[index[id(p)]] if id(p) in earlier else p0)
        _set_noise_states(probe, noise)
        probe.zero_grad()
        nn.functional.cross_entropy(probe(xt), yt).backward()
        g2 = _weight_grad(modules[k])
        diff = float(torch.linalg.norm(g - g2))
        norm = float(torch.linalg.norm(g))
        cos = float((g * g2).sum() / (norm * float(torch.linalg.norm(g2)) + 1e-30))
        out.append([diff, diff / (norm + 1e-30), cos])
    return np.array(out, dtype=np.float64)


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
    probe_ics: bool = False,
    probe_steps: Sequence[int] | None = None,
    seed: int = 0,
) -> Figure1Run:
    """Train one variant of the Figure-1 network on the digits and record its internals.

    At every evaluation: test accuracy (eval mode); the 15/50/85th percentiles (via
    ``percentile_fn``, the ``activation_percentiles`` exercise's signature) of the input of
    sigmoid ``unit`` in the last hidden layer on the test set, with BN using the test set's
    own batch statistics (so that step 0 does not show BN's initial running averages); per-layer
    mean/std of each sigmoid input and of each hidden Linear output on a fixed probe batch of
    training examples (training mode).

    At every step of ``probe_steps`` (default: every evaluation; before that step's update),
    on the probe batch in training mode: the loss L(w) and ‖g‖, g = ∇L(w); with
    ``probe_landscape``, the loss at ``w − η g`` and the gradient change ``‖∇L(w − η g) − g‖``
    (via ``predictiveness_fn``, the ``gradient_predictiveness`` exercise's signature) for each
    η in ``etas``; with ``probe_ics``, :func:`gradient_ics` at the training learning rate.
    ``seed`` seeds the initial weights and the mini-batches.
    """
    if probe_landscape and predictiveness_fn is None:
        raise ParameterError("run_figure1: probe_landscape=True needs predictiveness_fn "
                             "(a gradient_predictiveness implementation)")
    data = load_digits_split(seed=0)
    model = build_variant(variant, seed=seed)
    x_test = as_tensor(data.x_test)
    gen = np.random.default_rng(1000)
    probe_idx = gen.choice(len(data.x_train), size=probe_size, replace=False)
    x_probe, y_probe = as_tensor(data.x_train[probe_idx]), as_tensor(data.y_train[probe_idx])
    eta_arr = np.asarray(etas, dtype=np.float64)
    perc, means, stds, lin_means, lin_stds = [], [], [], [], []
    probed: list[int] = []
    p_loss, g_norm, loss_along, grad_change, ics_rec = [], [], [], [], []
    schedule = set(range(0, steps + 1, eval_every) if probe_steps is None else probe_steps)

    def record(step: int, module: nn.Module) -> dict[str, Any]:
        m = cast(nn.Sequential, module)  # train passes back the model: build_variant's nn.Sequential
        stats_model = cast(nn.Sequential, _batch_statistics_copy(m))
        last = _sigmoid_inputs(stats_model, x_test)[-1].numpy()
        perc.append(percentile_fn(last, PERCENTILES)[:, unit])
        probe_model = cast(nn.Sequential, copy.deepcopy(m))
        probe_model.train()
        noise = _noise_states(probe_model)
        ins = [z.numpy() for z in _sigmoid_inputs(probe_model, x_probe)]
        means.append(np.stack([z.mean(0) for z in ins]))
        stds.append(np.stack([z.std(0) for z in ins]))
        _set_noise_states(probe_model, noise)  # the same forward pass (BN's running averages play no part)
        lins = [z.numpy() for z in _linear_outputs(probe_model, x_probe)]
        lin_means.append(np.stack([z.mean(0) for z in lins]))
        lin_stds.append(np.stack([z.std(0) for z in lins]))
        if step == steps and step in schedule:
            probe(step, m)
        return {}

    def probe(step: int, module: nn.Module) -> None:
        if step not in schedule:
            return
        with _one_blas_thread():
            measure(step, cast(nn.Sequential, module))

    def measure(step: int, m: nn.Sequential) -> None:
        loss_fn, grad_fn = _probe_functions(m, x_probe, y_probe)
        w = _flat_params(m)
        g = grad_fn(w)
        probed.append(step)
        p_loss.append(loss_fn(w))
        g_norm.append(float(np.linalg.norm(g)))
        if probe_landscape and predictiveness_fn is not None:
            grad_change.append(predictiveness_fn(grad_fn, w, eta_arr))
            loss_along.append([loss_fn(w - eta * g) for eta in eta_arr])
        if probe_ics:
            ics_rec.append(gradient_ics(m, x_probe, y_probe, lr))

    hist = train(model, data.x_train, data.y_train, data.x_test, data.y_test, steps=steps, lr=lr,
                 eval_every=eval_every, seed=seed, callback=record,
                 before_step=lambda step, module: probe(step - 1, module))  # the state after step − 1 updates
    shape = (len(probed), len(eta_arr)) if probe_landscape else (0, len(eta_arr))
    return Figure1Run(variant, hist.steps, hist.test_acc, np.array(perc), np.array(means),
                      np.array(stds), np.array(loss_along).reshape(shape),
                      np.array(grad_change).reshape(shape), eta_arr, model, seed=seed,
                      linear_mean=np.array(lin_means), linear_std=np.array(lin_stds),
                      probe_steps=probed, probe_loss=np.array(p_loss), grad_norm=np.array(g_norm),
                      ics=np.array(ics_rec).reshape(len(ics_rec), -1, 3) if ics_rec else np.zeros((0, 0, 3)))


def run_seeds(variant: str, seeds: Sequence[int], **kwargs: Any) -> list[Figure1Run]:
    """:func:`run_figure1` once per seed (same arguments otherwise)."""
    return [run_figure1(variant, seed=s, **kwargs) for s in seeds]


def layer_shift(run: Figure1Run, where: str = "sigmoid input") -> FloatArray:
    """Per-layer distribution shift between consecutive evaluations.

    For each hidden layer: the mean over units of ``|Δmean| + |Δstd|`` between two
    evaluations, divided by the unit's std — how far a distribution moves per ``eval_every``
    steps — of the sigmoid input (``where="sigmoid input"``; with BN that is BN's output) or
    of the Linear layer's output (``where="linear output"``; with BN that is BN's input).
    Returns (T−1, L).
    """
    if where == "sigmoid input":
        mean, std = run.layer_mean, run.layer_std
    elif where == "linear output":
        mean, std = run.linear_mean, run.linear_std
    else:
        raise ParameterError(f"where must be 'sigmoid input' or 'linear output', got {where!r}")
    dm = np.abs(np.diff(mean, axis=0))
    ds = np.abs(np.diff(std, axis=0))
    scale = std[1:] + 1e-8
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
            "BN after sigmoid": COLORS["ln"], "ℓ1 BN": COLORS["in"]}


def _legend_below(fig: Figure, ax: Any, ncols: int | None = None) -> None:
    """One figure legend with ``ax``'s entries, under the panels (outside every axes, so it
    covers no data; the figure's constrained layout makes room for it)."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=ncols or len(labels))


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
        ax.set_title(f"layer {l + 1}: units of z{l + 1}")
        ax.set_xlabel("mean over the training set")
        ax.set_ylabel("std over the training set")
    return fig


def _band(ax: Any, x: Sequence[float], values: FloatArray, color: str, label: str) -> None:
    """Mean line and min–max band over the rows (seeds) of ``values`` (S, T)."""
    v = np.asarray(values, dtype=np.float64)
    ax.plot(x, v.mean(axis=0), color=color, label=label)
    if len(v) > 1:
        ax.fill_between(x, v.min(axis=0), v.max(axis=0), color=color, alpha=0.25, linewidth=0)


def plot_figure1(runs: Sequence[Figure1Run], seeds: Mapping[str, Sequence[Figure1Run]] | None = None) -> Figure:
    """The BN paper's Figure 1 on digits: (a) test accuracy; (b, c, ...) percentiles of one
    last-layer sigmoid input over training, one panel per run, on a common y-axis.

    With ``seeds`` (variant → runs with different seeds), panel (a) shows each variant's mean
    and min–max band over the seeds instead of the single runs.  The percentile line styles
    are explained once, in a legend under the panels.
    """
    fig, axes = new_figure(ncols=1 + len(runs), width=4.4 * (1 + len(runs)), height=5.6)
    colors = _variant_colors()
    if seeds:
        for name, group in seeds.items():
            _band(axes[0], group[0].steps, np.array([r.test_acc for r in group]), colors.get(name, "k"),
                  f"{name} ({len(group)} seeds)")
    else:
        for run in runs:
            axes[0].plot(run.steps, run.test_acc, color=colors.get(run.variant, "k"), label=run.variant)
    axes[0].set_title("(a) Test accuracy")
    axes[0].set_xlabel("SGD step")
    axes[0].set_ylabel("accuracy")
    legend_below(axes[0])
    for ax, run, letter in zip(axes[1:], runs, "bcdef", strict=False):
        for k, (q, style) in enumerate(zip(PERCENTILES, (":", "-", "--"), strict=True)):
            ax.plot(run.steps, run.percentiles[:, k], style, color="k",
                    label=f"{q:.0f}th percentile")
        ax.set_title(f"({letter}) {run.variant}: sigmoid input")
        ax.set_xlabel("SGD step")
        ax.set_ylabel("one sigmoid's input (test set)")
    if len(runs) > 1:
        lo = min(float(r.percentiles.min()) for r in runs)
        hi = max(float(r.percentiles.max()) for r in runs)
        pad = 0.05 * (hi - lo)
        for ax in axes[1:]:
            ax.set_ylim(lo - pad, hi + pad)
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
    fig, (ax1, ax2) = new_figure(ncols=2, width=MAX_WIDTH_IN, height=5.0)
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
    ax1.set_title("Gradient norm at initialization")
    ax1.set_ylabel("‖∂L/∂W‖ (log)")
    ax2.set_xticks(range(n_h), [f"layer {i + 1}" for i in range(n_h)])
    ax2.set_title("Saturated units after training")
    ax2.set_ylabel("% with sigmoid′(z) < 0.05")
    _legend_below(fig, ax1)
    return fig


def plot_accuracy_and_shift(runs: Mapping[str, Sequence[Figure1Run]], names: Sequence[str], max_step: int
                            ) -> Figure:
    """Over SGD steps 0..``max_step``, mean and min–max band over seeds of (left) test accuracy,
    (middle) the mean over layers of :func:`layer_shift` of the sigmoid input and (right) of the
    Linear output (log y), one colour per variant in ``names``; one legend under the panels."""
    colors = _variant_colors()
    fig, (ax1, ax2, ax3) = new_figure(ncols=3, width=MAX_WIDTH_IN, height=5.2)
    for name in names:
        group = runs[name]
        steps = [s for s in group[0].steps if s <= max_step]
        t = len(steps)
        c = colors.get(name, "k")
        _band(ax1, steps, np.array([r.test_acc[:t] for r in group]), c, name)
        for ax, where in ((ax2, "sigmoid input"), (ax3, "linear output")):
            _band(ax, steps[1:], np.array([layer_shift(r, where)[:t - 1].mean(axis=1) for r in group]), c, name)
    ax1.set_xlim(0, max_step)
    ax1.set_title("(a) test accuracy")
    ax1.set_xlabel("SGD step")
    ax1.set_ylabel("accuracy")
    for ax, what in ((ax2, "(b) shift of BN's output"), (ax3, "(c) shift of BN's input")):
        ax.set_yscale("log")
        ax.set_xlim(0, max_step)
        ax.set_title(what)
        ax.set_xlabel("SGD step")
        ax.set_ylabel("(|Δmean| + |Δstd|) / std")
    fig.suptitle("Change per 50 SGD steps, mean over the layers")
    _legend_below(fig, ax1)
    return fig


def _by_loss(ax: Any, runs: Sequence[Figure1Run], values: Callable[[Figure1Run], FloatArray], color: str,
             label: str, edges: FloatArray) -> None:
    """Median and min–max band of ``values(run)`` (T_p,) over all probes of all ``runs`` whose
    probe loss falls in each bin of ``edges`` (bins with at least 2 probes); the probes
    themselves as faint dots."""
    xs = np.concatenate([r.probe_loss for r in runs])
    ys = np.concatenate([values(r) for r in runs])
    ax.scatter(xs, ys, s=8, color=color, alpha=0.35, linewidths=0)
    bins = [(a, b, ys[(xs >= a) & (xs < b)]) for a, b in itertools.pairwise(edges)]
    bins = [(a, b, v) for a, b, v in bins if len(v) >= 2]
    centers = [float(np.sqrt(a * b)) for a, b, _ in bins]
    ax.plot(centers, [float(np.median(v)) for *_, v in bins], "o-", color=color, label=label, markersize=4)
    ax.fill_between(centers, [float(v.min()) for *_, v in bins], [float(v.max()) for *_, v in bins],
                    color=color, alpha=0.2, linewidth=0)


LOSS_BINS = np.geomspace(0.01, 10.0, 13)


def binned_by_loss(runs: Sequence[Figure1Run], values: Callable[[Figure1Run], FloatArray],
                   edges: Sequence[float]) -> list[tuple[float, float, int]]:
    """For each bin [a, b) of ``edges``: (geometric centre, median of ``values`` over the probes of
    all ``runs`` whose probe loss falls in it, how many); bins with no probe are left out."""
    xs = np.concatenate([r.probe_loss for r in runs])
    ys = np.concatenate([values(r) for r in runs])
    out = []
    for a, b in itertools.pairwise(edges):
        sel = (xs >= a) & (xs < b)
        if sel.any():
            out.append((float(np.sqrt(a * b)), float(np.median(ys[sel])), int(sel.sum())))
    return out


def _loss_axis(ax: Any) -> None:
    ax.set_xscale("log")
    ax.set_xlim(float(LOSS_BINS[-1]), float(LOSS_BINS[0]))  # training goes from left (high loss) to right
    ax.set_xlabel("probe-batch loss (training runs left → right)")


def plot_landscape(runs: Mapping[str, Sequence[Figure1Run]]) -> Figure:
    """Santurkar-style landscape measures at *matched loss*: (a) the variation of the loss along
    the gradient direction (max − min over the step sizes) and (b) the effective β-smoothness,
    both against the loss the network has reached (probes of all seeds, binned by loss: median
    and min–max band), one colour per variant; one legend under the panels."""
    fig, (ax1, ax2) = new_figure(ncols=2, width=MAX_WIDTH_IN, height=5.4)
    colors = _variant_colors()
    for name, group in runs.items():
        c = colors.get(name, "k")
        label = f"{name} ({len(group)} seeds)"
        _by_loss(ax1, group, Figure1Run.loss_variation, c, label, LOSS_BINS)
        _by_loss(ax2, group, Figure1Run.effective_smoothness, c, label, LOSS_BINS)
    etas = next(iter(runs.values()))[0].etas
    ax1.set_title("(a) loss variation along −∇L")
    ax1.set_ylabel("max − min of L(w − η∇L)")
    ax2.set_title("(b) effective β-smoothness")
    ax2.set_ylabel("max over η of ‖Δ∇L‖ / ‖η∇L‖")
    fig.suptitle(f"Step sizes η ∈ [{etas.min():g}, {etas.max():g}] along the gradient")
    for ax in (ax1, ax2):
        ax.set_yscale("log")
        _loss_axis(ax)
    _legend_below(fig, ax1)
    return fig


def plot_gradient_ics(runs: Mapping[str, Sequence[Figure1Run]]) -> Figure:
    """Santurkar et al.'s gradient ICS (:func:`gradient_ics`, mean over the measured layers)
    against the loss reached: (a) relative change ‖G − G′‖ / ‖G‖, (b) cosine between G and G′;
    probes of all seeds binned by loss (median and min–max band), one colour per variant."""
    fig, (ax1, ax2) = new_figure(ncols=2, width=MAX_WIDTH_IN, height=5.4)
    colors = _variant_colors()
    for name, group in runs.items():
        c = colors.get(name, "k")
        label = f"{name} ({len(group)} seeds)"
        _by_loss(ax1, group, lambda r: r.ics[:, :, 1].mean(axis=1), c, label, LOSS_BINS)
        _by_loss(ax2, group, lambda r: r.ics[:, :, 2].mean(axis=1), c, label, LOSS_BINS)
    ax1.set_title("(a) relative change of G")
    ax1.set_ylabel("‖G − G′‖ / ‖G‖")
    ax1.set_yscale("log")
    ax2.set_title("(b) cosine between G and G′")
    ax2.set_ylabel("cos(G, G′)")
    fig.suptitle("Gradient ICS of a layer, mean over W2–W4")
    for ax in (ax1, ax2):
        _loss_axis(ax)
    _legend_below(fig, ax1)
    return fig


def sigmoid_input_stats(model: nn.Sequential, x: Any) -> tuple[FloatArray, FloatArray]:
    """Per-unit mean and std of every sigmoid's input over the batch ``x`` (current mode).

    Returns (means, stds), each (L, D) for L hidden layers of D units.
    """
    ins = [z.numpy() for z in _sigmoid_inputs(model, torch.as_tensor(x))]
    return np.stack([z.mean(0) for z in ins]), np.stack([z.std(0) for z in ins])
