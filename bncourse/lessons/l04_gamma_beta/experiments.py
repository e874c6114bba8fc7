"""γ and β: what the learnable scale and shift of batch normalization give back.

The computations behind notebook 04: how linear a sigmoid is on normalized inputs; BN as a
diagonal affine layer at test time; the circles task that needs γ; γ/β trajectories,
gradient–weight angles, init-scale sweeps and unit ablations on the digits; and the γ/β
slider widget.  The exercises (``recover_identity``, ``bias_grad_through_bn``,
``scale_invariance_check``) are not here: the notebook calls the student's versions through
``best_available``.  NumPy functions use :mod:`bncourse.reference`.  Importing this module
imports torch and matplotlib (ipywidgets only when :func:`gamma_beta_widget` is called).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, NamedTuple, cast

import numpy as np
import torch
from matplotlib.figure import Figure
from numpy.typing import NDArray
from torch import nn

from bncourse import oracle
from bncourse.conventions import EPS
from bncourse.course.data import load_digits_split, make_circles_split
from bncourse.course.models import make_mlp
from bncourse.course.plots import COLORS, new_figure
from bncourse.course.training import History, accuracy, as_tensor, train
from bncourse.course.widgets import figure_with_sliders
from bncourse.errors import ParameterError
from bncourse.validation import FloatArray

__all__ = [
    "SATURATION_THRESHOLD",
    "CirclesResult",
    "bn_as_linear",
    "gamma_beta_widget",
    "gradient_weight_cosine",
    "init_scale_sweep",
    "plot_gamma_beta",
    "plot_saturation_examples",
    "saturated_fraction",
    "sigmoid_linearity",
    "train_circles",
    "train_recording_gamma_beta",
    "unit_ablation",
]


SATURATION_THRESHOLD = 0.05
"""A sigmoid unit counts as saturated when its slope σ'(y) = σ(y)(1−σ(y)) is below this
(a fifth of the maximum slope 0.25; |y| > 2.9)."""


def sigmoid_linearity(scales: Sequence[float], n: int = 20_000, seed: int = 0) -> FloatArray:
    """R² of the best straight-line fit to σ(γ·z) for z ~ N(0, 1), for each γ in ``scales``.

    R² near 1 means that on normalized inputs the sigmoid acts almost like a linear map;
    a larger γ pushes values into the curved, saturating part.

    Returns: (len(scales),) array of R² values.
    """
    z = np.random.default_rng(seed).standard_normal(n)
    out = []
    for g in scales:
        s = 1.0 / (1.0 + np.exp(-g * z))
        slope, intercept = np.polyfit(z, s, 1)
        resid = s - (slope * z + intercept)
        out.append(1.0 - resid.var() / s.var())
    return np.array(out)


def saturated_fraction(y: FloatArray, threshold: float = SATURATION_THRESHOLD) -> float:
    """Fraction of pre-activations ``y`` where the sigmoid's slope is below ``threshold``.

    Notebook 02's exercise ``saturated_fraction``, computed by its torch stand-in
    (:func:`bncourse.oracle.saturated_fraction`), in float64.
    """
    return oracle.saturated_fraction(np.asarray(y, dtype=np.float64), threshold)


def bn_as_linear(
    gamma: FloatArray, beta: FloatArray, running_mean: FloatArray, running_var: FloatArray, eps: float = EPS
) -> tuple[FloatArray, FloatArray]:
    """Batch norm in eval mode as a linear layer ``y = W x + b`` with a diagonal ``W``.

    .. math::  W = \\mathrm{diag}\\big(\\gamma / \\sqrt{\\mathrm{var} + \\epsilon}\\big), \\qquad
               b = \\beta - \\gamma\\,\\mu / \\sqrt{\\mathrm{var} + \\epsilon}

    It is :func:`~bncourse.reference.fold_batchnorm` applied to the identity layer.

    Shapes: gamma, beta, running_mean, running_var (D,) → W (D, D), b (D,).
    """
    gamma = np.asarray(gamma)
    d = gamma.shape[0]
    eye = np.eye(d, dtype=gamma.dtype)
    return oracle.fold_batchnorm(eye, np.zeros(d, dtype=gamma.dtype), gamma, beta, running_mean, running_var, eps)


class CirclesResult(NamedTuple):
    """Test accuracy of the circles models, and the final |γ| of the affine BN model."""

    accuracy: dict[str, list[float]]
    gamma_abs_mean: list[float]


def _circles_model(kind: str, width: int, seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(2, width)]
    if kind == "BN without γ, β":
        layers.append(nn.BatchNorm1d(width, affine=False))
    elif kind == "BN with γ, β":
        layers.append(nn.BatchNorm1d(width, affine=True))
    elif kind != "no BN":
        raise ParameterError(f"unknown circles model {kind!r}")
    layers += [nn.Sigmoid(), nn.Linear(width, 2)]
    return nn.Sequential(*layers)


CIRCLES_MODELS = ("BN without γ, β", "BN with γ, β", "no BN")


def train_circles(seeds: Sequence[int] = (0, 1, 2), steps: int = 600, width: int = 8,
                  lr: float = 0.05) -> CirclesResult:
    """Train a 2 → width sigmoid units → 2 network on concentric circles, three ways.

    The three models differ only in the layer before the sigmoid: BatchNorm without
    affine parameters, BatchNorm with γ and β, or nothing.  Adam, batch 64.

    Returns: test accuracy per model and seed, and mean |γ| after training per seed.
    """
    data = make_circles_split(seed=0)
    xt, yt = as_tensor(data.x_train), as_tensor(data.y_train)
    acc: dict[str, list[float]] = {k: [] for k in CIRCLES_MODELS}
    gammas: list[float] = []
    for seed in seeds:
        for kind in CIRCLES_MODELS:
            model = _circles_model(kind, width, seed)
            opt = torch.optim.Adam(model.parameters(), lr=lr)
            gen = torch.Generator().manual_seed(seed)
            model.train()
            for _ in range(steps):
                idx = torch.randint(0, len(xt), (64,), generator=gen)
                loss = nn.functional.cross_entropy(model(xt[idx]), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            acc[kind].append(accuracy(model, data.x_test, data.y_test))
            if kind == "BN with γ, β":
                gammas.append(cast(nn.BatchNorm1d, model[1]).weight.detach().abs().mean().item())
    return CirclesResult(acc, gammas)


def train_recording_gamma_beta(steps: int = 1500, lr: float = 0.5, eval_every: int = 50,
                               seed: int = 0) -> tuple[History, nn.Sequential]:
    """Train the digits MLP with BN and record every BN layer's γ and β over training.

    Returns the :class:`~bncourse.course.training.History` (records hold ``gamma{l}``/``beta{l}``
    arrays per BN layer l) and the trained model.
    """
    data = load_digits_split(seed=0)
    model = make_mlp(norm="bn", seed=seed)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]

    def record(step: int, _model: nn.Module) -> dict[str, Any]:
        rec: dict[str, Any] = {}
        for i, bn in enumerate(bns):
            rec[f"gamma{i}"] = bn.weight.detach().numpy().copy()
            rec[f"beta{i}"] = bn.bias.detach().numpy().copy()
        return rec

    hist = train(model, data.x_train, data.y_train, data.x_test, data.y_test, steps=steps,
                 lr=lr, eval_every=eval_every, seed=seed, callback=record)
    return hist, model


def plot_gamma_beta(hist: History, n_layers: int = 3) -> Figure:
    """γ and β of every BN layer over training: median and 10–90 % band per layer."""
    fig, axes = new_figure(ncols=2, width=12.0, height=4.2)
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    for name, ax in zip(("gamma", "beta"), axes, strict=True):
        for layer in range(n_layers):
            vals = np.stack([r[f"{name}{layer}"] for r in hist.records])  # (T, D)
            lo, med, hi = np.percentile(vals, [10, 50, 90], axis=1)
            ax.plot(hist.steps, med, color=colors[layer], label=f"BN layer {layer + 1} (median)")
            ax.fill_between(hist.steps, lo, hi, color=colors[layer], alpha=0.2)
        sym = "γ" if name == "gamma" else "β"
        ax.set_title(f"{sym} per unit over training (band: 10–90 % of units)")
        ax.set_xlabel("SGD step")
        ax.set_ylabel(sym)
        ax.legend(loc="best")
    return fig


def unit_ablation(model: nn.Module, x: FloatArray, y: NDArray[np.int64], layer: int = -1
                  ) -> tuple[FloatArray, FloatArray]:
    """Loss increase when one unit of a BN layer is switched off, and that unit's |γ|.

    "Switched off" means the unit's BN output is replaced by its β (its normalized value
    is zeroed), i.e. the unit no longer carries information about the input.

    Returns: (|γ| per unit, test-loss increase per unit), both (D,).
    """
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    bn = bns[layer]
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    model.eval()
    with torch.no_grad():
        base = nn.functional.cross_entropy(model(xt), yt).item()
        increases = []
        for unit in range(bn.num_features):
            mask = torch.ones(bn.num_features)
            mask[unit] = 0.0

            def hook(_m: nn.Module, _inp: Any, out: torch.Tensor, mask: torch.Tensor = mask) -> torch.Tensor:
                return out * mask + bn.bias * (1 - mask)

            handle = bn.register_forward_hook(hook)
            increases.append(nn.functional.cross_entropy(model(xt), yt).item() - base)
            handle.remove()
    return bn.weight.detach().abs().numpy().copy(), np.array(increases)


def gamma_beta_widget(z: FloatArray, bins: int = 60) -> Any:
    """Sliders for γ and β over a histogram of ``y = γ·x̂ + β`` with the sigmoid drawn on top.

    ``z`` are pre-activations of one unit (any shape; flattened and normalized with the
    batch statistics).  The title reports the fraction of saturated values
    (σ'(y) < :data:`SATURATION_THRESHOLD`).  Returns an ``ipywidgets`` widget.
    """
    import ipywidgets as widgets

    z = np.asarray(z, dtype=np.float64).ravel()
    x_hat = (z - z.mean()) / np.sqrt(z.var() + EPS)

    def draw(gamma: float, beta: float) -> Figure:
        y = gamma * x_hat + beta
        fig, ax = new_figure(width=8.0, height=4.0)
        ax.hist(y, bins=bins, range=(-8, 8), density=True, color=COLORS["bn"], alpha=0.5,
                label="y = γ·x̂ + β (density)")
        grid = np.linspace(-8, 8, 400)
        ax2 = ax.twinx()
        ax2.plot(grid, 1 / (1 + np.exp(-grid)), color=COLORS["reference"], label="sigmoid σ(y)")
        ax2.set_ylabel("σ(y)")
        ax2.set_ylim(0, 1)
        ax.set_xlim(-8, 8)
        ax.set_xlabel("pre-activation y")
        ax.set_ylabel("density")
        ax.set_title(f"γ = {gamma:.2f}, β = {beta:.2f}: {100 * saturated_fraction(y):.0f} % saturated")
        lines = ax.get_legend_handles_labels()
        lines2 = ax2.get_legend_handles_labels()
        ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper left")
        return fig

    gamma_slider = widgets.FloatSlider(value=1.0, min=0.1, max=6.0, step=0.1, description="γ")
    beta_slider = widgets.FloatSlider(value=0.0, min=-6.0, max=6.0, step=0.1, description="β")
    return figure_with_sliders(draw, [gamma_slider, beta_slider])  # draw(gamma, beta) -> Figure


def plot_saturation_examples(z: FloatArray, settings: Sequence[tuple[float, float]]) -> Figure:
    """Static version of the widget: one panel per ``(γ, β)`` in ``settings``."""
    z = np.asarray(z, dtype=np.float64).ravel()
    x_hat = (z - z.mean()) / np.sqrt(z.var() + EPS)
    fig, axes = new_figure(ncols=len(settings), width=4.2 * len(settings), height=3.6, sharey=True)
    grid = np.linspace(-8, 8, 400)
    for ax, (gamma, beta) in zip(np.atleast_1d(axes), settings, strict=True):
        y = gamma * x_hat + beta
        ax.hist(y, bins=60, range=(-8, 8), density=True, color=COLORS["bn"], alpha=0.5, label="y density")
        ax.plot(grid, 1 / (1 + np.exp(-grid)), color=COLORS["reference"], label="σ(y)")
        ax.set_title(f"γ={gamma:g}, β={beta:g}: {100 * saturated_fraction(y):.0f} % saturated")
        ax.set_xlabel("pre-activation y")
    np.atleast_1d(axes)[0].set_ylabel("density / σ(y)")
    np.atleast_1d(axes)[0].legend(loc="upper left")
    return fig


def init_scale_sweep(scales: Sequence[float], steps: int = 400, lr: float = 0.5, seed: int = 0
                     ) -> dict[str, list[float]]:
    """Final test accuracy of the digits MLP (sigmoid) with and without BN, per init scale.

    Every Linear weight is multiplied by the scale at initialization
    (:func:`bncourse.course.models.init_scaled_`).  Returns ``{"no BN": [...], "BN": [...]}``.
    """
    data = load_digits_split(seed=0)
    out: dict[str, list[float]] = {"no BN": [], "BN": []}
    for label, norm in (("no BN", "none"), ("BN", "bn")):
        for scale in scales:
            model = make_mlp(norm=norm, init_scale=scale, seed=seed)
            hist = train(model, data.x_train, data.y_train, data.x_test, data.y_test, steps=steps,
                         lr=lr, eval_every=steps, seed=seed)
            out[label].append(hist.final_acc)
    return out


def gradient_weight_cosine(model: nn.Module, x: FloatArray, y: NDArray[np.int64]) -> float:
    """Largest |cos| between a pre-BN Linear layer's weight rows and their loss gradients.

    For a scale-invariant layer the gradient of each output unit's weight row is
    orthogonal to that row, so this is ~0 (rounding) — the reason SGD makes ‖W‖ grow.
    """
    layers = list(model.children())
    linears = [m for m, nxt in itertools.pairwise(layers)
               if isinstance(m, nn.Linear) and isinstance(nxt, nn.BatchNorm1d)]
    model.train()
    model.zero_grad()
    nn.functional.cross_entropy(model(torch.as_tensor(x)), torch.as_tensor(y)).backward()
    worst = 0.0
    for lin in linears:
        w, g = lin.weight.detach().double(), lin.weight.grad.detach().double()  # type: ignore[union-attr]
        cos = (w * g).sum(1) / (w.norm(dim=1) * g.norm(dim=1) + 1e-30)
        worst = max(worst, cos.abs().max().item())
    model.zero_grad()
    return worst
