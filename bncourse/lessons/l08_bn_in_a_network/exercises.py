"""Exercises of notebook 08 (BN inside a network): ``softmax_cross_entropy``,
``linear_backward``, ``network_backward``, ``batchnorm_layer_forward``.

* ``softmax_cross_entropy(logits, y) -> (loss, dlogits)``: the mean loss and its gradient.
* ``linear_backward(dout, x, W) -> (dx, dW, db)``: the backward of ``x @ W + b``.
* ``network_backward(dlogits, tape, params, linear_backward, bn_backward) -> grads``: the
  whole MLP's backward composed from the layer backwards it is given.  The check hands it
  the student's own ``linear_backward`` (the namespace; the stand-in of :mod:`bncourse.oracle`
  when there is none) and, for the BN layers, a
  batch-coupled stand-in layer with a backward of its own (:func:`_coupled_backward`): what
  is graded is the composition (order, inputs, tanh's derivative), not BN's formula, which
  notebook 03 grades.
* ``batchnorm_layer_forward(x, gamma, beta, running_mean, running_var, training, momentum,
  eps) -> (out, running_mean, running_var)``: one BN layer in either mode.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from bncourse.grading.cases import describe, tolerance
from bncourse.grading.registry import (
    NUMPY_FORBIDDEN,
    Case,
    ContractError,
    Exercise,
    LessonPart,
    Mistake,
    Ref,
    register,
)

mistakes = LessonPart(__name__, "mistakes")
solutions = LessonPart(__name__, "solutions")

NOTEBOOK = "08_bn_in_a_network"
FORBIDDEN = (*NUMPY_FORBIDDEN, "scipy")

# ---------------------------------------------------------------------------- softmax_cross_entropy


def _ce_cases() -> list[Case]:
    rng = np.random.default_rng(800)
    specs = [("float64 logits(6, 4)", 6, 4, np.float64, 2.0), ("float32 logits(5, 10)", 5, 10, np.float32, 2.0),
             ("float64 N=2, 3 classes", 2, 3, np.float64, 1.0), ("float64 logits(9, 7)", 9, 7, np.float64, 3.0),
             ("float64 large logits ~ 1000 (8, 5)", 8, 5, np.float64, 1000.0)]
    cases = []
    for name, N, C, dt, scale in specs:
        logits = (scale * rng.standard_normal((N, C))).astype(dt)
        y = rng.integers(0, C, size=N)
        cases.append(Case(name, {"logits": logits, "y": y}, tolerance(dt)))
    return cases


def _call_ce(fn: Callable[..., Any], inputs: Mapping[str, Any], ns: Mapping[str, Any]) -> dict[str, Any]:
    result = fn(inputs["logits"], inputs["y"])
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise ContractError(f"softmax_cross_entropy must return (loss, dlogits), got {describe(result)}")
    return {"loss": np.asarray(result[0], dtype=np.float64).reshape(()), "dlogits": result[1]}


def _ce_diagnose(case: Case, got: dict[str, np.ndarray], exp: dict[str, np.ndarray]) -> str | None:
    values = [np.asarray(v, dtype=np.float64) for v in got.values()]
    if "large logits" in case.name and any(not np.all(np.isfinite(v)) for v in values):
        return ("With logits around 1000, np.exp overflows to inf (or a probability underflows to 0 and "
                "its log is −inf): subtract each row's maximum from the logits first (softmax does not "
                "change when a constant is subtracted) and take log p = z − log Σ exp(z), not log(softmax).")
    return None


register(
    Exercise(
        id="softmax_cross_entropy",
        notebook=NOTEBOOK,
        solution=solutions.softmax_cross_entropy,
        cases=_ce_cases,
        call=_call_ce,
        diagnose=_ce_diagnose,
        forbidden=FORBIDDEN,
        mistakes=(
            Mistake("softmax without the one-hot",
                    "Your dlogits is softmax(logits)/N: the gradient of −log p_y is p − onehot(y); "
                    "subtract 1 at each example's true class.", mistakes.ce_no_onehot, outputs=("dlogits",)),
            Mistake("not divided by N",
                    "Your dlogits is N times too large: the loss is a mean over the N examples, so its "
                    "gradient is (p − onehot(y)) / N.", mistakes.ce_not_divided, outputs=("dlogits",)),
            Mistake("divided by N twice",
                    "Your dlogits is N times too small: you divided by the batch size twice; the "
                    "gradient of the mean loss is (p − onehot(y)) / N, once.", mistakes.ce_divided_twice,
                    outputs=("dlogits",)),
            Mistake("summed loss",
                    "Your loss is the sum over the batch; return the mean, −(1/N) Σ log p_{n,y_n}.",
                    mistakes.ce_summed_loss, outputs=("loss",)),
        ),
        hints=(
            "Work with log-probabilities: log p = z − logsumexp(z) per row, computed after subtracting "
            "the row's maximum so that np.exp cannot overflow.",
            "For one example, ∂(−log p_y)/∂z_k = p_k − [k = y]; the mean over N examples divides each "
            "row of that by N.",
            "loss = −mean(log_p[np.arange(N), y]);  dlogits = (softmax(z) − onehot(y)) / N.",
        ),
    )
)

# ---------------------------------------------------------------------------- linear_backward


def _lin_cases() -> list[Case]:
    rng = np.random.default_rng(801)
    specs = [("float64 x(6, 4) W(4, 3)", 6, 4, 3, np.float64), ("float32 x(9, 5) W(5, 7)", 9, 5, 7, np.float32),
             ("float64 N=2 x(2, 3) W(3, 2)", 2, 3, 2, np.float64),
             ("float64 square x(5, 4) W(4, 4)", 5, 4, 4, np.float64),
             ("float64 one output x(7, 3) W(3, 1)", 7, 3, 1, np.float64)]
    cases = []
    for name, N, D, M, dt in specs:
        inputs = {"dout": rng.standard_normal((N, M)).astype(dt), "x": rng.standard_normal((N, D)).astype(dt),
                  "W": rng.standard_normal((D, M)).astype(dt)}
        cases.append(Case(name, inputs, tolerance(dt)))
    return cases


def _unpack_three(result: Any, who: str, names: tuple[str, str, str]) -> dict[str, Any]:
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        raise ContractError(f"{who} must return three arrays ({', '.join(names)}), got {describe(result)}")
    return dict(zip(names, result, strict=True))


def _call_lin(fn: Callable[..., Any], inputs: Mapping[str, Any], ns: Mapping[str, Any]) -> dict[str, Any]:
    return _unpack_three(fn(inputs["dout"], inputs["x"], inputs["W"]), "linear_backward", ("dx", "dW", "db"))


_BIAS_SUM = ("The bias is broadcast to every row in the forward pass (x @ W + b adds the same b to "
             "each example), so its gradient sums the rows of dout: db = dout.sum(axis=0), shape (M,).")

register(
    Exercise(
        id="linear_backward",
        notebook=NOTEBOOK,
        solution=solutions.linear_backward,
        cases=_lin_cases,
        call=_call_lin,
        forbidden=FORBIDDEN,
        mistakes=(
            Mistake("bias gradient not summed", _BIAS_SUM, mistakes.lin_bias_not_summed, outputs=("db",)),
            Mistake("bias gradient of the first example", _BIAS_SUM, mistakes.lin_bias_first_row, outputs=("db",)),
            Mistake("bias gradient averaged",
                    "Your db is the mean of dout's rows: the forward adds b to every row, so the "
                    "gradient is their sum (any 1/N is already inside dout, from the loss).",
                    mistakes.lin_bias_averaged, outputs=("db",)),
            Mistake("weight gradient averaged",
                    "Your dW is divided by the batch size: dW = x.T @ dout, no 1/N (the mean of the "
                    "loss already put it inside dout; dividing again shrinks the step N-fold).",
                    mistakes.lin_weight_averaged, outputs=("dW",)),
            Mistake("weight gradient transposed",
                    "Your dW is transposed: W has shape (D, M) like x.T @ dout, not dout.T @ x.",
                    mistakes.lin_weight_transposed, outputs=("dW",)),
            Mistake("W not transposed in dx",
                    "dx multiplies dout by W transposed: dx = dout @ W.T (shapes (N, M) @ (M, D)).",
                    mistakes.lin_dx_not_transposed, outputs=("dx",)),
        ),
        hints=(
            "Write out = x @ W + b element by element, out[n, m] = Σ_d x[n, d] W[d, m] + b[m], and ask "
            "which outputs each input touches.",
            "Broadcast in the forward is a sum in the backward: b[m] is added to every row n, so ∂L/∂b[m] "
            "collects dout[n, m] from every n. Match the shapes to place the transposes.",
            "dx = dout @ W.T;  dW = x.T @ dout;  db = dout.sum(axis=0).",
        ),
    )
)

# ---------------------------------------------------------------------------- network_backward

GRAD_KEYS = ("W3", "b3", "h2", "z2", "a2", "gamma2", "beta2", "W2", "b2",
             "h1", "z1", "a1", "gamma1", "beta1", "W1", "b1")
"""The gradients ``network_backward`` returns, in the order backprop produces them."""


def _coupled_backward(dout: np.ndarray, cache: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """The backward of the check's stand-in BN layer ``out = gamma·(x − mean_batch(x)) + beta``.

    Batch-coupled like BN (every example's gradient depends on the whole batch) but simpler:
    the check grades how ``network_backward`` composes the layers, not BN's own formula.
    """
    centered = dout - np.mean(dout, axis=0, keepdims=True)
    x = cache["x"]
    return cache["gamma"] * centered, np.sum(dout * (x - np.mean(x, axis=0)), axis=0), np.sum(dout, axis=0)


def _net_cases() -> list[Case]:
    rng = np.random.default_rng(802)
    specs = [("float64 N=6, 5→4→4→3", 6, 5, 4, 3, np.float64), ("float32 N=9, 7→5→5→4", 9, 7, 5, 4, np.float32),
             ("float64 N=2, 3→4→4→2", 2, 3, 4, 2, np.float64), ("float64 N=5, 4→6→6→10", 5, 4, 6, 10, np.float64)]
    cases = []
    for name, N, D, H, C, dt in specs:
        params = {"W1": rng.standard_normal((D, H)), "b1": rng.standard_normal(H),
                  "gamma1": rng.uniform(0.5, 2.0, H), "beta1": rng.standard_normal(H),
                  "W2": rng.standard_normal((H, H)), "b2": rng.standard_normal(H),
                  "gamma2": rng.uniform(0.5, 2.0, H), "beta2": rng.standard_normal(H),
                  "W3": rng.standard_normal((H, C)), "b3": rng.standard_normal(C)}
        params = {k: v.astype(dt) for k, v in params.items()}
        tape: dict[str, Any] = {"x": rng.standard_normal((N, D)).astype(dt)}
        for k in (1, 2):
            a = rng.standard_normal((N, H)).astype(dt)
            z = (params[f"gamma{k}"] * (a - a.mean(axis=0)) + params[f"beta{k}"]).astype(dt)
            tape[f"bn{k}"] = {"x": a, "gamma": params[f"gamma{k}"]}
            tape[f"z{k}"] = z
            tape[f"h{k}"] = np.tanh(z)
        dlogits = (rng.standard_normal((N, C)) / N).astype(dt)
        cases.append(Case(name, {"dlogits": dlogits, "tape": tape, "params": params}, tolerance(dt)))
    return cases


def _call_net(fn: Callable[..., Any], inputs: Mapping[str, Any], ns: Mapping[str, Any]) -> dict[str, Any]:
    grads = fn(inputs["dlogits"], inputs["tape"], inputs["params"], ns["linear_backward"], _coupled_backward)
    if not isinstance(grads, Mapping):
        raise ContractError(f"network_backward must return a dict of gradients, got {describe(grads)}")
    missing = [k for k in GRAD_KEYS if k not in grads]
    if missing:
        raise ContractError(f"network_backward's dict lacks the gradients {missing}; it needs {list(GRAD_KEYS)}")
    return {k: grads[k] for k in GRAD_KEYS}


register(
    Exercise(
        id="network_backward",
        notebook=NOTEBOOK,
        solution=solutions.network_backward,
        cases=_net_cases,
        call=_call_net,
        # the student's own linear_backward when the notebook defines one, else the stand-in
        # (present in both editions, so a check gives the same verdict in each)
        namespace={"linear_backward": Ref("bncourse.oracle.network:linear_backward")},
        forbidden=FORBIDDEN,
        mistakes=(
            Mistake("tanh derivative left out",
                    "Your gradient skips the tanh: between h and z multiply by tanh'(z) = 1 − h² "
                    "(h = tanh(z) is on the tape).", mistakes.net_no_tanh, outputs=("z2", "z1")),
            Mistake("tanh derivative 1 − h",
                    "tanh'(z) is 1 − h², not 1 − h (h = tanh(z)).", mistakes.net_tanh_wrong,
                    outputs=("z2", "z1")),
            Mistake("divided by N again",
                    "Every gradient is N times too small: dlogits already carries the 1/N of the mean "
                    "loss; do not divide by the batch size again.", mistakes.net_divided_again,
                    outputs=("W3",)),
            Mistake("BN layer skipped",
                    "You passed the gradient straight through the BN layers: call bn_backward(dz, "
                    "tape['bn1' or 'bn2']) — the batch mean and variance depend on every example, and "
                    "γ, β get gradients too.", mistakes.net_skips_bn, outputs=("a2",)),
        ),
        hints=(
            "Walk the forward pass backwards, one layer at a time, starting from dlogits; each layer "
            "backward needs the input that layer saw in the forward pass (on the tape) and its weights.",
            "Linear: linear_backward(d_out, layer_input, W); tanh: h = tanh(z) so dz = dh · (1 − h²); "
            "BN: bn_backward(dz, tape['bnK']) returns (da, dgamma, dbeta).",
            "h2, W3, b3 ← linear_backward(dlogits, h2, W3); z2 ← h2·(1 − h2²); a2, gamma2, beta2 ← "
            "bn_backward(z2, bn2); h1, W2, b2 ← linear_backward(a2, h1, W2); then the same for layer 1 "
            "with x as the first linear layer's input.",
        ),
    )
)

# ---------------------------------------------------------------------------- batchnorm_layer_forward


def _layer_cases() -> list[Case]:
    rng = np.random.default_rng(803)
    specs = [("float64 train x(8, 4)", 8, 4, np.float64, True, 0.1), ("float64 eval x(8, 4)", 8, 4, np.float64, False, 0.1),
             ("float64 train N=2 x(2, 3)", 2, 3, np.float64, True, 0.1),
             ("float32 train x(6, 5)", 6, 5, np.float32, True, 0.1), ("float32 eval x(6, 5)", 6, 5, np.float32, False, 0.1),
             ("float64 train momentum=0.3 x(5, 2)", 5, 2, np.float64, True, 0.3),
             ("float64 eval one example x(1, 3)", 1, 3, np.float64, False, 0.1)]
    cases = []
    for name, N, D, dt, training, momentum in specs:
        inputs = {"x": (2.0 + 3.0 * rng.standard_normal((N, D))).astype(dt),
                  "gamma": rng.uniform(0.5, 2.0, D).astype(dt), "beta": rng.standard_normal(D).astype(dt),
                  "running_mean": rng.standard_normal(D).astype(dt),
                  "running_var": rng.uniform(0.5, 3.0, D).astype(dt),
                  "training": training, "momentum": momentum}
        cases.append(Case(name, inputs, tolerance(dt)))
    return cases


def _call_layer(fn: Callable[..., Any], inputs: Mapping[str, Any], ns: Mapping[str, Any]) -> dict[str, Any]:
    result = fn(inputs["x"], inputs["gamma"], inputs["beta"], inputs["running_mean"], inputs["running_var"],
                inputs["training"], inputs["momentum"], 1e-5)
    return _unpack_three(result, "batchnorm_layer_forward", ("out", "running_mean", "running_var"))


register(
    Exercise(
        id="batchnorm_layer_forward",
        notebook=NOTEBOOK,
        solution=solutions.batchnorm_layer_forward,
        cases=_layer_cases,
        call=_call_layer,
        forbidden=FORBIDDEN,
        mistakes=(
            Mistake("running statistics updated in eval mode",
                    "Your layer updates running_mean/running_var in evaluation mode: only training-mode "
                    "passes update them; in eval mode return them unchanged.",
                    mistakes.layer_updates_in_eval),
            Mistake("biased running variance",
                    "Your running_var is updated with the biased batch variance; PyTorch stores the "
                    "unbiased one (× m/(m−1)), while the normalization uses the biased one.",
                    mistakes.layer_biased_running),
            Mistake("momentum on the wrong side",
                    "momentum weights the NEW batch: running = (1 − momentum)·running + momentum·batch.",
                    mistakes.layer_momentum_side),
            Mistake("batch statistics in eval mode",
                    "In evaluation mode your layer normalizes with the batch's own statistics (as if it "
                    "were still training): use running_mean and running_var.",
                    mistakes.layer_batch_stats_in_eval),
        ),
        hints=(
            "Two branches on `training`: which statistics normalize x, and which running statistics "
            "come back (new arrays, never the inputs changed in place).",
            "Training normalizes with the batch's biased variance but feeds the running average the "
            "unbiased one; evaluation uses the running statistics and leaves them alone.",
            "train: μ, σ² = x.mean(0), x.var(0); running ← (1 − momentum)·running + momentum·(μ, σ²·m/(m−1)). "
            "eval: μ, σ² = running. out = γ·(x − μ)/√(σ² + ε) + β.",
        ),
    )
)
