"""Mutants of notebook 05's exercises: ``population_stats``, ``batchnorm_inference``, ``BatchNorm1d``.

Written the way a student would (loops, running sums, other formulas), independently of
the ``Mistake`` implementations in ``bncourse/grading/exercises/test_time.py``.
"""

from __future__ import annotations

import numpy as np

# ---------------------------------------------------------------------------- population_stats


def pop_correct_concat(batches):
    allx = np.concatenate(batches, axis=0)
    return allx.mean(axis=0), allx.var(axis=0, ddof=1)


def pop_correct_chan(batches):
    """Chan et al.'s parallel merge of (count, mean, M2), in float64."""
    n, mean, m2 = 0, 0.0, 0.0
    for b in batches:
        b = b.astype(np.float64)
        nb = b.shape[0]
        mb = b.mean(axis=0)
        m2b = ((b - mb) ** 2).sum(axis=0)
        delta = mb - mean
        tot = n + nb
        mean = mean + delta * nb / tot
        m2 = m2 + m2b + delta**2 * n * nb / tot
        n = tot
    dt = batches[0].dtype
    return np.asarray(mean).astype(dt), np.asarray(m2 / (n - 1)).astype(dt)


def pop_avg_vars(batches):
    n = sum(b.shape[0] for b in batches)
    mu = sum(b.sum(axis=0) for b in batches) / n
    v = sum(b.var(axis=0, ddof=1) for b in batches) / len(batches)
    return mu, v


def pop_avg_biased_vars(batches):
    allx = np.concatenate(batches)
    vs = [((b - b.mean(axis=0)) ** 2).mean(axis=0) for b in batches]
    return allx.mean(axis=0), np.mean(vs, axis=0)


def pop_running_average(batches):
    rm = np.zeros(batches[0].shape[1])
    rv = np.ones(batches[0].shape[1])
    for b in batches:
        rm = 0.9 * rm + 0.1 * b.mean(axis=0)
        rv = 0.9 * rv + 0.1 * b.var(axis=0, ddof=1)
    return rm.astype(b.dtype), rv.astype(b.dtype)


def pop_avg_stds(batches):
    n = sum(b.shape[0] for b in batches)
    mu = sum(b.sum(axis=0) for b in batches) / n
    s = sum(b.std(axis=0, ddof=1) for b in batches) / len(batches)
    return mu, s * s


def pop_unweighted_means(batches):
    mu = sum(b.mean(axis=0) for b in batches) / len(batches)
    allx = np.concatenate(batches)
    return mu, allx.var(axis=0, ddof=1)


def pop_biased(batches):
    allx = np.concatenate(batches)
    return allx.mean(axis=0), allx.var(axis=0)


def pop_last(batches):
    b = batches[-1]
    return b.mean(axis=0), b.var(axis=0, ddof=1)


def pop_sum_of_squares_float32(batches):
    """One pass with Σx and Σx² in the input dtype: cancels for large means in float32."""
    dt = batches[0].dtype
    n = 0
    s = np.zeros(batches[0].shape[1], dt)
    s2 = np.zeros(batches[0].shape[1], dt)
    for b in batches:
        for row in b:
            n += 1
            s += row
            s2 += row * row
    mean = s / dt.type(n)
    var = (s2 - dt.type(n) * mean * mean) / dt.type(n - 1)
    return mean, var


# ---------------------------------------------------------------------------- bn_inference


def inf_correct_loop(x, gamma, beta, running_mean, running_var, eps=1e-5):
    out = np.empty_like(x)
    for j in range(x.shape[1]):
        scale = gamma[j] / np.sqrt(running_var[j] + eps)
        out[:, j] = (x[:, j] - running_mean[j]) * scale + beta[j]
    return out


def inf_correct_folded(x, gamma, beta, running_mean, running_var, eps=1e-5):
    w = gamma / np.sqrt(running_var + eps)
    b = beta - running_mean * w
    return x * w + b


def inf_batch_stats(x, gamma, beta, running_mean, running_var, eps=1e-5):
    mu = x.mean(axis=0)
    var = ((x - mu) ** 2).mean(axis=0)
    return gamma * (x - mu) / np.sqrt(var + eps) + beta


