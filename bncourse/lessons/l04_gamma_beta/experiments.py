"""γ and β: what the learnable scale and shift of batch normalization give back.

The computations behind notebook 04: how linear a sigmoid is on normalized inputs; BN as a
diagonal affine layer at test time; small sigmoid networks with and without γ and β on the
concentric circles (where β is what matters: the circles are symmetric about the origin) and
on sharp stripes (where γ is); γ/β trajectories, gradient–weight angles, init-scale sweeps and
saturation statistics on the digits; and the γ/β slider widget.  The sigmoid is written φ
(σ is a standard deviation in this course).  The exercises (``recover_identity``, ``bias_grad_through_bn``,
``scale_invariance_check``) are not here: the notebook calls the student's versions through
``best_available``.  NumPy functions use :mod:`bncourse.reference`.  Importing this module
imports torch and matplotlib (ipywidgets only when :func:`gamma_beta_widget` is called).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from matplotlib.figure import Figure
from numpy.typing import NDArray
from torch import nn

from bncourse import oracle
from bncourse.conventions import EPS
from bncourse.course.data import DigitsSplit, load_digits_split
from bncourse.course.models import make_mlp
from bncourse.course.plots import COLORS, MAX_WIDTH_IN, legend_below, new_figure
from bncourse.course.training import History, as_tensor, minibatch_step, train
from bncourse.course.widgets import figure_with_sliders
from bncourse.errors import ParameterError
from bncourse.validation import FloatArray

__all__ = [
    "HIST_RANGE",
    "SATURATION_THRESHOLD",
    "VARIANTS",
    "SaturationStats",
    "ScaleShift",
    "ScaleShiftBN",
    "VariantResult",
    "bn_as_linear",
    "gamma_beta_widget",
    "gradient_weight_cosine",
    "init_scale_sweep",
    "logit_margin",
    "make_stripes",
    "plot_circles",
    "plot_gamma_beta",
    "plot_saturation_examples",
    "plot_stripes",
    "plot_variant_accuracy",
    "saturated_fraction",
    "saturation_stats",
    "sigmoid_linearity",
    "symmetry_ratio",
    "train_recording_gamma_beta",
    "train_variants",
    "variant_model",
]


SATURATION_THRESHOLD = 0.05
"""A sigmoid unit counts as saturated when its slope φ'(y) = φ(y)(1−φ(y)) is below this
(a fifth of the maximum slope 0.25; |y| > 2.9)."""


def sigmoid_linearity(scales: Sequence[float], n: int = 20_000, seed: int = 0) -> FloatArray:
    """R² of the best straight-line fit to φ(γ·z) (φ the sigmoid) for z ~ N(0, 1), for each γ in ``scales``.

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


class ScaleShift(NamedTuple):
    """What follows the normalization in a circles/stripes model (:func:`train_variants`).

    ``gamma``: ``"learn"`` (a learnable γ per unit, starting at 1), a number (γ frozen at that
    value) or ``None`` (no γ: the same as γ frozen at 1).  ``beta``: a learnable β (starting at
    0) or none.  ``bn``: False for the plain network (Linear → sigmoid, the Linear's bias kept).
    ``after_sigmoid``: BN (and its γ, β) placed after the sigmoid instead of before it.
    """

    gamma: str | float | None = "learn"
    beta: bool = True
    bn: bool = True
    after_sigmoid: bool = False


VARIANTS: dict[str, ScaleShift] = {
    "BN, no γ, β": ScaleShift(gamma=None, beta=False),
    "BN, γ only": ScaleShift(gamma="learn", beta=False),
    "BN, γ = 8 fixed": ScaleShift(gamma=8.0, beta=False),
    "BN, β only": ScaleShift(gamma=None, beta=True),
    "BN, γ and β": ScaleShift(),
    "no BN": ScaleShift(gamma=None, beta=False, bn=False),
    "BN after the sigmoid, no γ, β": ScaleShift(gamma=None, beta=False, after_sigmoid=True),
}
"""The variants the notebook trains, by the name it prints (any :class:`ScaleShift` works)."""


