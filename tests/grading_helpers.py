"""Test-only exercises and notebook builders for the grading tests.

Importing this module registers two exercises in notebook ``99_test``: ``test_bn_forward``
(the student writes ``bn_fwd(x, gamma, beta, eps=1e-5) -> (out, cache)``) and
``test_bn_backward`` (``bn_bwd(dout, cache) -> (dx, dgamma, dbeta)``, fed the cache of the
student's own ``bn_fwd``).  They do not depend on the notebook helpers' exercise modules,
so the grader's tests run whatever exercises exist.  The grader's worker imports this file
too (``extra_exercise_files``), so both processes know the same exercises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from bncourse.grading import registry
from bncourse.grading.registry import Case, ContractError, Exercise, Mistake

NOTEBOOK = "99_test"
FORWARD_ID, BACKWARD_ID = "bn_fwd", "bn_bwd"
THIS_FILE = Path(__file__).resolve()


def ref_forward(x: Any, gamma: Any, beta: Any, eps: float = 1e-5) -> tuple[Any, Any]:
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    x_hat = (x - mu) / np.sqrt(var + eps)
    return gamma * x_hat + beta, (x_hat, gamma, 1 / np.sqrt(var + eps))


def ref_backward(dout: Any, cache: Any) -> tuple[Any, Any, Any]:
    x_hat, gamma, inv_std = cache
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx = gamma * inv_std / n * (n * dout - dbeta - x_hat * dgamma)
    return dx, dgamma, dbeta


def _unbiased(x: Any, gamma: Any, beta: Any, eps: float = 1e-5) -> tuple[Any, Any]:
    var = x.var(axis=0, ddof=1)
    x_hat = (x - x.mean(axis=0)) / np.sqrt(var + eps)
    return gamma * x_hat + beta, None


def _no_eps(x: Any, gamma: Any, beta: Any, eps: float = 1e-5) -> tuple[Any, Any]:
    x_hat = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0))
    return gamma * x_hat + beta, None


def _constant_stats(dout: Any, cache: Any) -> tuple[Any, Any, Any]:
    x_hat, gamma, inv_std = cache
    return dout * gamma * inv_std, (dout * x_hat).sum(axis=0), dout.sum(axis=0)


def _cases() -> list[Case]:
    rng = np.random.default_rng(0)
    cases = []
    for name, shape, dtype, shift, scale in [
        ("float64 x(4, 3)", (4, 3), np.float64, 0.0, 1.0),
        ("float32 x(5, 3)", (5, 3), np.float32, 0.0, 1.0),
        ("N=2 x(2, 4)", (2, 4), np.float64, 0.0, 1.0),
        ("D=1 x(6, 1)", (6, 1), np.float64, 0.0, 1.0),
        ("large mean/scale x(7, 5)", (7, 5), np.float64, 500.0, 100.0),
    ]:
        d = shape[1]
        tol = (1e-4, 1e-5) if dtype == np.float32 else (1e-6, 1e-9)
        cases.append(Case(name, {
            "x": (shift + scale * rng.standard_normal(shape)).astype(dtype),
            "gamma": rng.uniform(0.5, 1.5, d).astype(dtype),
            "beta": rng.standard_normal(d).astype(dtype),
            "dout": rng.standard_normal(shape).astype(dtype),
        }, tol))
    return cases


def _call_forward(fn: Callable[..., Any], inputs: Mapping[str, Any], ns: Mapping[str, Any]) -> dict[str, Any]:
    result = fn(inputs["x"], inputs["gamma"], inputs["beta"])
    if not isinstance(result, tuple) or len(result) != 2:
        raise ContractError("bn_fwd must return a pair (out, cache).")
    out, cache = result
    if not isinstance(out, np.ndarray) and isinstance(cache, np.ndarray):
        raise ContractError("bn_fwd returned (cache, out): return (out, cache), output first.")
    return {"out": out}


def _call_backward(fn: Callable[..., Any], inputs: Mapping[str, Any], ns: Mapping[str, Any]) -> dict[str, Any]:
    _, cache = ns["bn_fwd"](inputs["x"], inputs["gamma"], inputs["beta"])
    result = fn(inputs["dout"], cache)
    if not isinstance(result, tuple) or len(result) != 3:
        raise ContractError("bn_bwd must return (dx, dgamma, dbeta).")
    dx, dgamma, dbeta = result
    return {"dx": dx, "dgamma": dgamma, "dbeta": dbeta}


def register_test_exercises() -> None:
    """Register the two test exercises (idempotent)."""
    if FORWARD_ID not in registry._REGISTRY:
        registry.register(Exercise(
            id=FORWARD_ID, notebook=NOTEBOOK, solution=ref_forward, cases=_cases,
            call=_call_forward, points=10,
            mistakes=(
                Mistake("unbiased", "You divide by N-1 (unbiased variance): batch norm uses the "
                        "biased variance, divide by N (np.var's default ddof=0).", _unbiased),
                Mistake("no_eps", "eps is missing: add it to the variance inside the square root, "
                        "np.sqrt(var + eps).", _no_eps),
            ),
        ))
    if BACKWARD_ID not in registry._REGISTRY:
        registry.register(Exercise(
            id=BACKWARD_ID, notebook=NOTEBOOK, solution=ref_backward, cases=_cases,
            call=_call_backward, namespace={"bn_fwd": ref_forward}, points=10,
            mistakes=(
                Mistake("constant_stats", "Your dx treats mu and var as constants: they depend on "
                        "every x_i, so dx needs the -mean(dout) and -x_hat*mean(dout*x_hat) terms.",
                        _constant_stats, outputs=("dx",)),
            ),
        ))


def unregister_test_exercises() -> None:
    registry.unregister(FORWARD_ID)
    registry.unregister(BACKWARD_ID)


register_test_exercises()

# --- building submissions ------------------------------------------------------------------

IMPORTS = "import numpy as np\nfrom bncourse.grading import check\n"

FORWARD_OK = '''def bn_fwd(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=0)
    xc = x - mu
    var = (xc ** 2).mean(axis=0)
    inv = 1.0 / np.sqrt(var + eps)
    return gamma * xc * inv + beta, {"xc": xc, "inv": inv, "gamma": gamma}
'''

BACKWARD_OK = '''def bn_bwd(dout, cache):
    xc, inv, gamma = cache["xc"], cache["inv"], cache["gamma"]
    n = dout.shape[0]
    x_hat = xc * inv
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx_hat = dout * gamma
    dx = inv / n * (n * dx_hat - dx_hat.sum(axis=0) - x_hat * (dx_hat * x_hat).sum(axis=0))
    return dx, dgamma, dbeta
'''

EXPERIMENT = "raise RuntimeError('experiments must never run in the grader')\n"


def build_notebook(
    path: Path,
    exercise_cells: list[str],
    imports: str = IMPORTS,
    experiments: bool = True,
) -> Path:
    """Write a submission notebook: an ``imports`` cell, ``exercise`` cells (each followed
    by a check cell), and an untagged experiment cell that must never run in the grader."""
    import nbformat  # slow to import: only where notebooks are built

    nb = nbformat.v4.new_notebook()
    nb.metadata["bncourse"] = {"notebook": NOTEBOOK}
    cell = nbformat.v4.new_code_cell(imports)
    cell.metadata["tags"] = ["imports"]
    cells = [nbformat.v4.new_markdown_cell("# 99 — Test notebook"), cell]
    for src in exercise_cells:
        c = nbformat.v4.new_code_cell(src)
        c.metadata["tags"] = ["exercise"]
        cells.append(c)
        if experiments:
            cells.append(nbformat.v4.new_code_cell(EXPERIMENT))
    nb.cells = cells
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path