def inf_no_eps(x, gamma, beta, running_mean, running_var, eps=1e-5):
    return (x - running_mean) / np.sqrt(running_var) * gamma + beta


def inf_var_as_std(x, gamma, beta, running_mean, running_var, eps=1e-5):
    return (x - running_mean) / (running_var + eps) * gamma + beta


def inf_eps_outside(x, gamma, beta, running_mean, running_var, eps=1e-5):
    std = np.sqrt(running_var)
    return (x - running_mean) / (std + eps) * gamma + beta


def inf_no_gamma_beta(x, gamma, beta, running_mean, running_var, eps=1e-5):
    return (x - running_mean) / np.sqrt(running_var + eps)


# ---------------------------------------------------------------------------- bn_module


class BNCorrect:
    """A correct NumPy BatchNorm1d written with explicit loops over features."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        self.eps, self.momentum = eps, momentum
        self.weight = np.ones(num_features)
        self.bias = np.zeros(num_features)
        self.running_mean = np.zeros(num_features)
        self.running_var = np.ones(num_features)
        self.num_batches_tracked = 0
        self.training = True

    def train(self):
        self.training = True
        return self

    def eval(self):
        self.training = False
        return self

    def forward(self, x):
        n, d = x.shape
        out = np.empty_like(x)
        if self.training:
            self.num_batches_tracked += 1
            f = 1.0 / self.num_batches_tracked if self.momentum is None else self.momentum
            for j in range(d):
                col = x[:, j]
                mu = col.sum() / n
                var = ((col - mu) ** 2).sum() / n
                out[:, j] = self.weight[j] * (col - mu) / np.sqrt(var + self.eps) + self.bias[j]
                self.running_mean[j] = (1 - f) * self.running_mean[j] + f * mu
                self.running_var[j] = (1 - f) * self.running_var[j] + f * var * n / (n - 1)
        else:
            for j in range(d):
                inv = 1.0 / np.sqrt(self.running_var[j] + self.eps)
                out[:, j] = self.weight[j] * (x[:, j] - self.running_mean[j]) * inv + self.bias[j]
        return out


class BNMomentumSwapped(BNCorrect):
    """Keeps ``momentum`` of the old value: the seed's / Keras's side with PyTorch's number."""

    def forward(self, x):
        if not self.training:
            return super().forward(x)
        self.num_batches_tracked += 1
        m = self.momentum if self.momentum is not None else 1.0 / self.num_batches_tracked
        mu, var = x.mean(0), x.var(0)
        self.running_mean = m * self.running_mean + (1 - m) * mu
        self.running_var = m * self.running_var + (1 - m) * x.var(0, ddof=1)
        return (self.weight * (x - mu) / np.sqrt(var + self.eps) + self.bias).astype(x.dtype)


class BNBiasedRunningVar(BNCorrect):
    def forward(self, x):
        if not self.training:
            return super().forward(x)
        self.num_batches_tracked += 1
        m = self.momentum if self.momentum is not None else 1.0 / self.num_batches_tracked
        mu, var = x.mean(0), x.var(0)
        self.running_mean = (1 - m) * self.running_mean + m * mu
        self.running_var = (1 - m) * self.running_var + m * var
        return (self.weight * (x - mu) / np.sqrt(var + self.eps) + self.bias).astype(x.dtype)


class BNZeroVarInit(BNCorrect):
    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__(num_features, eps, momentum)
        self.running_var = np.zeros(num_features)


class BNEvalBatchStats(BNCorrect):
    def forward(self, x):
        if self.training:
            return super().forward(x)
        mu, var = x.mean(0), x.var(0)
        return (self.weight * (x - mu) / np.sqrt(var + self.eps) + self.bias).astype(x.dtype)


class BNNoCounter(BNCorrect):
    def forward(self, x):
        before = self.num_batches_tracked
        out = super().forward(x)
        if self.momentum is not None:
            self.num_batches_tracked = before
        return out


