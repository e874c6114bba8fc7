"""Experiments and figures of notebook 08: batch norm inside a network, backpropagated by hand.

The network is ``x → Linear → BN → tanh → Linear → BN → tanh → Linear → logits`` on the
digits, held as NumPy arrays.  Its math comes from the functions the notebook passes in
(:class:`NetFunctions`: the student's own once they pass their checks, else the stand-ins of
:mod:`bncourse.oracle`); this module only does the bookkeeping (forward tape, parameter
updates, running statistics through the given layer function) and the measurements: a
torch autograd twin of the same network for the gradient comparison and the training
curves, the practitioner's diagnostics (activation and gradient histograms, saturation,
update:data ratios) on torch models, and BN calibration after training (EMA buffers vs
precise statistics, the Bessel m/(m−1) factor).  Importing it imports torch and matplotlib
(ipywidgets only when :func:`diagnostics_widget` is called).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name
from matplotlib.figure import Figure
from torch import nn

from bncourse.conventions import BN_MOMENTUM, EPS
from bncourse.course.data import DigitsSplit
from bncourse.course.plots import COLORS, MAX_WIDTH_IN, legend_below, new_figure
from bncourse.course.tables import format_table
from bncourse.course.widgets import figure_with_sliders
from bncourse.validation import FloatArray

__all__ = [
    "BACKPROP_ORDER",
    "DIAG_CONFIGS",
    "SATURATION",
    "CalibrationResult",
    "Diagnostics",
    "NetFunctions",
    "NumpyMLP",
    "TrainingCurves",
    "autograd_gradients",
    "bessel_experiment",
    "calibration_experiment",
    "compare_table",
    "constant_stats_gradients",
    "cross_example_gradient",
    "diagnostics_widget",
    "init_params",
    "plot_bessel",
    "plot_histograms",
    "plot_training",
    "plot_update_ratios",
    "run_diagnostics",
    "torch_twin",
    "train_numpy",
    "train_torch",
]

BACKPROP_ORDER = ("logits", "W3", "b3", "h2", "z2", "a2", "gamma2", "beta2", "W2", "b2",
                  "h1", "z1", "a1", "gamma1", "beta1", "W1", "b1")
"""The tensors whose gradients the notebook compares, in the order backprop produces them."""

SATURATION = 0.97
"""A tanh unit counts as saturated when |h| > 0.97 (its slope 1 − h² is below 0.06)."""


# ---------------------------------------------------------------------------- the NumPy network


@dataclass
class NetFunctions:
    """The layer functions the NumPy network is built from (the student's or stand-ins)."""

    bn_forward: Callable[..., Any]
    bn_backward: Callable[..., Any]
    layer_forward: Callable[..., Any]
    loss: Callable[..., Any]
    linear_backward: Callable[..., Any]
    network_backward: Callable[..., Any]


def init_params(sizes: Sequence[int] = (64, 64, 64, 10), scale: float = 1.0, seed: int = 0) -> dict[str, FloatArray]:
    """PyTorch's default Linear initialization (uniform ±1/√fan_in) times ``scale``, γ = 1, β = 0.

    Weights are stored ``(fan_in, fan_out)`` (``out = x @ W + b``), float64.
    """
    rng = np.random.default_rng(seed)
    params: dict[str, FloatArray] = {}
    for k, (n_in, n_out) in enumerate(pairwise(sizes), start=1):
        bound = 1.0 / np.sqrt(n_in)
        params[f"W{k}"] = scale * rng.uniform(-bound, bound, (n_in, n_out))
        params[f"b{k}"] = rng.uniform(-bound, bound, n_out)
        if k < len(sizes) - 1:
            params[f"gamma{k}"] = np.ones(n_out)
            params[f"beta{k}"] = np.zeros(n_out)
    return params


class NumpyMLP:
    """``Linear → BN → tanh`` twice, then ``Linear``: NumPy arrays, math from :class:`NetFunctions`.

    ``forward(x, training)`` returns ``(logits, tape)``; in training mode BN uses
    ``fns.bn_forward`` (batch statistics, a cache for ``fns.bn_backward``) and the running
    statistics are advanced by ``fns.layer_forward(..., training=True)``; in evaluation mode
    ``fns.layer_forward(..., training=False)`` normalizes with them.
    """

    def __init__(self, params: Mapping[str, FloatArray], fns: NetFunctions, momentum: float = BN_MOMENTUM) -> None:
        self.params = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
        self.fns = fns
        self.momentum = momentum
        width = {k: self.params[f"gamma{k}"].shape[0] for k in (1, 2)}
        self.running = {f"mean{k}": np.zeros(width[k]) for k in (1, 2)} | {f"var{k}": np.ones(width[k]) for k in (1, 2)}

    def forward(self, x: FloatArray, training: bool, update_running: bool = True) -> tuple[FloatArray, dict[str, Any]]:
        p, tape = self.params, {"x": x}
        h = x
        for k in (1, 2):
            a = h @ p[f"W{k}"] + p[f"b{k}"]
            stats = (self.running[f"mean{k}"], self.running[f"var{k}"])
            if training:
                z, tape[f"bn{k}"] = self.fns.bn_forward(a, p[f"gamma{k}"], p[f"beta{k}"])
                if update_running:
                    _, rm, rv = self.fns.layer_forward(a, p[f"gamma{k}"], p[f"beta{k}"], *stats, True, self.momentum)
                    self.running[f"mean{k}"], self.running[f"var{k}"] = rm, rv
            else:
                z, _, _ = self.fns.layer_forward(a, p[f"gamma{k}"], p[f"beta{k}"], *stats, False, self.momentum)
            h = np.tanh(z)
            tape[f"a{k}"], tape[f"z{k}"], tape[f"h{k}"] = a, z, h
        return h @ p["W3"] + p["b3"], tape

    def gradients(self, x: FloatArray, y: Any) -> tuple[float, FloatArray, dict[str, FloatArray]]:
        """``(loss, dlogits, grads)`` on one batch in training mode (running statistics untouched)."""
        logits, tape = self.forward(x, training=True, update_running=False)
        loss, dlogits = self.fns.loss(logits, y)
        grads = self.fns.network_backward(dlogits, tape, self.params, self.fns.linear_backward, self.fns.bn_backward)
        return float(loss), dlogits, grads

    def train_step(self, x: FloatArray, y: Any, lr: float) -> float:
        """One SGD step (advancing the running statistics); returns the batch loss."""
        logits, tape = self.forward(x, training=True)
        loss, dlogits = self.fns.loss(logits, y)
        grads = self.fns.network_backward(dlogits, tape, self.params, self.fns.linear_backward, self.fns.bn_backward)
        for name in self.params:
            self.params[name] = self.params[name] - lr * np.asarray(grads[name], dtype=np.float64)
        return float(loss)

    def accuracy(self, x: FloatArray, y: Any, training: bool = False) -> float:
        logits, _ = self.forward(x, training=training, update_running=False)
        return float(np.mean(logits.argmax(axis=1) == y))


# ---------------------------------------------------------------------------- its torch twin


def torch_twin(params: Mapping[str, FloatArray], momentum: float = BN_MOMENTUM, norm: bool = True) -> nn.Sequential:
    """The same network from torch's modules (float64), with ``params``' values copied in."""
    layers: list[nn.Module] = []
    for k in (1, 2, 3):
        W = params[f"W{k}"]
        lin = nn.Linear(W.shape[0], W.shape[1], dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            lin.bias.copy_(torch.from_numpy(params[f"b{k}"]))
        layers.append(lin)
        if k < 3:
            if norm:
                bn = nn.BatchNorm1d(W.shape[1], momentum=momentum, dtype=torch.float64)
                with torch.no_grad():
                    bn.weight.copy_(torch.from_numpy(params[f"gamma{k}"]))
                    bn.bias.copy_(torch.from_numpy(params[f"beta{k}"]))
                layers.append(bn)
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def _torch_forward(params: Mapping[str, FloatArray], x: FloatArray, detach_stats: bool = False
                   ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Leaves for every parameter and the graph's intermediate tensors (gradients retained)."""
    leaves = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    inter: dict[str, torch.Tensor] = {}
    h = torch.from_numpy(np.asarray(x, dtype=np.float64))
    for k in (1, 2):
        a = h @ leaves[f"W{k}"] + leaves[f"b{k}"]
        if detach_stats:  # BN with μ and σ² treated as constants: the wrong backward
            mu, var = a.mean(0).detach(), a.var(0, unbiased=False).detach()
            z = leaves[f"gamma{k}"] * (a - mu) / torch.sqrt(var + EPS) + leaves[f"beta{k}"]
        else:
            z = F.batch_norm(a, None, None, leaves[f"gamma{k}"], leaves[f"beta{k}"], training=True, eps=EPS)
        h = torch.tanh(z)
        inter[f"a{k}"], inter[f"z{k}"], inter[f"h{k}"] = a, z, h
    inter["logits"] = h @ leaves["W3"] + leaves["b3"]
    for t in inter.values():
        t.retain_grad()
    return leaves, inter


def autograd_gradients(params: Mapping[str, FloatArray], x: FloatArray, y: Any,
                       detach_stats: bool = False) -> dict[str, FloatArray]:
    """torch autograd's gradient of the mean cross-entropy for every tensor of :data:`BACKPROP_ORDER`."""
    leaves, inter = _torch_forward(params, x, detach_stats)
    F.cross_entropy(inter["logits"], torch.as_tensor(np.asarray(y), dtype=torch.int64)).backward()
    out = {k: t.grad.numpy().copy() for k, t in inter.items() if t.grad is not None}
    out |= {k: t.grad.numpy().copy() for k, t in leaves.items() if t.grad is not None}
    return out


def constant_stats_gradients(params: Mapping[str, FloatArray], x: FloatArray, y: Any) -> dict[str, FloatArray]:
    """The gradients a backward gets when it treats BN's μ and σ² as constants (autograd, detached)."""
    return autograd_gradients(params, x, y, detach_stats=True)


def compare_table(ours: Mapping[str, Any], theirs: Mapping[str, FloatArray],
                  keys: Sequence[str] = BACKPROP_ORDER, atol: float = 1e-10) -> str:
    """One row per tensor: shape, exact (bitwise equal), approximate (|Δ| ≤ atol), max |Δ|."""
    rows = []
    for k in keys:
        a, b = np.asarray(ours[k], dtype=np.float64), np.asarray(theirs[k], dtype=np.float64)
        diff = float(np.max(np.abs(a - b))) if a.shape == b.shape else float("inf")
        verdict = "exact" if diff == 0.0 else "approximate" if diff <= atol else "WRONG"
        rows.append({"gradient of": k, "shape": str(b.shape), "verdict": verdict, "max |Δ|": f"{diff:.1e}"})
    return format_table(rows)


def cross_example_gradient(params: Mapping[str, FloatArray], x: FloatArray, y: Any) -> tuple[float, float]:
    """‖∂ loss_0 / ∂ x_j‖ summed over the other examples j ≠ 0, in training mode and in eval mode.

    In training mode BN's batch statistics couple the examples (non-zero); in eval mode, with
    fixed statistics, example 0's loss does not depend on the others (zero).
    """
    res = []
    for training in (True, False):
        model = torch_twin(params)
        model.train(training)
        xt = torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
        loss0 = F.cross_entropy(model(xt)[:1], torch.as_tensor(np.asarray(y)[:1], dtype=torch.int64))
        (g,) = torch.autograd.grad(loss0, (xt,))
        res.append(float(g[1:].norm()))
    return res[0], res[1]


# ---------------------------------------------------------------------------- training curves


@dataclass
class TrainingCurves:
    """Per seed: steps, mean training loss since the last evaluation, test accuracy (eval mode)."""

    steps: list[int] = field(default_factory=list)
    loss: list[list[float]] = field(default_factory=list)
    test_acc: list[list[float]] = field(default_factory=list)
    train_mode_test_acc: list[float] = field(default_factory=list)

    @property
    def final_acc(self) -> FloatArray:
        return np.array([a[-1] for a in self.test_acc])


def _batches(n: int, batch_size: int, steps: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    while len(out) < steps:
        idx = rng.permutation(n)
        out += [idx[i: i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]
    return out[:steps]


def train_numpy(fns: NetFunctions, data: DigitsSplit, *, seeds: Sequence[int] = (0, 1, 2), steps: int = 1200,
                lr: float = 0.2, batch_size: int = 64, eval_every: int = 100, hidden: int = 64
                ) -> tuple[TrainingCurves, NumpyMLP]:
    """SGD on the NumPy network with ``fns``; one run per seed (init and batches).  Returns the
    curves and the last seed's trained network."""
    x, y = data.x_train.astype(np.float64), data.y_train
    xt, yt = data.x_test.astype(np.float64), data.y_test
    curves = TrainingCurves(steps=list(range(0, steps + 1, eval_every)))
    net = None
    for seed in seeds:
        net = NumpyMLP(init_params((x.shape[1], hidden, hidden, 10), seed=seed), fns)
        losses, accs, window = [float("nan")], [net.accuracy(xt, yt)], []
        for step, idx in enumerate(_batches(len(x), batch_size, steps, seed), start=1):
            window.append(net.train_step(x[idx], y[idx], lr))
            if step % eval_every == 0:
                losses.append(float(np.mean(window)))
                accs.append(net.accuracy(xt, yt))
                window = []
        curves.loss.append(losses)
        curves.test_acc.append(accs)
        curves.train_mode_test_acc.append(net.accuracy(xt, yt, training=True))
    assert net is not None
    return curves, net


def train_torch(data: DigitsSplit, *, seeds: Sequence[int] = (0, 1, 2), steps: int = 1200, lr: float = 0.2,
                batch_size: int = 64, eval_every: int = 100, hidden: int = 64, momentum: float = BN_MOMENTUM,
                init_scale: float = 1.0, norm: bool = True) -> tuple[TrainingCurves, nn.Sequential]:
    """The same runs with torch's modules and ``torch.optim.SGD`` (same inits, same batches)."""
    x = torch.from_numpy(data.x_train.astype(np.float64))
    y = torch.from_numpy(data.y_train)
    xt, yt = torch.from_numpy(data.x_test.astype(np.float64)), torch.from_numpy(data.y_test)
    curves = TrainingCurves(steps=list(range(0, steps + 1, eval_every)))
    model = None

    def acc(m: nn.Module, training: bool = False) -> float:
        m.train(training)
        with torch.no_grad():
            out = float((m(xt).argmax(1) == yt).double().mean())
        m.train()
        return out

    for seed in seeds:
        params = init_params((x.shape[1], hidden, hidden, 10), scale=init_scale, seed=seed)
        model = torch_twin(params, momentum=momentum, norm=norm)
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        losses, accs, window = [float("nan")], [acc(model)], []
        for step, idx in enumerate(_batches(len(x), batch_size, steps, seed), start=1):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            window.append(float(loss.detach()))
            if step % eval_every == 0:
                losses.append(float(np.mean(window)))
                accs.append(acc(model))
                window = []
        curves.loss.append(losses)
        curves.test_acc.append(accs)
        curves.train_mode_test_acc.append(acc(model, training=True))
    assert model is not None
    model.eval()
    return curves, model


def _legend_below(fig: Figure, ax: Any) -> None:
    """One legend for the whole figure, below the panels (it covers no data)."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 4))


def _band(ax: Any, x: Sequence[float], runs: Any, label: str, color: str,
          style: str = "-") -> None:
    arr = np.asarray(runs, dtype=np.float64)
    mean = np.nanmean(arr, axis=0)
    ax.plot(x, mean, style, color=color, label=label)
    if arr.shape[0] > 1:
        ax.fill_between(x, np.nanmin(arr, axis=0), np.nanmax(arr, axis=0), color=color, alpha=0.2, lw=0)


def plot_training(ours: TrainingCurves, theirs: TrainingCurves) -> Figure:
    """Training loss and test accuracy of the NumPy network and its torch twin (mean, min–max band)."""
    fig, axes = new_figure(ncols=2, width=MAX_WIDTH_IN, height=5.2)
    n = len(ours.loss)
    for curves, label, color, style in ((ours, "your NumPy layers", COLORS["student"], "-"),
                                        (theirs, "torch modules", COLORS["reference"], "--")):
        _band(axes[0], curves.steps[1:], [r[1:] for r in curves.loss], label, color, style)
        _band(axes[1], curves.steps, [[100 * a for a in r] for r in curves.test_acc], label, color, style)
    axes[0].set(title="Training loss", xlabel="SGD step",
                ylabel="cross-entropy", yscale="log")
    axes[1].axhline(95, color=COLORS["accent"], lw=1, ls=":", label="95 %")
    axes[1].set(title="Test accuracy (eval mode)", xlabel="SGD step",
                ylabel="test accuracy (%)", ylim=(80, 100))
    fig.suptitle(f"Mean of {n} seeds, band: min–max")
    _legend_below(fig, axes[1])
    return fig


# ---------------------------------------------------------------------------- diagnostics


DIAG_CONFIGS: dict[str, tuple[bool, float]] = {
    "BN": (True, 1.0),
    "no BN": (False, 1.0),
    "no BN, W×0.1": (False, 0.1),
    "no BN, W×10": (False, 10.0),
    "BN, W×0.1": (True, 0.1),
    "BN, W×10": (True, 10.0),
}
"""Diagnostic runs: name → (with BN, initial weight scale)."""

_DIAG_COLORS = {"BN": COLORS["bn"], "no BN": COLORS["no_bn"], "no BN, W×0.1": "#1f77b4",
                "no BN, W×10": "#9467bd", "BN, W×0.1": "#ff7f0e", "BN, W×10": "#8c564b"}


@dataclass
class Diagnostics:
    """What :func:`run_diagnostics` recorded.

    ``activations[name][step][layer]`` and ``gradients[name][step][layer]`` are flat arrays
    (tanh outputs of hidden layer 1, 2; weight gradients of Linear 1, 2, 3) on a fixed batch at
    the ``record_steps`` (seed 0); ``ratios[name]`` is ``(seeds, len(ratio_steps), 3)``:
    log10 of std(lr·∂L/∂W) / std(W) per Linear layer; ``test_acc[name]`` per seed.
    """

    record_steps: list[int]
    ratio_steps: list[int]
    activations: dict[str, dict[int, list[FloatArray]]]
    gradients: dict[str, dict[int, list[FloatArray]]]
    ratios: dict[str, FloatArray]
    test_acc: dict[str, list[float]]

    def saturation(self, name: str, step: int, layer: int) -> float:
        """Percentage of |tanh output| > :data:`SATURATION` in hidden layer ``layer`` (1-based)."""
        return float(100 * np.mean(np.abs(self.activations[name][step][layer - 1]) > SATURATION))


def _record(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> tuple[list[FloatArray], list[FloatArray]]:
    """The tanh outputs of every hidden layer and every Linear weight's gradient on ``(x, y)``."""
    h, outs = x, []
    for m in model:
        h = m(h)
        if isinstance(m, nn.Tanh):
            outs.append(h.detach().numpy().ravel().copy())
    model.zero_grad()
    F.cross_entropy(h, y).backward()
    grads = [m.weight.grad.numpy().ravel().copy() for m in model if isinstance(m, nn.Linear)]  # type: ignore[union-attr]
    model.zero_grad()
    return outs, grads


def run_diagnostics(data: DigitsSplit, *, configs: Mapping[str, tuple[bool, float]] = DIAG_CONFIGS,
                    seeds: Sequence[int] = (0, 1, 2), steps: int = 600, lr: float = 0.1, batch_size: int = 64,
                    record_steps: Sequence[int] = (0, 20, 100, 600), ratio_every: int = 10,
                    hidden: int = 64) -> Diagnostics:
    """Train the torch network of each configuration; record histograms and update:data ratios."""
    x = torch.from_numpy(data.x_train.astype(np.float64))
    y = torch.from_numpy(data.y_train)
    probe = slice(0, 256)
    xt, yt = torch.from_numpy(data.x_test.astype(np.float64)), torch.from_numpy(data.y_test)
    acts: dict[str, dict[int, list[FloatArray]]] = {}
    grads: dict[str, dict[int, list[FloatArray]]] = {}
    ratios: dict[str, FloatArray] = {}
    accs: dict[str, list[float]] = {}
    ratio_steps = list(range(ratio_every, steps + 1, ratio_every))
    for name, (norm, scale) in configs.items():
        acts[name], grads[name], accs[name] = {}, {}, []
        per_seed = []
        for seed in seeds:
            model = torch_twin(init_params((x.shape[1], hidden, hidden, 10), scale=scale, seed=seed), norm=norm)
            linears = [m for m in model if isinstance(m, nn.Linear)]
            opt = torch.optim.SGD(model.parameters(), lr=lr)
            r = []
            for step, idx in enumerate(_batches(len(x), batch_size, steps, seed), start=1):
                if seed == seeds[0] and step - 1 in record_steps:
                    acts[name][step - 1], grads[name][step - 1] = _record(model, x[probe], y[probe])
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                if step % ratio_every == 0:
                    r.append([float(torch.log10((lr * lin.weight.grad).std() / lin.weight.data.std()))  # type: ignore[operator, union-attr]
                              for lin in linears])
                opt.step()
            if seed == seeds[0] and steps in record_steps:
                acts[name][steps], grads[name][steps] = _record(model, x[probe], y[probe])
            per_seed.append(r)
            model.eval()
            with torch.no_grad():
                accs[name].append(float((model(xt).argmax(1) == yt).double().mean()))
        ratios[name] = np.array(per_seed)
    return Diagnostics(list(record_steps), ratio_steps, acts, grads, ratios, accs)


def plot_histograms(diag: Diagnostics, step: int, kind: str = "activations",
                    names: Sequence[str] | None = None, layers: Sequence[int] | None = None) -> Figure:
    """Histograms (as lines) of tanh outputs or weight gradients per layer at ``step``, one line per run."""
    names = list(names or diag.activations)
    data = diag.activations if kind == "activations" else diag.gradients
    n_layers = len(next(iter(data.values()))[step])
    layers = list(layers or range(1, n_layers + 1))
    fig, axes = new_figure(ncols=len(layers), width=5.2 * len(layers), height=4.8)
    axes = np.atleast_1d(axes)
    for ax, layer in zip(axes, layers, strict=True):
        for name in names:
            values = data[name][step][layer - 1]
            if kind == "activations":
                hist, edges = np.histogram(values, bins=50, range=(-1, 1), density=True)
            else:
                s = np.std(values) + 1e-30
                hist, edges = np.histogram(values / s, bins=50, range=(-5, 5), density=True)
            ax.plot(0.5 * (edges[1:] + edges[:-1]), hist, color=_DIAG_COLORS.get(name), label=name)
        if kind == "activations":
            ax.set(title=f"hidden layer {layer}", xlabel="h = tanh(z)", ylabel="density", yscale="log")
        else:
            ax.set(title=f"Linear {layer}", xlabel="gradient / its std", ylabel="density", yscale="log")
    fig.suptitle(f"tanh outputs at step {step}" if kind == "activations"
                 else f"∂L/∂W in units of its std, step {step}")
    _legend_below(fig, axes[0])
    return fig


def plot_update_ratios(diag: Diagnostics, names: Sequence[str] | None = None) -> Figure:
    """log10(update std / weight std) per Linear layer over training, mean and min–max over seeds."""
    names = list(names or diag.ratios)
    n_layers = next(iter(diag.ratios.values())).shape[2]
    fig, axes = new_figure(ncols=n_layers, width=5.0 * n_layers, height=4.6, sharey=True)
    for layer, ax in enumerate(axes):
        for name in names:
            _band(ax, diag.ratio_steps, diag.ratios[name][:, :, layer], name, _DIAG_COLORS.get(name, "k"))
        ax.axhline(-3, color=COLORS["reference"], ls=":", lw=1.5, label="rule of thumb 1e-3")
        ax.set(title=f"Linear {layer + 1}: update : data", xlabel="SGD step",
               ylabel="log10( std(lr·∂L/∂W) / std(W) )" if layer == 0 else None)
    _legend_below(fig, axes[-1])
    return fig


def diagnostics_widget(diag: Diagnostics) -> Any:
    """A layer dropdown and a step slider over the activation and gradient histograms."""
    import ipywidgets as widgets

    def draw(layer: int, record: int) -> Figure:
        step = diag.record_steps[record]
        fig, axes = new_figure(ncols=2, width=MAX_WIDTH_IN, height=4.2)
        for name in diag.activations:
            a = diag.activations[name][step][layer - 1]
            hist, edges = np.histogram(a, bins=50, range=(-1, 1), density=True)
            axes[0].plot(0.5 * (edges[1:] + edges[:-1]), hist, color=_DIAG_COLORS.get(name),
                         label=f"{name}: {diag.saturation(name, step, layer):.0f} % sat.")
            g = diag.gradients[name][step][layer - 1]
            hist, edges = np.histogram(g, bins=50, range=(-np.abs(g).max() - 1e-30, np.abs(g).max() + 1e-30),
                                       density=True)
            axes[1].plot(0.5 * (edges[1:] + edges[:-1]), hist * np.std(g), color=_DIAG_COLORS.get(name),
                         label=f"{name}: std {np.std(g):.1e}")
        axes[0].set(title=f"tanh outputs, hidden layer {layer}, step {step}", xlabel="h", ylabel="density",
                    yscale="log")
        axes[1].set(title=f"∂L/∂W of Linear {layer}, step {step}", xlabel="gradient", ylabel="density × std",
                    xscale="symlog", yscale="log")
        for ax in axes:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return fig

    layer = widgets.Dropdown(options=[1, 2], value=1, description="layer")
    record = widgets.IntSlider(min=0, max=len(diag.record_steps) - 1, value=0,
                               description="record #")  # the figure's title says which training step
    return figure_with_sliders(draw, [layer, record])


# ---------------------------------------------------------------------------- calibration


@torch.no_grad()
def _precise_bn(model: nn.Sequential, x: torch.Tensor, batch_size: int) -> None:
    """PreciseBN: recompute every BN layer's statistics with the final weights, averaging the
    batch statistics of one pass over ``x`` (torch's ``momentum=None`` cumulative average)."""
    bns = [m for m in model if isinstance(m, nn.BatchNorm1d)]
    saved = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    model.train()
    for i in range(0, len(x) - batch_size + 1, batch_size):
        model(x[i: i + batch_size])
    for bn, m in zip(bns, saved, strict=True):
        bn.momentum = m
    model.eval()


@torch.no_grad()
def _loss_acc(model: nn.Module, x: torch.Tensor, y: torch.Tensor, training: bool = False,
              batch_size: int | None = None) -> tuple[float, float]:
    """Mean loss and accuracy; in training mode on consecutive batches of ``batch_size``
    (running statistics saved and restored: no side effect)."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.train(training)
    if training and batch_size:
        n = len(x) - len(x) % batch_size
        logits = torch.cat([model(x[i: i + batch_size]) for i in range(0, n, batch_size)])
        y = y[:n]
    else:
        logits = model(x)
    model.load_state_dict(state)
    model.eval()
    return float(F.cross_entropy(logits, y)), float((logits.argmax(1) == y).double().mean())


@dataclass
class CalibrationResult:
    """Per momentum and seed: losses/accuracies of the trained network in each mode."""

    rows: dict[float, dict[str, list[float]]]

    def mean(self, momentum: float, key: str) -> float:
        return float(np.mean(self.rows[momentum][key]))

    def table(self) -> str:
        out = []
        for m, r in self.rows.items():
            out.append({
                "momentum": f"{m:g}",
                "train loss, train mode": float(np.mean(r["train_mode_loss"])),
                "train loss, eval EMA": float(np.mean(r["ema_loss"])),
                "train loss, eval precise": float(np.mean(r["precise_loss"])),
                "test acc EMA (%)": 100 * float(np.mean(r["ema_test_acc"])),
                "test acc precise (%)": 100 * float(np.mean(r["precise_test_acc"])),
            })
        return format_table(out, digits=3)


def calibration_experiment(data: DigitsSplit, *, momenta: Sequence[float] = (0.1, 0.01, 0.001),
                           seeds: Sequence[int] = (0, 1, 2), steps: int = 600, lr: float = 0.2,
                           batch_size: int = 64) -> CalibrationResult:
    """Train the torch network with each BN momentum; compare its EMA buffers with PreciseBN.

    Reports the training set's loss in training mode (batch statistics, batches of
    ``batch_size``: what SGD saw), and in eval mode with the EMA buffers and with precise
    statistics, and the test accuracy of both.
    """
    x, y = torch.from_numpy(data.x_train.astype(np.float64)), torch.from_numpy(data.y_train)
    xt, yt = torch.from_numpy(data.x_test.astype(np.float64)), torch.from_numpy(data.y_test)
    rows: dict[float, dict[str, list[float]]] = {}
    for momentum in momenta:
        r: dict[str, list[float]] = {k: [] for k in ("train_mode_loss", "ema_loss", "precise_loss",
                                                     "ema_test_acc", "precise_test_acc")}
        for seed in seeds:
            _, model = train_torch(data, seeds=(seed,), steps=steps, lr=lr, batch_size=batch_size,
                                   eval_every=steps, momentum=momentum)
            r["train_mode_loss"].append(_loss_acc(model, x, y, training=True, batch_size=batch_size)[0])
            r["ema_loss"].append(_loss_acc(model, x, y)[0])
            r["ema_test_acc"].append(_loss_acc(model, xt, yt)[1])
            _precise_bn(model, x, batch_size)
            r["precise_loss"].append(_loss_acc(model, x, y)[0])
            r["precise_test_acc"].append(_loss_acc(model, xt, yt)[1])
        rows[momentum] = r
    return CalibrationResult(rows)


def bessel_experiment(data: DigitsSplit, *, batch_sizes: Sequence[int] = (2, 4, 8, 32),
                      seeds: Sequence[int] = (0, 1, 2), steps: int = 400, lr: float = 0.1
                      ) -> dict[str, FloatArray]:
    """Train with batches of m; evaluate with running_var as torch stores it (unbiased, the
    EMA of σ²_B·m/(m−1)) and rescaled by (m−1)/m (the biased variance training normalized with).
    Every batch size gets the same number of SGD steps and the same learning rate.

    Returns arrays ``(len(batch_sizes), len(seeds))``: ``"unbiased"``, ``"biased"`` test
    accuracies, ``"var_ratio"`` = mean over BN units of running_var / (EMA of the biased batch
    variance) at the end of training, and ``"train_mode"``: test accuracy in training mode on
    batches of m.
    """
    xt, yt = torch.from_numpy(data.x_test.astype(np.float64)), torch.from_numpy(data.y_test)
    out: dict[str, FloatArray] = {k: np.zeros((len(batch_sizes), len(seeds))) for k in ("unbiased", "biased", "var_ratio", "train_mode")}
    for i, m in enumerate(batch_sizes):
        for j, seed in enumerate(seeds):
            _, model = train_torch(data, seeds=(seed,), steps=steps, lr=lr, batch_size=m, eval_every=steps)
            running_vars = [cast(torch.Tensor, b.running_var) for b in model if isinstance(b, nn.BatchNorm1d)]
            out["unbiased"][i, j] = _loss_acc(model, xt, yt)[1]
            out["train_mode"][i, j] = _loss_acc(model, xt, yt, training=True, batch_size=m)[1]
            saved = [rv.clone() for rv in running_vars]
            for rv in running_vars:
                rv.mul_((m - 1) / m)
            out["biased"][i, j] = _loss_acc(model, xt, yt)[1]
            out["var_ratio"][i, j] = float(np.mean([float((s / rv).mean())
                                                     for s, rv in zip(saved, running_vars, strict=True)]))
            for rv, s in zip(running_vars, saved, strict=True):
                rv.copy_(s)
    return out


def plot_bessel(batch_sizes: Sequence[int], result: Mapping[str, FloatArray]) -> Figure:
    """Test accuracy vs batch size with the unbiased and the biased running variance (mean, min–max)."""
    fig, ax = new_figure(width=MAX_WIDTH_IN, height=5.8)
    for key, label, color in (("unbiased", "eval, running_var as torch stores it (unbiased)", COLORS["bn"]),
                              ("biased", "eval, running_var × (m−1)/m (biased, as in training)", COLORS["gn"]),
                              ("train_mode", "train mode on test batches of m", COLORS["no_bn"])):
        acc = 100 * np.asarray(result[key])
        mean = acc.mean(axis=1)
        ax.errorbar(batch_sizes, mean, yerr=[mean - acc.min(axis=1), acc.max(axis=1) - mean], marker="o",
                    capsize=4, color=color, label=label)
    ax.set(xscale="log", title="Bessel's m/(m−1): test accuracy (3 seeds, min–max)",
           xlabel="training batch size m", ylabel="test accuracy (%)")
    ax.minorticks_off()
    ax.set_xticks(list(batch_sizes), [str(m) for m in batch_sizes])
    legend_below(ax)
    return fig
