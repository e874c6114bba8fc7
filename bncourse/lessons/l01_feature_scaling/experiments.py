"""The loss landscape of a linear model, and why feature scaling helps gradient descent.

The computations behind notebook 01.  The model is ``ŷ = x·w + b`` with the loss

.. math::  L(w, b) = \\frac{1}{2n} \\sum_{i=1}^{n} (x_i \\cdot w + b - y_i)^2

(the ½ makes the gradient free of a factor 2).  With the design matrix
``X̃ = [x, 1]`` (n, d+1) and ``θ = (w, b)``:

* gradient ``∇L(θ) = X̃ᵀ(X̃θ − y)/n``,
* Hessian ``H = X̃ᵀX̃/n`` (constant: the loss is a quadratic bowl),
* gradient descent ``θ ← θ − lr·∇L(θ)`` is stable iff ``lr < 2/λmax(H)``,
* with ``lr = 1/λmax`` the slowest direction shrinks by ``1 − 1/κ`` per step, where
  ``κ = λmax/λmin`` is the condition number, so the steps to a tolerance grow like
  ``κ·log(1/tol)``.

Also here: Adam's path for comparison, the experiments of the notebook, its figures and
the scale-ratio widget.  The exercises' solutions (``standardize``,
``gd_steps_to_converge``) are not here: the experiments that need them take them as
arguments (the notebook passes ``best_available(...)``'s result);
:func:`gd_steps_closed_form` counts the same steps without a loop.  Matplotlib and
ipywidgets are imported only inside the functions that draw.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bncourse import validation
from bncourse.course.data import make_two_scale_regression
from bncourse.errors import ParameterError, ShapeError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "ConvergenceRecord",
    "adam_path",
    "condition_number",
    "design_matrix",
    "elongated_bowl_figure",
    "gd_path",
    "gd_steps_closed_form",
    "hessian",
    "least_squares",
    "loss_on_grid",
    "lr_sweep",
    "lr_sweep_figure",
    "max_stable_lr",
    "mse_gradient",
    "mse_loss",
    "optimizer_comparison_figure",
    "plot_contours_with_paths",
    "plot_steps_vs_kappa",
    "plot_weight_errors",
    "relative_weight_errors",
    "scale_ratio_widget",
    "steps_until_within",
    "steps_vs_condition",
]

StepsFn = Callable[..., Any]


# --------------------------------------------------------------------------- validation




def _as_theta(theta: ArrayLike, d: int) -> NDArray[np.float64]:
    th = np.asarray(theta, dtype=np.float64)
    if th.shape != (d + 1,):
        raise ShapeError(f"theta = (w_1..w_d, b) must have shape ({d + 1},) for d={d} features, got {th.shape}")
    return th


def _check_lr(lr: float) -> None:
    if not (np.isfinite(lr) and lr > 0):
        raise ParameterError(f"lr must be a finite number > 0, got {lr}")


# --------------------------------------------------------------------------- the quadratic


def design_matrix(x: ArrayLike) -> NDArray[np.float64]:
    """``X̃ = [x, 1]``: the inputs with a column of ones for the bias.

    Shapes: x (n, d) → (n, d+1), float64.
    """
    xa, _ = validation.as_regression_data(x)
    return np.hstack([xa, np.ones((xa.shape[0], 1))])


def mse_loss(theta: ArrayLike, x: ArrayLike, y: ArrayLike) -> float:
    """``L(θ) = ½·mean((X̃θ − y)²)`` for ``θ = (w_1..w_d, b)``.

    Shapes: theta (d+1,), x (n, d), y (n,) → float.
    """
    xa, ya = validation.as_regression_data(x, y)
    th = _as_theta(theta, xa.shape[1])
    r = design_matrix(xa) @ th - ya
    return float(0.5 * np.mean(r**2))


def mse_gradient(theta: ArrayLike, x: ArrayLike, y: ArrayLike) -> NDArray[np.float64]:
    """``∇L(θ) = X̃ᵀ(X̃θ − y)/n``: component j is ``mean(r·x_j)`` — large when x_j is large.

    Shapes: theta (d+1,), x (n, d), y (n,) → (d+1,).
    """
    xa, ya = validation.as_regression_data(x, y)
    th = _as_theta(theta, xa.shape[1])
    xt = design_matrix(xa)
    return np.asarray(xt.T @ (xt @ th - ya) / xa.shape[0])


def hessian(x: ArrayLike) -> NDArray[np.float64]:
    """``H = X̃ᵀX̃/n``, the (constant) Hessian of the loss; it does not depend on y.

    Shapes: x (n, d) → (d+1, d+1), symmetric positive semi-definite.
    """
    xt = design_matrix(x)
    return np.asarray(xt.T @ xt / xt.shape[0])


def condition_number(x: ArrayLike) -> float:
    """``κ = λmax(H)/λmin(H)`` of the Hessian ``H = X̃ᵀX̃/n`` (bias column included).

    These are eigenvalues of X̃ᵀX̃/n — the *squares* of X̃'s singular values over √n —
    so κ is the square of the condition number of X̃.  Returns ``inf`` when H is
    singular (fewer examples than parameters, or a constant feature).

    Shapes: x (n, d) → float.
    """
    lam = np.linalg.eigvalsh(hessian(x))
    lam_min, lam_max = float(lam[0]), float(lam[-1])
    if lam_min <= lam_max * 1e-14:
        return float("inf")
    return lam_max / lam_min


def max_stable_lr(x: ArrayLike) -> float:
    """``2/λmax(H)``: gradient descent diverges for any larger learning rate.

    Along the eigenvector of λ the error is multiplied by ``1 − lr·λ`` each step, so every
    direction shrinks only if ``|1 − lr·λmax| < 1``.  Shapes: x (n, d) → float.
    """
    return 2.0 / float(np.linalg.eigvalsh(hessian(x))[-1])


def least_squares(x: ArrayLike, y: ArrayLike) -> NDArray[np.float64]:
    """The minimiser ``θ* = (w*, b*)`` of the loss (least squares, minimum norm if not unique).

    Shapes: x (n, d), y (n,) → (d+1,).
    """
    xa, ya = validation.as_regression_data(x, y)
    theta, *_ = np.linalg.lstsq(design_matrix(xa), ya, rcond=None)
    return np.asarray(theta)


def loss_on_grid(
    x: ArrayLike, y: ArrayLike, w1: ArrayLike, w2: ArrayLike, b: float
) -> NDArray[np.float64]:
    """The loss on a grid of ``(w1, w2)`` for two features, at a fixed bias ``b``.

    Uses the quadratic form ``L(θ) = ½θᵀHθ − θᵀc + ½·mean(y²)`` with ``c = X̃ᵀy/n``, so
    the cost does not grow with n.  Shapes: x (n, 2), y (n,), w1 and w2 broadcastable
    arrays (e.g. from ``np.meshgrid``) → their broadcast shape.
    """
    xa, ya = validation.as_regression_data(x, y)
    if xa.shape[1] != 2:
        raise ShapeError(f"loss_on_grid draws two weights: x must have shape (n, 2), got {xa.shape}")
    h = hessian(xa)
    c = design_matrix(xa).T @ ya / xa.shape[0]
    w1a, w2a = np.broadcast_arrays(np.asarray(w1, dtype=np.float64), np.asarray(w2, dtype=np.float64))
    th = np.stack([w1a, w2a, np.full_like(w1a, float(b))], axis=-1)
    quad = 0.5 * np.einsum("...i,ij,...j->...", th, h, th)
    return np.asarray(quad - th @ c + 0.5 * np.mean(ya**2))


# --------------------------------------------------------------------------- optimisers


def gd_path(
    x: ArrayLike, y: ArrayLike, lr: float, steps: int, theta0: ArrayLike | None = None
) -> NDArray[np.float64]:
    """Full-batch gradient descent ``θ ← θ − lr·∇L(θ)`` from ``theta0`` (default 0).

    Returns every iterate, row t = θ after t steps.  Iterates that overflow are left as
    inf/nan (a diverging run is a result, not an error).

    Shapes: x (n, d), y (n,), theta0 (d+1,) → (steps+1, d+1).
    """
    xa, ya = validation.as_regression_data(x, y)
    _check_lr(lr)
    if steps < 0:
        raise ParameterError(f"steps must be >= 0, got {steps}")
    d = xa.shape[1]
    th = np.zeros(d + 1) if theta0 is None else _as_theta(theta0, d).copy()
    h = hessian(xa)
    c = design_matrix(xa).T @ ya / xa.shape[0]
    path = np.empty((steps + 1, d + 1))
    path[0] = th
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps):
            th = th - lr * (h @ th - c)  # ∇L(θ) = Hθ − c
            path[t + 1] = th
    return path


def adam_path(
    x: ArrayLike,
    y: ArrayLike,
    lr: float,
    steps: int,
    theta0: ArrayLike | None = None,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> NDArray[np.float64]:
    """Adam (Kingma & Ba 2015) on the same loss, full batch, for comparison with GD.

    ``m ← β1·m + (1−β1)·g``, ``v ← β2·v + (1−β2)·g²``, ``θ ← θ − lr·m̂/(√v̂ + eps)`` with
    the bias-corrected ``m̂ = m/(1−β1ᵗ)``, ``v̂ = v/(1−β2ᵗ)``: each parameter's step is
    divided by its own gradient scale, so every weight moves about ``lr`` per step.

    Shapes: x (n, d), y (n,), theta0 (d+1,) → (steps+1, d+1).
    """
    xa, ya = validation.as_regression_data(x, y)
    _check_lr(lr)
    d = xa.shape[1]
    th = np.zeros(d + 1) if theta0 is None else _as_theta(theta0, d).copy()
    h = hessian(xa)
    c = design_matrix(xa).T @ ya / xa.shape[0]
    m, v = np.zeros(d + 1), np.zeros(d + 1)
    path = np.empty((steps + 1, d + 1))
    path[0] = th
    b1, b2 = betas
    for t in range(1, steps + 1):
        g = h @ th - c
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        th = th - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        path[t] = th
    return path


def gd_steps_closed_form(
    x: ArrayLike, y: ArrayLike, lr: float, tol: float = 1e-6, max_steps: int = 100_000
) -> int:
    """The ``gd_steps_to_converge`` exercise's count evaluated in the Hessian's eigenbasis: no loop.

    Starting from θ = 0 the gradient obeys ``g_{t+1} = g_t − lr·H·g_t = (I − lr·H)·g_t``
    exactly (the loss is quadratic), so with ``H = Q·diag(λ)·Qᵀ`` and ``a = Qᵀg_0``

    .. math::  \\|g_t\\|^2 = \\sum_i (1 - \\mathrm{lr}\\,\\lambda_i)^{2t}\\, a_i^2 .

    Every ``‖g_t‖`` is evaluated at once (in chunks), which makes runs of 10⁵–10⁶ steps
    cheap.  The tests check it returns the same counts as the step-by-step loop (the
    exercise's solution).

    Shapes: x (n, d), y (n,) → int (−1 if not converged within ``max_steps``).
    """
    xa, ya = validation.as_regression_data(x, y)
    _check_lr(lr)
    lam, q = np.linalg.eigh(hessian(xa))
    g0 = -(design_matrix(xa).T @ ya) / xa.shape[0]  # ∇L(0) = H·0 − c
    a2 = (q.T @ g0) ** 2
    tol2 = tol * tol
    if float(a2.sum()) <= tol2:
        return 0
    rate2 = (1.0 - lr * lam) ** 2  # each eigen-component of g shrinks by |1 − lr·λ| per step
    live = a2 > 1e-30 * a2.sum()
    if np.any(live & (rate2 >= 1.0)):
        return -1  # a direction that does not shrink: never converges
    chunk = 1 << 16
    for first in range(0, max_steps + 1, chunk):
        t = np.arange(first, min(first + chunk, max_steps + 1), dtype=np.float64)
        norms2 = rate2[live][None, :] ** t[:, None] @ a2[live]
        hit = np.flatnonzero(norms2 <= tol2)
        if hit.size:
            return int(first + hit[0])
    return -1


# --------------------------------------------------------------------------- experiments


def relative_weight_errors(path: ArrayLike, theta_star: ArrayLike) -> NDArray[np.float64]:
    """``|θ_t − θ*| / |θ*|`` per parameter and step: how far each weight still has to go.

    Shapes: path (T, p), theta_star (p,) → (T, p).
    """
    p = np.asarray(path, dtype=np.float64)
    ts = np.asarray(theta_star, dtype=np.float64)
    if p.ndim != 2 or ts.shape != (p.shape[1],):
        raise ShapeError(f"need path (T, p) and theta_star (p,), got {p.shape} and {ts.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(np.abs(p - ts) / np.maximum(np.abs(ts), 1e-12))


def steps_until_within(path: ArrayLike, theta_star: ArrayLike, rel_tol: float = 0.01, params: int = 2) -> int:
    """First step at which each of the first ``params`` parameters is within ``rel_tol``
    (relative) of ``θ*`` and stays there until the end of ``path``; ``-1`` if never.

    Shapes: path (T, p), theta_star (p,) → int.
    """
    err = relative_weight_errors(path, theta_star)[:, :params]
    ok = np.all(err <= rel_tol, axis=1)
    if not ok[-1]:
        return -1
    bad = np.flatnonzero(~ok)
    return int(bad[-1] + 1) if bad.size else 0


def lr_sweep(
    x: ArrayLike, y: ArrayLike, lr_fractions: Sequence[float], steps: int
) -> NDArray[np.float64]:
    """Relative error of each weight after ``steps`` GD steps, for ``lr = f·2/λmax``.

    Shows that one learning rate cannot suit every weight: the steep direction sets the
    largest stable lr (f < 1), and at that lr the flat direction barely moves.

    Shapes: x (n, d), y (n,), lr_fractions (k,) → (k, d+1) (inf where GD diverged).
    """
    lr_max = max_stable_lr(x)
    theta_star = least_squares(x, y)
    out = np.empty((len(lr_fractions), np.shape(x)[1] + 1))
    for i, f in enumerate(lr_fractions):
        last = gd_path(x, y, f * lr_max, steps)[-1]
        err = relative_weight_errors(last[None, :], theta_star)[0]
        out[i] = np.where(np.isfinite(err), err, np.inf)
    return out


class ConvergenceRecord(NamedTuple):
    """One point of the condition-number experiment."""

    scale_ratio: float
    standardized: bool
    kappa: float
    lr: float
    steps: int


def steps_vs_condition(
    scale_ratios: Sequence[float],
    *,
    steps_fn: StepsFn,
    standardize_fn: Callable[..., Any],
    n: int = 200,
    noise: float = 0.1,
    seed: int = 0,
    tol: float = 1e-6,
    lr_fraction: float = 0.5,
    max_steps: int = 1_000_000,
) -> list[ConvergenceRecord]:
    """GD steps to reach ``‖∇L‖ ≤ tol`` against κ, raw and standardized, for each scale ratio.

    For each ratio r: data from :func:`~bncourse.course.data.make_two_scale_regression` (x2 is r
    times larger), ``lr = lr_fraction·2/λmax`` (0.5 gives ``1/λmax``), steps counted by
    ``steps_fn`` (the ``gd_steps_to_converge`` exercise's signature: the student's version,
    or :func:`gd_steps_closed_form`).  The same data standardized with ``standardize_fn``
    (the ``standardize`` exercise's signature) gives the second record.
    """
    if not 0 < lr_fraction < 1:
        raise ParameterError(f"lr_fraction must be in (0, 1) for GD to converge, got {lr_fraction}")
    records = []
    for r in scale_ratios:
        x, y = make_two_scale_regression(n=n, scale_ratio=float(r), noise=noise, seed=seed)
        x_std = standardize_fn(x, x[:1])[0]
        for is_std, xs in ((False, x), (True, x_std)):
            lr = lr_fraction * max_stable_lr(xs)
            steps = int(steps_fn(xs, y, lr, tol, max_steps))
            records.append(ConvergenceRecord(float(r), is_std, condition_number(xs), lr, steps))
    return records


# --------------------------------------------------------------------------- figures


def plot_contours_with_paths(
    ax: Axes,
    x: ArrayLike,
    y: ArrayLike,
    paths: Mapping[str, ArrayLike],
    *,
    center: Sequence[float] | None = None,
    half_width: float = 3.0,
    half_height: float | None = None,
    equal_aspect: bool = True,
    title: str = "",
    xlabel: str = "$w_1$",
    ylabel: str = "$w_2$",
    levels: int = 14,
    colors: Mapping[str, str] | None = None,
    legend_loc: Literal["upper right", "upper left", "lower right", "lower left", "best"] = "upper right",
) -> Axes:
    """Contours of ``L(w1, w2, b*)`` (b at its optimum) with optimisation paths on top.

    ``paths`` maps a label to iterates (T, 3) (w1, w2, b); only (w1, w2) are drawn.
    Levels are spaced geometrically above the minimum so both the valley and the walls
    show.  With ``equal_aspect`` one unit of w1 is as long as one unit of w2 — the true
    shape of the bowl.  The legend goes to ``legend_loc``: paths start at w = 0, left of
    and below the minimum, so the upper-right corner holds only contours.  Returns ``ax``.
    """
    from bncourse.course.plots import COLORS

    theta_star = least_squares(x, y)
    cx, cy = (theta_star[0], theta_star[1]) if center is None else (center[0], center[1])
    hh = half_width if half_height is None else half_height
    w1 = np.linspace(cx - half_width, cx + half_width, 241)
    w2 = np.linspace(cy - hh, cy + hh, 241)
    g1, g2 = np.meshgrid(w1, w2)
    loss = loss_on_grid(x, y, g1, g2, float(theta_star[2]))
    lmin = mse_loss(theta_star, x, y)
    span = max(float(loss.max()) - lmin, 1e-12)
    lv = lmin + span * np.geomspace(1e-4, 1.0, levels)
    ax.contour(g1, g2, loss, levels=lv, cmap="viridis", linewidths=1.0)
    palette = [COLORS["bn"], COLORS["student"], COLORS["gn"], COLORS["ln"], COLORS["in"]]
    for i, (label, p) in enumerate(paths.items()):
        pa = np.asarray(p, dtype=np.float64)
        color = (colors or {}).get(label, palette[i % len(palette)])
        ax.plot(pa[:, 0], pa[:, 1], "-o", color=color, markersize=3, linewidth=1.5, label=label)
        ax.plot(pa[-1:, 0], pa[-1:, 1], "s", color=color, markersize=9, markeredgecolor="white")
    ax.plot([theta_star[0]], [theta_star[1]], marker="*", color=COLORS["reference"], markersize=14,
            linestyle="none", label="minimum")
    ax.set_xlim(cx - half_width, cx + half_width)
    ax.set_ylim(cy - hh, cy + hh)
    if equal_aspect:
        ax.set_aspect("equal")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc=legend_loc)
    return ax


def plot_weight_errors(
    ax: Axes,
    errors: Mapping[str, ArrayLike],
    *,
    title: str,
    names: Sequence[str] = ("$w_1$", "$w_2$"),
    colors: Sequence[str] | None = None,
    styles: Mapping[str, str] | None = None,
) -> Axes:
    """Relative error of each weight over the steps (log y), one line per weight and run.

    ``errors`` maps a run label to a (T, p) array from :func:`relative_weight_errors`;
    only the first ``len(names)`` columns are drawn.  Returns ``ax``.
    """
    from bncourse.course.plots import COLORS

    cols = list(colors) if colors is not None else [COLORS["gn"], COLORS["bn"]]
    for label, err in errors.items():
        e = np.asarray(err, dtype=np.float64)
        ls = (styles or {}).get(label, "-")
        for j, name in enumerate(names):
            ax.plot(np.arange(len(e)), e[:, j], ls, color=cols[j % len(cols)], label=f"{name}, {label}")
    ax.set_yscale("log")
    ax.set_xlabel("gradient-descent step")
    ax.set_ylabel("relative error |w − w*| / |w*|")
    ax.set_title(title)
    ax.legend()
    return ax


def plot_steps_vs_kappa(ax: Axes, records: Sequence[ConvergenceRecord], *, tol: float) -> float:
    """Measured GD steps against κ on log–log axes, raw and standardized, with a slope-1 line.

    Returns the slope of a least-squares line through the raw points with κ ≥ 10 (the
    regime where ``steps ≈ κ·log(1/tol)`` should hold).
    """
    from bncourse.course.plots import COLORS

    raw = [r for r in records if not r.standardized and r.steps > 0]
    std = [r for r in records if r.standardized and r.steps > 0]
    big = [r for r in raw if r.scale_ratio >= 1]
    small = [r for r in raw if r.scale_ratio < 1]
    ax.loglog([r.kappa for r in big], [r.steps for r in big], "o", color=COLORS["no_bn"], markersize=8,
              label="raw, x2 larger (ratio ≥ 1)")
    ax.loglog([r.kappa for r in small], [r.steps for r in small], "s", color=COLORS["gn"], markersize=7,
              label="raw, x2 smaller (ratio < 1)")
    ax.loglog([r.kappa for r in std], [r.steps for r in std], "*", color=COLORS["bn"], markersize=14,
              label="standardized (every ratio)")
    for r in big:
        ax.annotate(f"×{r.scale_ratio:.3g}", (r.kappa, r.steps), textcoords="offset points", xytext=(6, -12))
    fit = [r for r in raw if r.kappa >= 10]
    slope = float("nan")
    if len(fit) >= 2:
        slope = float(np.polyfit(np.log([r.kappa for r in fit]), np.log([r.steps for r in fit]), 1)[0])
    anchor = max(raw, key=lambda r: r.kappa)
    k = np.geomspace(1.0, anchor.kappa * 1.5, 50)
    ax.loglog(k, anchor.steps * k / anchor.kappa, "--", color=COLORS["reference"], linewidth=1.2,
              label="slope 1 (steps ∝ κ)")
    ax.set_xlabel("condition number κ = λmax/λmin of the Hessian")
    ax.set_ylabel(f"GD steps until ‖∇L‖ ≤ {tol:g}")
    ax.set_title("Steps to converge grow linearly with κ (lr = 1/λmax)")
    ax.legend(loc="upper left")
    return slope


def elongated_bowl_figure(
    x: ArrayLike, y: ArrayLike, x_std: ArrayLike, steps: int = 200, zigzag_steps: int = 60
) -> tuple[Figure, dict[str, NDArray[np.float64]]]:
    """Three panels, each with one point to make.

    (a) The loss along each weight through the minimum, in the same units: a wide parabola
        along w1 (curvature mean(x1²)) and a spike along w2 (curvature mean(x2²)) — the
        elongated bowl, which contour lines at equal axis units cannot show when κ ≈ 10⁴.
    (b) Raw features, zoomed to where gradient descent actually goes in its first
        ``zigzag_steps`` steps (both axes stretched): at lr = 0.95·2/λmax (red) it zig-zags
        across the valley; at lr = 1/λmax (orange) it drops to the valley floor in one step and
        then crawls along it.
    (c) Standardized features at lr = 1/λmax: a round bowl, straight to the minimum.

    Returns the figure and the full ``steps``-step paths ``{"raw", "raw_edge", "std"}``
    (each (steps+1, 3)); "raw" and "std" use lr = 1/λmax of their problem, "raw_edge"
    0.95·2/λmax.  Squares mark where the drawn part of each path ends.
    """
    from bncourse.course.plots import COLORS, MAX_WIDTH_IN, legend_below, new_figure

    lr_raw, lr_edge = 0.5 * max_stable_lr(x), 0.95 * max_stable_lr(x)
    lr_std = 0.5 * max_stable_lr(x_std)
    paths = {"raw": gd_path(x, y, lr_raw, steps), "raw_edge": gd_path(x, y, lr_edge, steps),
             "std": gd_path(x_std, y, lr_std, steps)}
    fig, axes = new_figure(3, width=MAX_WIDTH_IN, height=6.6)

    theta_star = least_squares(x, y)
    curvature = np.diag(hessian(x))
    lmin = mse_loss(theta_star, x, y)
    t = np.linspace(-2.0, 2.0, 801)
    for j, (name, color) in enumerate((("$w_1$", COLORS["gn"]), ("$w_2$", COLORS["bn"]))):
        rise = [mse_loss(theta_star + ti * np.eye(3)[j], x, y) - lmin for ti in t]
        curv = f"{curvature[j]:,.0f}" if curvature[j] >= 100 else f"{curvature[j]:.2f}"
        axes[0].plot(t, rise, color=color, lw=2, label=f"along {name}: curvature {curv}")
    axes[0].set_ylim(0.0, 2.5)
    axes[0].set_xlabel("distance from the optimum")
    axes[0].set_ylabel("loss above its minimum")
    axes[0].set_title("(a) loss through the minimum")
    legend_below(axes[0])

    shown = {"lr = 0.95·2/λmax": paths["raw_edge"][: zigzag_steps + 1],
             "lr = 1/λmax": paths["raw"][: zigzag_steps + 1]}
    pts = np.vstack([p[:, :2] for p in shown.values()])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    half = 0.55 * (hi - lo)
    plot_contours_with_paths(axes[1], x, y, {f"GD, {k}": v for k, v in shown.items()}, center=(lo + hi) / 2,
                             half_width=float(half[0]), half_height=float(half[1]), equal_aspect=False,
                             colors={"GD, lr = 0.95·2/λmax": COLORS["bn"], "GD, lr = 1/λmax": COLORS["student"]},
                             title=f"(b) raw, first {zigzag_steps} steps")
    for line in axes[1].get_lines():  # the minimum lies outside the zoomed window: say where
        if line.get_label() == "minimum":
            line.set_label(f"minimum: off the panel (w1 = {theta_star[0]:.2f})")
    legend_below(axes[1])
    plot_contours_with_paths(axes[2], x_std, y, {f"GD, lr = 1/λmax = {lr_std:.2f}": paths["std"]},
                             half_width=3.6, xlabel="$w_1$ (standardized)",
                             ylabel="$w_2$ (standardized)", title="(c) standardized")
    legend_below(axes[2])
    fig.suptitle("Gradient descent from w = 0 (square: end of the drawn path)")
    return fig, paths


def lr_sweep_figure(
    fractions: ArrayLike, sweep_raw: ArrayLike, sweep_std: ArrayLike, steps: int, clip: float = 1e6
) -> Figure:
    """Relative error of w1 and w2 after ``steps`` steps against lr/(2/λmax), from
    :func:`lr_sweep` on raw and standardized features (log–log; diverged runs clipped)."""
    from bncourse.course.plots import COLORS, MAX_WIDTH_IN, new_figure

    f = np.asarray(fractions, dtype=np.float64)
    raw = np.clip(np.asarray(sweep_raw, dtype=np.float64), 1e-16, clip)
    std = np.clip(np.asarray(sweep_std, dtype=np.float64), 1e-16, clip)
    fig, ax = new_figure(width=MAX_WIDTH_IN, height=5.0)
    ax.loglog(f, raw[:, 0], "o-", color=COLORS["gn"], label="$w_1$ (small input), raw")
    ax.loglog(f, raw[:, 1], "o-", color=COLORS["bn"], label="$w_2$ (large input), raw")
    ax.loglog(f, std[:, 0], "s--", color=COLORS["gn"], alpha=0.6, label="$w_1$, standardized")
    ax.axvline(1.0, color=COLORS["reference"], linestyle=":", label="lr = 2/λmax (stability limit)")
    ax.set_xlabel("learning rate / (2/λmax)   (each problem's own λmax)")
    ax.set_ylabel(f"relative error after {steps} steps\n(diverged runs clipped at {clip:.0e})")
    ax.set_title("Raw features: no learning rate is good for both weights")
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5))
    return fig


def optimizer_comparison_figure(
    x: ArrayLike, y: ArrayLike, paths: Mapping[str, ArrayLike], show_steps: int = 300
) -> Figure:
    """Left: the first ``show_steps`` steps of each path on the raw contours (w2 stretched);
    right: each weight's relative error over all steps (log–log)."""
    from bncourse.course.plots import new_figure

    theta_star = least_squares(x, y)
    fig, axes = new_figure(2, width=13.0, height=4.8)
    plot_contours_with_paths(axes[0], x, y, {k: np.asarray(p)[: show_steps + 1] for k, p in paths.items()},
                             half_width=2.6, half_height=0.05, equal_aspect=False,
                             title=f"raw features, first {show_steps} steps (w2 stretched)")
    styles = ["-", "-.", "--", ":"]
    plot_weight_errors(axes[1], {k: np.maximum(relative_weight_errors(p, theta_star), 1e-16)
                                 for k, p in paths.items()},
                       styles={k: styles[i % 4] for i, k in enumerate(paths)}, title="relative error per weight")
    axes[1].set_xscale("log")
    axes[1].set_xlabel("optimizer step (log scale)")
    return fig


# --------------------------------------------------------------------------- widget


def _fmt_kappa(kappa: float) -> str:
    return f"{kappa:,.0f}" if kappa >= 10 else f"{kappa:.2f}"


def _fmt_distance(rel_err: float) -> str:
    """A relative error as a percentage for a title: whole percent, "< 0.1 %" once
    converged, "> 999 %" once the run has blown up (instead of a clipped "999 %")."""
    pct = 100 * rel_err
    if not np.isfinite(pct) or pct > 999:
        return "> 999 % away (diverging)"
    if pct >= 1:
        return f"{pct:.0f} % away"
    return f"{pct:.1f} % away" if pct >= 0.1 else "< 0.1 % away"


def _widget_title(scale_ratio: float, lr_fraction: float) -> str:
    """The widget's figure title.  The log slider's values are ``10**(0.1 k)``
    (12.589254... for k = 11), so both numbers are shown to 3 significant digits."""
    return f"x2 is {scale_ratio:.3g}× larger than x1; lr = {lr_fraction:.3g} · 2/λmax"


def scale_ratio_widget(
    n: int = 200, noise: float = 0.1, seed: int = 0, steps: int = 40, *, standardize_fn: Callable[..., Any]
) -> Any:
    """A slider for the scale ratio r of x2 to x1 (and one for the learning rate) that
    redraws the contours and the GD paths, raw and standardized, side by side.

    Each redraw generates data with :func:`~bncourse.course.data.make_two_scale_regression`,
    runs ``steps`` GD steps at ``lr = f·2/λmax`` on the raw and on the standardized
    features (standardized with ``standardize_fn``, the ``standardize`` exercise's
    signature), and shows κ and how far w1 got.  Returns an ``ipywidgets.VBox``; its
    ``draw(scale_ratio, lr_fraction) -> Figure`` is exposed for tests.
    """
    import ipywidgets as widgets

    from bncourse.course.plots import legend_below, new_figure
    from bncourse.course.widgets import figure_with_sliders

    def draw(scale_ratio: float, lr_fraction: float) -> Figure:
        x, y = make_two_scale_regression(n=n, scale_ratio=scale_ratio, noise=noise, seed=seed)
        x_std = standardize_fn(x, x[:1])[0]
        fig, axes = new_figure(2, width=11.0, height=5.8)
        for ax, xs, name in ((axes[0], x, "raw"), (axes[1], x_std, "standardized")):
            lr = lr_fraction * max_stable_lr(xs)
            path = gd_path(xs, y, lr, steps)
            theta_star = least_squares(xs, y)
            err_w1 = relative_weight_errors(path[-1:], theta_star)[0, 0]
            start = np.zeros(2)
            half = 1.15 * max(float(np.max(np.abs(theta_star[:2] - start))), 0.5)
            plot_contours_with_paths(
                ax, xs, y, {f"GD, {steps} steps": path}, half_width=half,
                title=f"{name}: κ = {_fmt_kappa(condition_number(xs))}, lr = {lr:.2g}\n"
                      f"w1 still {_fmt_distance(float(err_w1))} after {steps} steps",
            )
            legend_below(ax, ncols=2)  # under the axes: the contours stay visible
        fig.suptitle(_widget_title(scale_ratio, lr_fraction))
        return fig

    ratio = widgets.FloatLogSlider(value=10.0, base=10, min=0, max=2, step=0.1, description="scale ratio",
                                   continuous_update=False)
    frac = widgets.FloatSlider(value=0.5, min=0.05, max=1.05, step=0.05, description="lr · λmax/2",
                               continuous_update=False)
    return figure_with_sliders(draw, [ratio, frac])  # draw(scale_ratio, lr_fraction) -> Figure