class BNNoUpdate(BNCorrect):
    def forward(self, x):
        rm, rv = self.running_mean.copy(), self.running_var.copy()
        out = super().forward(x)
        self.running_mean, self.running_var = rm, rv
        return out


class BNUpdatesInEval(BNCorrect):
    def forward(self, x):
        out = super().forward(x)
        if not self.training and x.shape[0] > 1:
            m = self.momentum if self.momentum is not None else 0.5
            self.running_mean = (1 - m) * self.running_mean + m * x.mean(0)
            self.running_var = (1 - m) * self.running_var + m * x.var(0, ddof=1)
        return out


class BNEvalNoEps(BNCorrect):
    def forward(self, x):
        if self.training:
            return super().forward(x)
        return (self.weight * (x - self.running_mean) / np.sqrt(self.running_var) + self.bias).astype(x.dtype)


class BNUnbiasedNormalize(BNCorrect):
    """Normalizes with the unbiased batch variance (but updates the buffers correctly)."""

    def forward(self, x):
        if not self.training:
            return super().forward(x)
        self.num_batches_tracked += 1
        m = self.momentum if self.momentum is not None else 1.0 / self.num_batches_tracked
        mu, var_u = x.mean(0), x.var(0, ddof=1)
        self.running_mean = (1 - m) * self.running_mean + m * mu
        self.running_var = (1 - m) * self.running_var + m * var_u
        return (self.weight * (x - mu) / np.sqrt(var_u + self.eps) + self.bias).astype(x.dtype)


class BNCumulativeOffByOne(BNCorrect):
    """momentum=None with the factor taken before incrementing the counter: 1/(n+1)."""

    def forward(self, x):
        if not self.training or self.momentum is not None:
            return super().forward(x)
        f = 1.0 / (self.num_batches_tracked + 2)
        self.num_batches_tracked += 1
        mu, var = x.mean(0), x.var(0)
        self.running_mean = (1 - f) * self.running_mean + f * mu
        self.running_var = (1 - f) * self.running_var + f * x.var(0, ddof=1)
        return (self.weight * (x - mu) / np.sqrt(var + self.eps) + self.bias).astype(x.dtype)


MUTANTS = [
    ("population_stats", "law of total variance", pop_avg_vars),
    ("population_stats", "(biased) variances", pop_avg_biased_vars),
    ("population_stats", "moving average", pop_running_average),
    ("population_stats", "standard deviations", pop_avg_stds),
    ("population_stats", "same weight", pop_unweighted_means),
    ("population_stats", "divide by N − 1", pop_biased),
    ("population_stats", "last batch only", pop_last),
    ("population_stats", "catastrophically", pop_sum_of_squares_float32),
    ("batchnorm_inference", "running_mean and running_var", inf_batch_stats),
    ("batchnorm_inference", "left out ε", inf_no_eps),
    ("batchnorm_inference", "square root", inf_var_as_std),
    ("batchnorm_inference", "inside the square root", inf_eps_outside),
    ("batchnorm_inference", "scale and shift", inf_no_gamma_beta),
    ("BatchNorm1d", "OLD value", BNMomentumSwapped),
    ("BatchNorm1d", "unbiased one", BNBiasedRunningVar),
    ("BatchNorm1d", "start at ones", BNZeroVarInit),
    ("BatchNorm1d", "still normalizes with the batch", BNEvalBatchStats),
    ("BatchNorm1d", "num_batches_tracked must go up", BNNoCounter),
    ("BatchNorm1d", "never change", BNNoUpdate),
    ("BatchNorm1d", "in eval mode; only training-mode forward passes", BNUpdatesInEval),
    ("BatchNorm1d", "running_var + eps): ε is added there too", BNEvalNoEps),
    ("BatchNorm1d", "AFTER incrementing", BNCumulativeOffByOne),
    ("BatchNorm1d", "normalize with the biased batch variance", BNUnbiasedNormalize),
]

CORRECT = [
    ("population_stats", pop_correct_concat),
    ("population_stats", pop_correct_chan),
    ("batchnorm_inference", inf_correct_loop),
    ("batchnorm_inference", inf_correct_folded),
    ("BatchNorm1d", BNCorrect),
]
