"""check(): prints one line per case, returns a result, never raises on a student's error,
detects forbidden shortcuts statically and at run time, and blames a wrong forward."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

from bncourse.errors import BNCourseError
from bncourse.grading import check
from bncourse.grading.runner import forbidden_uses, restricted
from bncourse.lessons.l01_feature_scaling import solutions as l01_solutions  # a cheat, below
from bncourse.validation import rel_error
from tests import grading_helpers as gh  # registers test_bn_forward / test_bn_backward


def _ns(*sources: str, **extra: Any) -> dict[str, Any]:
    ns: dict[str, Any] = {"np": np, "__name__": "student_nb", **extra}
    for src in sources:
        exec(compile(src, "<cell>", "exec"), ns)
    return ns


def test_correct_pair_with_own_cache_layout_gets_full_points(capsys: pytest.CaptureFixture[str]) -> None:
    ns = _ns(gh.FORWARD_OK, gh.BACKWARD_OK)  # the cache is a dict, not the reference's
    fwd = check(gh.FORWARD_ID, ns["bn_fwd"], namespace=ns)
    bwd = check(gh.BACKWARD_ID, ns["bn_bwd"], namespace=ns)
    assert (fwd.passed, fwd.points, bwd.passed, bwd.points) == (True, 10, True, 10)
    out = capsys.readouterr().out
    assert out.count("✓") == 2 * len(fwd.cases) and "✗" not in out
    assert "float32" in out and "N=2" in out and "max rel err" in out


def test_mistake_is_diagnosed_and_result_fields(capsys: pytest.CaptureFixture[str]) -> None:
    ns = _ns(gh.FORWARD_OK.replace("var + eps", "var"))
    r = check(gh.FORWARD_ID, ns["bn_fwd"], namespace=ns)
    assert not r.passed and r.points < r.max_points == 10
    assert r.diagnosis is not None and "eps is missing" in r.diagnosis
    assert r.messages == [r.diagnosis]
    assert r.max_rel_error is not None and r.max_rel_error > 0 and r.worst_output == "out"
    assert "→ eps is missing" in capsys.readouterr().out


def test_wrong_forward_is_blamed_in_the_backward_feedback() -> None:
    ns = _ns(gh.FORWARD_OK.replace("(xc ** 2).mean(axis=0)", "(xc ** 2).sum(axis=0) / (x.shape[0] - 1)"),
             gh.BACKWARD_OK)
    r = check(gh.BACKWARD_ID, ns["bn_bwd"], namespace=ns, verbose=False)
    assert not r.passed
    assert r.diagnosis is not None and "Your bn_fwd does not pass its check yet" in r.diagnosis
    assert "unbiased" in r.diagnosis


def test_exception_never_propagates_and_traceback_is_trimmed(capsys: pytest.CaptureFixture[str]) -> None:
    ns = _ns("def helper(x):\n    return x[100]\n", "def bn_fwd(x, gamma, beta, eps=1e-5):\n    return helper(x), None\n")
    r = check(gh.FORWARD_ID, ns["bn_fwd"], namespace=ns)
    assert not r.passed and r.points == 0
    out = capsys.readouterr().out
    assert "IndexError" in out and 'File "<cell>", line 2, in helper' in out
    assert "bncourse/grading" not in out  # the course's frames are trimmed


@pytest.mark.parametrize("src", [
    "def bn_fwd(x, gamma, beta, eps=1e-5):\n    import sys\n    sys.exit(0)\n",
    "def bn_fwd(x, gamma, beta, eps=1e-5):\n    return None\n",
    "def bn_fwd(x, gamma, beta, eps=1e-5):\n    return 'out', 'cache'\n",
    "def bn_fwd(x, gamma, beta, eps=1e-5):\n    return np.full_like(x, np.nan), None\n",
    "def bn_fwd(x, gamma, beta, eps=1e-5):\n    raise NotImplementedError('todo')\n",
])
def test_bad_functions_fail_without_raising(src: str) -> None:
    r = check(gh.FORWARD_ID, _ns(src)["bn_fwd"], verbose=False)
    assert not r.passed and r.points == 0


def test_not_a_function_and_unknown_id() -> None:
    r = check(gh.FORWARD_ID, None, verbose=False)  # type: ignore[arg-type]
    assert not r.passed and "expects your function" in r.messages[0]
    with pytest.raises(BNCourseError, match=r"valid ids: .*bn_fwd"):
        check("no_such_exercise", lambda x: x)


def test_forbidden_static_use_of_torch_is_reported() -> None:
    torch = pytest.importorskip("torch")
    ns = _ns("def bn_fwd(x, gamma, beta, eps=1e-5):\n"
             "    t = torch.nn.functional.batch_norm(torch.from_numpy(x), None, None,"
             " torch.from_numpy(gamma), torch.from_numpy(beta), training=True)\n"
             "    return t.numpy(), None\n", torch=torch)
    r = check(gh.FORWARD_ID, ns["bn_fwd"], verbose=False)
    assert r.status == "forbidden" and r.points == 0 and "torch" in r.messages[0]


def test_forbidden_reference_through_a_helper_is_reported() -> None:
    from bncourse import reference

    ns = _ns("def helper(x, g, b):\n    return ref.batchnorm_forward(x, g, b)\n"
             "def bn_fwd(x, gamma, beta, eps=1e-5):\n    return helper(x, gamma, beta)\n", ref=reference)
    assert forbidden_uses(ns["bn_fwd"], ("bncourse.reference",)) == ["ref (from bncourse.reference)"]
    assert check(gh.FORWARD_ID, ns["bn_fwd"], verbose=False).status == "forbidden"


def test_forbidden_dynamic_import_is_caught_at_run_time() -> None:
    pytest.importorskip("torch")
    src = ("def bn_fwd(x, gamma, beta, eps=1e-5):\n    t = __import__('tor' + 'ch')\n"
           "    o = t.nn.functional.batch_norm(t.from_numpy(x), None, None, t.from_numpy(gamma),"
           " t.from_numpy(beta), training=True)\n    return o.numpy(), None\n")
    fn = _ns(src)["bn_fwd"]
    assert forbidden_uses(fn, ("torch",)) == []  # invisible to the static check
    r = check(gh.FORWARD_ID, fn, verbose=False)
    assert r.status == "forbidden" and r.points == 0
    assert "torch is not available" in (r.diagnosis or "")


def test_caught_forbidden_use_is_still_reported() -> None:
    src = ("def bn_fwd(x, gamma, beta, eps=1e-5):\n    try:\n        import torch\n    except Exception:\n"
           "        pass\n    mu = x.mean(0)\n    v = x.var(0)\n    return gamma * (x - mu) / np.sqrt(v + eps) + beta, None\n")
    r = check(gh.FORWARD_ID, _ns(src)["bn_fwd"], verbose=False)
    assert r.status == "forbidden" and r.points == 0


def test_restricted_leaves_the_original_untouched() -> None:
    ns = _ns("def bn_fwd(x, gamma, beta, eps=1e-5):\n    return ref(x), None\n", ref=np.asarray)
    np_copy = restricted(ns["bn_fwd"], ("numpy",))
    assert ns["ref"] is np.asarray and ns["bn_fwd"].__globals__ is ns
    with pytest.raises(Exception, match="not available"):
        np_copy(np.ones((2, 2)), 1, 0)


def test_rel_error_of_nan_output_is_nan_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(rel_error(np.array([np.nan, 1.0]), np.array([0.0, 1.0])))
        assert np.isnan(rel_error(np.array([np.inf]), np.array([np.inf])))


def test_registry_discovery_is_thread_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    """The class grader's threads may load the registry at the same moment: none may see it
    half-filled.  Discovery is replayed with a slow import that registers everything only at
    the last exercise module, so a thread that returned early would see an empty registry."""
    import threading
    import time

    from bncourse.grading import registry

    saved = dict(registry._REGISTRY)
    modules = [f"{m.name}.exercises" for m in __import__("pkgutil").iter_modules(
        __import__("bncourse.lessons", fromlist=["x"]).__path__) if m.ispkg]

    real_import = registry.importlib.import_module

    def slow_import(name: str) -> Any:
        if name == registry.LESSONS_PACKAGE:
            return real_import(name)
        time.sleep(0.02)
        if name.endswith("." + sorted(modules)[-1]):
            registry._REGISTRY.update(saved)
        return None

    monkeypatch.setattr(registry, "_REGISTRY", {})
    monkeypatch.setattr(registry, "_DISCOVERED", False)
    monkeypatch.setattr(registry.importlib, "import_module", slow_import)
    seen: list[int] = []
    start = threading.Barrier(4)

    def ask() -> None:
        start.wait()
        seen.append(len(registry.all_exercises()))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [len(saved)] * 4


def test_every_lessons_solutions_are_forbidden_in_every_exercise() -> None:
    """A student's function that reaches into *any* lesson's solutions (here notebook 01's, from
    a notebook-05 exercise) scores 0 as forbidden, whatever the exercise lists itself."""
    def batchnorm_inference(x: Any, gamma: Any, beta: Any, running_mean: Any, running_var: Any,
                            eps: float = 1e-5) -> Any:
        x_std = l01_solutions.standardize(x, x)[0]
        return gamma * x_std + beta

    result = check("batchnorm_inference", batchnorm_inference, verbose=False)
    assert result.status == "forbidden" and result.points == 0
    assert any("bncourse.lessons.l01_feature_scaling.solutions" in m for m in result.messages), result.messages
