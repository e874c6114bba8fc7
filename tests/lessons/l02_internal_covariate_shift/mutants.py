"""Mutants of notebook 02's exercises, written as a student might."""

from __future__ import annotations

import numpy as np


def perc_loop(z, qs=(15, 50, 85)):
    n, d = z.shape
    out = np.empty((len(qs), d), dtype=z.dtype)
    for j in range(d):
        col = np.sort(z[:, j])
        for k, q in enumerate(qs):
            pos = q / 100 * (n - 1)
            lo = int(np.floor(pos))
            hi = min(lo + 1, n - 1)
            out[k, j] = col[lo] + (pos - lo) * (col[hi] - col[lo])
    return out


def perc_quantile(z, qs=(15, 50, 85)):
    return np.quantile(z, np.array(qs) / 100, axis=0).astype(z.dtype)


def perc_fractions(z, qs=(15, 50, 85)):
    return np.percentile(z, [q / 100 for q in qs], axis=0).astype(z.dtype)


def perc_nearest_rank(z, qs=(15, 50, 85)):
    s = np.sort(z, axis=0)
    return np.array([s[min(int(q / 100 * len(z)), len(z) - 1)] for q in qs], dtype=z.dtype)


def perc_lower(z, qs=(15, 50, 85)):
    s = np.sort(z, axis=0)
    return np.array([s[int(np.floor(q / 100 * (len(z) - 1)))] for q in qs], dtype=z.dtype)


def perc_all_units(z, qs=(15, 50, 85)):
    return np.percentile(z, qs).astype(z.dtype)


def perc_wrong_axis(z, qs=(15, 50, 85)):
    return np.percentile(z, qs, axis=1).astype(z.dtype)


def gp_loop(grad_fn, w, etas):
    g = grad_fn(w)
    out = np.zeros(len(etas), dtype=w.dtype)
    for k, eta in enumerate(etas):
        diff = grad_fn(w - eta * g) - g
        out[k] = np.sqrt(np.dot(diff, diff))
    return out


def gp_plus(grad_fn, w, etas):
    g = grad_fn(w)
    return np.array([np.linalg.norm(grad_fn(w + e * g) - g) for e in etas], dtype=w.dtype)


def gp_squared(grad_fn, w, etas):
    g = grad_fn(w)
    return np.array([((grad_fn(w - e * g) - g) ** 2).sum() for e in etas], dtype=w.dtype)


def gp_norm_only(grad_fn, w, etas):
    g = grad_fn(w)
    return np.array([np.linalg.norm(grad_fn(w - e * g)) for e in etas], dtype=w.dtype)


def gp_relative(grad_fn, w, etas):
    g = grad_fn(w)
    return np.array([np.linalg.norm(grad_fn(w - e * g) - g) / np.linalg.norm(g) for e in etas], dtype=w.dtype)


MUTANTS = [
    ("activation_percentiles", "don't divide qs by 100", perc_fractions),
    ("activation_percentiles", "not the percentile", perc_nearest_rank),
    ("activation_percentiles", "not the lower neighbour", perc_lower),
    ("activation_percentiles", "per unit", perc_all_units),
    ("activation_percentiles", "over the batch (axis=0)", perc_wrong_axis),
    ("gradient_predictiveness", "not w + η·g", gp_plus),
    ("gradient_predictiveness", "not its square", gp_squared),
    ("gradient_predictiveness", "subtract g", gp_norm_only),
    ("gradient_predictiveness", "without dividing", gp_relative),
]

CORRECT = [
    ("activation_percentiles", perc_loop),
    ("activation_percentiles", perc_quantile),
    ("gradient_predictiveness", gp_loop),
]


# --- saturated_fraction: written apart from the package's mistakes, with scipy-free sigmoids
# in the forms students use (tanh identity, explicit exp of −z).


def sat_correct_tanh_identity(z, threshold=0.05):
    s = 0.5 * (1.0 + np.tanh(np.asarray(z) / 2.0))  # σ(z) = (1 + tanh(z/2)) / 2
    slope = s - s * s
    return float(np.count_nonzero(slope < threshold) / np.size(z))


def sat_value_below(z, threshold=0.05):
    s = 1.0 / (1.0 + np.exp(-np.asarray(z)))
    return float((s < threshold).sum() / s.size)


def sat_steep_units(z, threshold=0.05):
    e = np.exp(-np.asarray(z))
    slope = e / (1.0 + e) ** 2
    return float(np.mean(slope >= threshold))


def sat_square_form(z, threshold=0.05):
    s = 1.0 / (1.0 + np.exp(-np.asarray(z)))
    return float(np.mean((1.0 - s * s) < threshold))


def sat_as_percent(z, threshold=0.05):
    e = np.exp(-np.asarray(z))
    return float(np.mean(e / (1.0 + e) ** 2 < threshold) * 100)


MUTANTS += [
    ("saturated_fraction", "compared sigmoid(z) itself", sat_value_below),
    ("saturated_fraction", "counted the steep entries", sat_steep_units),
    ("saturated_fraction", "form of tanh's derivative", sat_square_form),
    ("saturated_fraction", "returned a percentage", sat_as_percent),
]
CORRECT += [("saturated_fraction", sat_correct_tanh_identity)]