class ScaleShiftBN(nn.Module):
    """Batch norm without affine parameters, then an optional γ (learnable or frozen) and β."""

    def __init__(self, width: int, gamma: str | float | None = "learn", beta: bool = True) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(width, affine=False)
        if gamma is not None and gamma != "learn" and not isinstance(gamma, (int, float)):
            raise ParameterError(f"gamma must be 'learn', a number or None, got {gamma!r}")
        self.weight = nn.Parameter(torch.ones(width)) if gamma == "learn" else None
        self.fixed_gamma = 1.0 if gamma is None or gamma == "learn" else float(gamma)
        self.bias = nn.Parameter(torch.zeros(width)) if beta else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(x)
        y = y * self.weight if self.weight is not None else y * self.fixed_gamma
        return y + self.bias if self.bias is not None else y


def variant_model(variant: ScaleShift, width: int = 8, seed: int = 0, d_in: int = 2) -> nn.Sequential:
    """``d_in → width`` sigmoid units ``→ 2`` logits, with the normalization ``variant`` describes."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(d_in, width), nn.Sigmoid(), nn.Linear(width, 2)]
    if variant.bn:
        layers.insert(2 if variant.after_sigmoid else 1, ScaleShiftBN(width, variant.gamma, variant.beta))
    return nn.Sequential(*layers)


class VariantResult(NamedTuple):
    """Per variant name, one entry per seed: test accuracy, test loss, mean and max |γ| (NaN without a learnable γ)."""

    accuracy: dict[str, list[float]]
    loss: dict[str, list[float]]
    gamma_abs_mean: dict[str, list[float]]
    gamma_abs_max: dict[str, list[float]]
    models: dict[str, nn.Sequential]
    """The trained model of the first seed, per variant."""


def train_variants(
    data: DigitsSplit, variants: Sequence[str] | dict[str, ScaleShift], seeds: Sequence[int] = (0, 1, 2),
    steps: int = 400, width: int = 8, lr: float = 0.05, batch_size: int = 64,
) -> VariantResult:
    """Train one small sigmoid network per variant and seed on ``data`` (Adam, batches of 64).

    ``variants``: names from :data:`VARIANTS`, or a ``{name: ScaleShift}`` dict of your own.
    Seeds set the initialization and the batch order; the data stay the same.
    """
    chosen = {v: VARIANTS[v] for v in variants} if not isinstance(variants, dict) else dict(variants)
    xt, yt = as_tensor(data.x_train), as_tensor(data.y_train)
    xs, ys = as_tensor(data.x_test), as_tensor(data.y_test)
    acc: dict[str, list[float]] = {k: [] for k in chosen}
    loss: dict[str, list[float]] = {k: [] for k in chosen}
    g_mean: dict[str, list[float]] = {k: [] for k in chosen}
    g_max: dict[str, list[float]] = {k: [] for k in chosen}
    models: dict[str, nn.Sequential] = {}
    for name, variant in chosen.items():
        for seed in seeds:
            model = variant_model(variant, width, seed, d_in=xt.shape[1])
            opt = torch.optim.Adam(model.parameters(), lr=lr)
            gen = torch.Generator().manual_seed(seed)
            model.train()
            for _ in range(steps):
                minibatch_step(model, opt, xt, yt, gen, batch_size)
            model.eval()
            with torch.no_grad():
                logits = model(xs)
                acc[name].append(float((logits.argmax(1) == ys).float().mean()))
                loss[name].append(float(nn.functional.cross_entropy(logits, ys)))
            gammas = [m.weight for m in model.modules() if isinstance(m, ScaleShiftBN) and m.weight is not None]
            g = gammas[0].detach().abs() if gammas else None
            g_mean[name].append(float(g.mean()) if g is not None else float("nan"))
            g_max[name].append(float(g.max()) if g is not None else float("nan"))
            models.setdefault(name, model)
    return VariantResult(acc, loss, g_mean, g_max, models)


def logit_margin(model: nn.Module, x: FloatArray) -> FloatArray:
    """d(x) = logit₁(x) − logit₀(x) of a trained two-class model, in eval mode, for each row of ``x``."""
    model.eval()
    with torch.no_grad():
        logits = model(as_tensor(np.asarray(x, dtype=np.float32)))
    return (logits[:, 1] - logits[:, 0]).numpy().astype(np.float64)


def make_stripes(n_train: int = 1000, n_test: int = 1000, stripes: int = 4, seed: int = 0) -> DigitsSplit:
    """1-D points x ~ U(−1, 1) in ``stripes`` equal intervals with alternating labels 0, 1, 0, ….

    A task whose class boundaries are sharp compared with the spread of the data: a
    sigmoid unit must become a steep step to place one.
    """
    rng = np.random.default_rng(seed)

    def draw(n: int) -> tuple[FloatArray, NDArray[np.int64]]:
        x = rng.uniform(-1.0, 1.0, size=(n, 1)).astype(np.float32)
        y = (np.floor((x[:, 0] + 1.0) * stripes / 2.0).astype(np.int64) % 2).astype(np.int64)
        return x, y

    x_tr, y_tr = draw(n_train)
    x_te, y_te = draw(n_test)
    empty_x, empty_y = np.zeros((0, 1), np.float32), np.zeros(0, np.int64)
    return DigitsSplit(x_tr, y_tr, empty_x, empty_y, x_te, y_te)


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
    fig, axes = new_figure(ncols=2, width=MAX_WIDTH_IN, height=5.0)
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    for name, ax in zip(("gamma", "beta"), axes, strict=True):
        for layer in range(n_layers):
            vals = np.stack([r[f"{name}{layer}"] for r in hist.records])  # (T, D)
            lo, med, hi = np.percentile(vals, [10, 50, 90], axis=1)
            ax.plot(hist.steps, med, color=colors[layer], label=f"BN layer {layer + 1} (median)")
            ax.fill_between(hist.steps, lo, hi, color=colors[layer], alpha=0.2)
        sym = "γ" if name == "gamma" else "β"
        ax.set_title(f"{sym} per unit (band: 10–90 % of units)")
        ax.set_xlabel("SGD step")
        ax.set_ylabel(sym)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels))  # same entries for both panels
    return fig


HIST_RANGE = 8.0
"""The widget and its static version draw y in [−8, 8]; values beyond are counted, not drawn."""


def _draw_scale_shift(ax: Any, y: FloatArray, gamma: float, beta: float, bins: int) -> Any:
    """Histogram of y over [−8, 8], the sigmoid on a twin axis, and a title that counts the
    saturated values and the values beyond ±8 (which the histogram cannot show)."""
    ax.hist(y, bins=bins, range=(-HIST_RANGE, HIST_RANGE), density=True, color=COLORS["bn"], alpha=0.5,
            label="y = γ·x̂ + β (density)")
    grid = np.linspace(-HIST_RANGE, HIST_RANGE, 400)
    ax2 = ax.twinx()
    ax2.plot(grid, 1 / (1 + np.exp(-grid)), color=COLORS["reference"], label="sigmoid φ(y)")
    ax2.set_ylim(0, 1.05)
    ax.set_xlim(-HIST_RANGE, HIST_RANGE)
    ax.set_xlabel("pre-activation y")
    outside = float(np.mean(np.abs(y) > HIST_RANGE))
    title = f"γ = {gamma:.2f}, β = {beta:.2f}\n{100 * saturated_fraction(y):.0f} % saturated"
    if outside > 0:
        title += f"\n{100 * outside:.0f} % of values beyond ±{HIST_RANGE:g}"
    ax.set_title(title)
    return ax2


def _legend_below(fig: Figure, ax: Any, ax2: Any) -> None:
    lines, labels = ax.get_legend_handles_labels()
    lines2, labels2 = ax2.get_legend_handles_labels()
    fig.legend(lines + lines2, labels + labels2, loc="outside lower center", ncol=2)


def gamma_beta_widget(z: FloatArray, bins: int = 60) -> Any:
    """Sliders for γ and β over a histogram of ``y = γ·x̂ + β`` with the sigmoid φ drawn on top.

    ``z`` are pre-activations of one unit (any shape; flattened and normalized with the
    batch statistics).  The title reports the fraction of saturated values
    (φ'(y) < :data:`SATURATION_THRESHOLD`) and, when there are any, the fraction beyond
    ±:data:`HIST_RANGE` that the axis does not show; the legend sits below the axes, off the
    bars.  Returns an ``ipywidgets`` widget.
    """
    import ipywidgets as widgets

    z = np.asarray(z, dtype=np.float64).ravel()
    x_hat = (z - z.mean()) / np.sqrt(z.var() + EPS)

    def draw(gamma: float, beta: float) -> Figure:
        fig, ax = new_figure(width=8.0, height=4.4)
        ax2 = _draw_scale_shift(ax, gamma * x_hat + beta, gamma, beta, bins)
        ax.set_ylabel("density")
        ax2.set_ylabel("φ(y)")
        _legend_below(fig, ax, ax2)
        return fig

    gamma_slider = widgets.FloatSlider(value=1.0, min=0.1, max=6.0, step=0.1, description="γ")
    beta_slider = widgets.FloatSlider(value=0.0, min=-6.0, max=6.0, step=0.1, description="β")
    return figure_with_sliders(draw, [gamma_slider, beta_slider])  # draw(gamma, beta) -> Figure


def plot_saturation_examples(z: FloatArray, settings: Sequence[tuple[float, float]]) -> Figure:
    """Static version of the widget: one panel per ``(γ, β)`` in ``settings``."""
    z = np.asarray(z, dtype=np.float64).ravel()
    x_hat = (z - z.mean()) / np.sqrt(z.var() + EPS)
    fig, axes = new_figure(ncols=len(settings), width=4.4 * len(settings), height=5.2)
    axes = np.atleast_1d(axes)
    for k, (ax, (gamma, beta)) in enumerate(zip(axes, settings, strict=True)):
        ax2 = _draw_scale_shift(ax, gamma * x_hat + beta, gamma, beta, 60)
        if k == len(settings) - 1:
            ax2.set_ylabel("φ(y)")
        else:
            ax2.set_yticklabels([])
    axes[0].set_ylabel("density")
    _legend_below(fig, axes[0], ax2)
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


def plot_variant_accuracy(result: VariantResult, ax: Any, title: str) -> None:
    """Bars: mean test accuracy per variant; dots: the seeds; dotted line: chance."""
    names = list(result.accuracy)
    for i, name in enumerate(names):
        accs = result.accuracy[name]
        ax.bar(i, np.mean(accs), color=_variant_color(names, name), alpha=0.6)
        ax.plot([i] * len(accs), accs, "ko", ms=4, label="one seed" if i == 0 else None)
    ax.axhline(0.5, ls=":", color="k", label="chance")
    ax.set_xticks(range(len(names)), [n.replace(", ", ",\n", 1) for n in names])
    ax.set_ylim(0, 1.05)
    ax.set_title(title)
    ax.set_ylabel("test accuracy")
    legend_below(ax, ncols=2, gap=1.0)  # under the two-line tick labels, off the bars


_BN_PALETTE = (COLORS["bn"], COLORS["accent"], COLORS["gn"], COLORS["ln"], COLORS["in"], COLORS["student"])


def _variant_color(names: list[str], name: str) -> str:
    """Grey for the network without BN (the course's convention), BN colours for the others."""
    if name.startswith("no BN"):
        return COLORS["no_bn"]
    bn_names = [n for n in names if not n.startswith("no BN")]
    return _BN_PALETTE[bn_names.index(name) % len(_BN_PALETTE)]


def plot_circles(data: DigitsSplit, result: VariantResult) -> Figure:
    """Left: the concentric circles (test set); right: test accuracy per variant and seed."""
    fig, (ax1, ax2) = new_figure(ncols=2, width=MAX_WIDTH_IN, height=5.4, gridspec_kw={"width_ratios": [1, 2]})
    for label, color in ((0, COLORS["no_bn"]), (1, COLORS["bn"])):
        pts = data.x_test[data.y_test == label]
        ax1.scatter(pts[:, 0], pts[:, 1], s=8, color=color, label=f"class {label}")
    ax1.plot([0], [0], "k+", ms=10, label="origin")
    ax1.set_title("Concentric circles (test set)")
    ax1.set_xlabel("x₁")
    ax1.set_ylabel("x₂")
    ax1.set_aspect("equal")
    legend_below(ax1, ncols=3, columnspacing=0.8, handletextpad=0.2)
    plot_variant_accuracy(result, ax2, "Test accuracy (bars: mean over seeds)")
    return fig


def plot_stripes(result: VariantResult, stripes: int = 4) -> Figure:
    """Left: P(class 1 | x) of each variant's first-seed model over the stripes; right: accuracy per seed."""
    fig, (ax1, ax2) = new_figure(ncols=2, width=MAX_WIDTH_IN, height=5.6)
    grid = np.linspace(-1, 1, 801).reshape(-1, 1)
    target = np.floor((grid[:, 0] + 1.0) * stripes / 2.0) % 2
    ax1.fill_between(grid[:, 0], 0, target, color="0.85", step="mid", label="class 1 (the truth)")
    for name, model in result.models.items():
        color = _variant_color(list(result.models), name)
        prob = 1.0 / (1.0 + np.exp(-logit_margin(model, grid)))
        ax1.plot(grid[:, 0], prob, color=color, label=name)
    ax1.set_title("What the first seed's network predicts")
    ax1.set_xlabel("input x")
    ax1.set_ylabel("P(class 1 | x)")
    ax1.set_ylim(-0.02, 1.02)
    legend_below(ax1, ncols=2)
    plot_variant_accuracy(result, ax2, "Test accuracy (bars: mean over seeds)")
    return fig


class SaturationStats(NamedTuple):
    """Per BN layer of a trained digits MLP (:func:`saturation_stats`)."""

    gamma_abs_max: list[float]
    """Largest |γ| of the layer."""
    saturated: list[float]
    """Fraction of (test example, unit) values on the sigmoid's flat parts, after training."""
    saturated_at_init: list[float]
    """The same with γ = 1, β = 0 (the initialization), i.e. of the normalized values themselves."""
    units_mostly_saturated: list[int]
    """Units of the layer with more than half of their test values saturated."""


def saturation_stats(model: nn.Module, x: FloatArray) -> SaturationStats:
    """How much a trained BN network uses γ, β to saturate its sigmoids, layer by layer (eval mode)."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    captured: dict[int, torch.Tensor] = {}
    handles = [bn.register_forward_hook(lambda _m, inp, out, i=i: captured.__setitem__(i, inp[0]))
               for i, bn in enumerate(bns)]
    model.eval()
    try:
        with torch.no_grad():
            model(as_tensor(x))
    finally:
        for h in handles:
            h.remove()
    g_max, sat, sat0, mostly = [], [], [], []
    for i, bn in enumerate(bns):
        mean, var = bn.running_mean, bn.running_var
        if mean is None or var is None:
            raise ParameterError("saturation_stats needs BN layers that track running statistics")
        x_hat = ((captured[i] - mean) / torch.sqrt(var + bn.eps)).numpy().astype(np.float64)
        y = x_hat * bn.weight.detach().numpy() + bn.bias.detach().numpy()
        slope_y = _sigmoid_slope(y)
        g_max.append(float(np.abs(bn.weight.detach().numpy()).max()))
        sat.append(float(np.mean(slope_y < SATURATION_THRESHOLD)))
        sat0.append(float(np.mean(_sigmoid_slope(x_hat) < SATURATION_THRESHOLD)))
        mostly.append(int(np.count_nonzero(np.mean(slope_y < SATURATION_THRESHOLD, axis=0) > 0.5)))
    return SaturationStats(g_max, sat, sat0, mostly)


def _sigmoid_slope(y: FloatArray) -> FloatArray:
    p = 1.0 / (1.0 + np.exp(-np.asarray(y, dtype=np.float64)))
    return p * (1.0 - p)


def symmetry_ratio(model: nn.Module, x: FloatArray) -> float:
    """std over ``x`` of d(x) + d(−x), divided by the std of d(x) (d = :func:`logit_margin`).

    ≈ 0 when d is a constant plus an odd function of x (then d(x) + d(−x) = const): the
    network cannot tell x from −x apart except through that constant.  ≈ 2 for a network
    whose d is even (as the circles need).
    """
    d_plus, d_minus = logit_margin(model, x), logit_margin(model, -np.asarray(x))
    return float(np.std(d_plus + d_minus) / (np.std(d_plus) + 1e-30))
