"""``benchmarks/run.py --quick``: the report files exist with the expected columns and rows.

No speed is asserted (the machine is shared); these tests check that the benchmark runs,
measures every kernel against torch, and that its ratios are computed from its own rows.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import kernels, report

pytestmark = pytest.mark.slow  # runs the benchmarks: not in `make test-fast`

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick", "--out", str(out)],
                   check=True, cwd=REPO, capture_output=True, text=True, timeout=300)
    return out


def test_quick_run_writes_json_with_every_kernel_and_impl(quick_run: Path) -> None:
    results = json.loads((quick_run / "results.json").read_text())
    assert results["meta"]["quick"] is True
    assert results["meta"]["bandwidth"]["gb_per_s_median"] > 0
    assert results["course"] == {}, "quick mode times no notebooks"
    rows = results["kernels"]
    shapes = {r["shape"] for r in rows}
    assert shapes == {str(s) for s in kernels.QUICK_SHAPES}
    assert {r["dtype"] for r in rows} == {"float32", "float64"}
    kernels_seen = {r["kernel"] for r in rows}
    assert set(kernels.PASSES) <= kernels_seen and "Linear+BN inference" in kernels_seen
    fb = {(r["impl"], r["threads"]) for r in rows if r["kernel"] == "BN forward+backward"}
    assert fb == {("numpy", None), ("numpy-fast", None), ("numpy-graph", None),
                  ("torch", 1), ("torch", 2)}
    assert {r["impl"] for r in rows if r["kernel"] in ("BN forward", "BN backward")} == {
        "numpy", "numpy-fast", "numpy-graph", "torch"}
    for r in rows:
        assert r["median_ms"] > 0 and r["min_ms"] <= r["median_ms"], r
        if r["passes"] is not None:
            assert r["bound_ms"] > 0 and r["vs_bound"] == pytest.approx(r["median_ms"] / r["bound_ms"])


def test_ratios_are_against_torch_one_thread_of_the_same_case(quick_run: Path) -> None:
    rows = json.loads((quick_run / "results.json").read_text())["kernels"]
    torch1 = {(r["kernel"], r["shape"], r["dtype"]): r["median_ms"] for r in rows
              if r["impl"] == "torch" and r["threads"] == 1}
    checked = 0
    for r in rows:
        ref = torch1.get((r["kernel"], r["shape"], r["dtype"]))
        if ref is None:
            assert r["vs_torch"] is None, r
        else:
            assert r["vs_torch"] == pytest.approx(r["median_ms"] / ref)
            checked += 1
    assert checked > len(rows) // 2


def test_report_markdown_has_the_tables(quick_run: Path) -> None:
    text = (quick_run / "report.md").read_text()
    assert "| " + " | ".join(report.SUMMARY_COLUMNS) + " |" in text
    assert "| " + " | ".join(report.KERNEL_COLUMNS) + " |" in text
    for kernel in kernels.PASSES:
        assert f"### {kernel}" in text
    assert "GB/s" in text and "Read these as ratios" in text
    summary = text.split("## Summary")[1].split("## All kernels")[0]
    assert summary.count("\n| (") == 2 * len(kernels.QUICK_SHAPES), "one summary row per shape and dtype"


def test_target_lines_judge_the_ratio() -> None:
    def row(impl: str, ms: float, ratio: float) -> dict[str, object]:
        return {"kernel": "BN forward+backward", "shape": "(4096, 1024)", "dtype": "float32",
                "impl": impl, "threads": None, "median_ms": ms, "vs_torch": ratio}

    def torch_row(kernel: str, ms: float) -> dict[str, object]:
        return dict(row("torch", ms, 1.0), kernel=kernel, threads=1)

    fast = report.target_lines([row("numpy-fast", 20.0, 1.5), row("numpy", 50.0, 3.9)])
    slow = report.target_lines([row("numpy-fast", 40.0, 2.5), row("numpy", 50.0, 3.9),
                                torch_row("BN forward", 6.0), torch_row("BN backward", 10.0)])
    assert len(fast) == 1 and "1.50× torch" in fast[0] and "within 2×" in fast[0] and "NOT" not in fast[0]
    assert "reference (formulas as written) 50.0 ms = 3.90×" in fast[0], fast[0]
    assert "NOT within 2×" in slow[0] and "3.90×" in slow[0]
    assert "= 16.0 ms, no autograd): 2.50×" in slow[0], slow[0]


def test_grading_times_split_start_up_from_per_notebook_time() -> None:
    from benchmarks import course
    from bncourse.grading.jail import bwrap_path

    nb = REPO / "notebooks" / "03_forward_backward.ipynb"
    rows = course.grading_times([nb], class_size=2, jobs_list=(1,), progress=lambda _: None)
    labels = [r.what for r in rows]
    how = "jailed" if bwrap_path() is not None else "NOT ISOLATED"  # as `bncourse grade` would run
    assert labels == [f"grade 03_forward_backward.ipynb ({how})", f"grade 03_forward_backward.ipynb ({how}) --cold",
                      f"grade class of 2 students × 1 notebooks (2, {how}), --jobs 1"]
    warm, cold, klass = rows
    assert warm.detail.startswith("1/1 at full marks; start-up ") and "per notebook" in warm.detail
    assert cold.detail.startswith("1/1 at full marks; ") and "start-up" not in cold.detail
    assert klass.detail.startswith("2/2 at full marks; start-up ")
