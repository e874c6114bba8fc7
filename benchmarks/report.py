"""Render ``results.json`` as ``report.md``: a summary table, the full kernel tables, the course."""

from __future__ import annotations

from typing import Any

KERNEL_COLUMNS = ("shape", "dtype", "impl", "threads", "median ms", "min ms", "× torch 1T",
                  "bound ms", "× bound")
SUMMARY_COLUMNS = ("shape", "dtype", "torch 1T ms", "torch 2T ms", "fast ms", "fast × torch",
                   "reference × torch", "graph × torch", "fast × bound")
TARGETS = (("(4096, 1024)", "float32"), ("(32, 64, 32, 32)", "float32"))
"""Where the fast path's forward+backward should be within 2× of torch's native kernel."""
FAST, REFERENCE, GRAPH = "numpy-fast", "numpy", "numpy-graph"
"""impl of bncourse.reference._fast, of bncourse.reference (formulas), of its graph backward."""


def _fmt(v: Any) -> str:
    """Floats to 3 significant digits (1 decimal from 100 up), None as a dash."""
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.1f}" if abs(v) >= 100 else f"{v:.3g}"
    return str(v)


def _table(columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return lines


def _find(kernels: list[dict[str, Any]], kernel: str, shape: str, dtype: str, impl: str,
          threads: int | None = None) -> dict[str, Any] | None:
    for r in kernels:
        if (r["kernel"], r["shape"], r["dtype"], r["impl"]) == (kernel, shape, dtype, impl) and (
                threads is None or r["threads"] == threads):
            return r
    return None


def summary_rows(kernels: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """BN forward+backward per shape and dtype: torch 1T/2T, the fast path, the NumPy variants as ratios."""
    kernel = "BN forward+backward"
    keys = list(dict.fromkeys((r["shape"], r["dtype"]) for r in kernels if r["kernel"] == kernel))
    rows = []
    for shape, dtype in keys:
        t1 = _find(kernels, kernel, shape, dtype, "torch", 1)
        t2 = _find(kernels, kernel, shape, dtype, "torch", 2)
        fast = _find(kernels, kernel, shape, dtype, FAST)
        ref = _find(kernels, kernel, shape, dtype, REFERENCE)
        graph = _find(kernels, kernel, shape, dtype, GRAPH)
        rows.append((shape, dtype, t1 and t1["median_ms"], t2 and t2["median_ms"],
                     fast and fast["median_ms"], fast and fast["vs_torch"],
                     ref and ref["vs_torch"], graph and graph["vs_torch"],
                     fast and fast["vs_bound"]))
    return rows


def target_lines(kernels: list[dict[str, Any]]) -> list[str]:
    """One line per target shape: the fast path's ratio to torch, and the reference's."""
    lines = []
    for shape, dtype in TARGETS:
        fast = _find(kernels, "BN forward+backward", shape, dtype, FAST)
        ref = _find(kernels, "BN forward+backward", shape, dtype, REFERENCE)
        if fast is None or ref is None or fast["vs_torch"] is None:
            continue
        verdict = "within 2×" if fast["vs_torch"] <= 2.0 else "NOT within 2×"
        line = (f"- {shape} {dtype}: fast path forward+backward {fast['median_ms']:.1f} ms = "
                f"**{fast['vs_torch']:.2f}× torch** (F.batch_norm + autograd, 1 thread) — {verdict}; "
                f"the reference (formulas as written) {ref['median_ms']:.1f} ms = "
                f"{ref['vs_torch']:.2f}×.")
        fwd = _find(kernels, "BN forward", shape, dtype, "torch", 1)
        bwd = _find(kernels, "BN backward", shape, dtype, "torch", 1)
        if fwd is not None and bwd is not None:
            native = fwd["median_ms"] + bwd["median_ms"]
            line += (f"  Fast path against the two aten kernels alone (native forward + native "
                     f"backward = {native:.1f} ms, no autograd): {fast['median_ms'] / native:.2f}×.")
        lines.append(line)
    return lines


def render(results: dict[str, Any]) -> str:
    meta, kernels, course = results["meta"], results["kernels"], results["course"]
    bw = meta["bandwidth"]
    out = [
        "# bncourse benchmarks",
        "",
        f"Measured in one run on {meta['date']}: {meta['machine']}; load average at the end "
        f"{meta['load_average']}; Python {meta['python']}, NumPy {meta['numpy']}, torch "
        f"{meta['torch']}; environment {meta['environment']}.  Run took {meta['seconds']} s"
        + (" (quick mode: tiny shapes, one call each)." if meta["quick"] else "."),
        "",
        "**Read these as ratios.** Every number comes from this run on this machine, which "
        "is shared (other work may be running), so absolute times move from run to run; "
        "ratios measured minutes apart move much less.",
        "",
        f"Command: `{meta['command']}`.",
        "",
        "## Method",
        "",
        f"- Time per call with `time.perf_counter`.  The cases of one shape and dtype (NumPy "
        f"and torch alike) run round-robin, one timed call of each per round, so the numbers "
        f"that are divided by each other share the same background load: "
        f"{meta['timing']['warmup']} untimed round, then at least {meta['timing']['min_repeats']} "
        f"rounds and {meta['timing']['min_seconds']} s per case (at most "
        f"{meta['timing']['max_repeats']} rounds); the median is reported, the minimum kept.",
        "- torch runs in the same process with `torch.set_num_threads(1)` and `(2)`; NumPy's "
        "elementwise kernels are single-threaded (BLAS, used only by the folded-BN case, "
        "follows OMP_NUM_THREADS).  The 2-thread numbers mean something only on an idle "
        "machine: while another process holds one of the two cores, every OpenMP barrier "
        "waits for a time slice, and a sub-millisecond kernel can take tens of milliseconds.",
        f"- Copy bandwidth, `np.copyto` of {bw['megabytes']:.0f} MB: **{bw['gb_per_s_best']:.1f} GB/s** "
        f"best of the run (median {bw['gb_per_s_median']:.1f}), counting bytes read + bytes "
        "written; the best is used for the lower bounds.",
        "- Bytes model, in whole-array passes (each read or write of an N·D array counts one): "
        "forward 2 (read x, write y); backward 3 (read dy and x̂ or x, write dx); "
        "forward+backward 5; inference 2.  Lower bound = passes × array bytes / copy "
        "bandwidth; `× bound` is median / bound.  A two-pass-statistics kernel reads x once "
        "more, so ≈1.5× the bound is already tight.",
        "- `numpy` is `bncourse.reference`, the answer key: the formulas as written, one "
        "NumPy expression per line of math (spatial batch norm runs the 1-D functions on the "
        "`(N·H·W, C)` rows, a transpose there and back); `numpy-graph` is its node-by-node "
        "teaching backward (for images on the `(N·H·W, C)` rows; forward+backward pairs it "
        "with the reference forward); `numpy-fast` is the fast path, "
        "`bncourse.reference._fast`: the same signatures and results from cache-blocked "
        "kernels (images on the `(N, C, H·W)` view, no transpose); `torch` is "
        "`aten.native_batch_norm` / `native_batch_norm_backward` for single passes and "
        "`F.batch_norm`/`F.layer_norm`/`F.group_norm` + autograd for forward+backward.  "
        "`× torch 1T` divides by torch's median with 1 thread for the same kernel, shape and dtype.",
        "",
        "## Target: the fast path's forward+backward within 2× of torch's native kernel",
        "",
        *(target_lines(kernels) or ["- (target shapes not measured in this mode)"]),
        "",
        "## Summary: batch norm forward+backward",
        "",
        *_table(SUMMARY_COLUMNS, summary_rows(kernels)),
        "",
        "## All kernels",
        "",
    ]
    for kernel in dict.fromkeys(r["kernel"] for r in kernels):
        sub = [r for r in kernels if r["kernel"] == kernel]
        passes = sub[0]["passes"]
        out += [f"### {kernel}" + (f" ({passes} passes)" if passes else " (compute-bound: no bound)"), ""]
        out += _table(KERNEL_COLUMNS, [
            (r["shape"], r["dtype"], r["impl"], r["threads"] or "–", r["median_ms"], r["min_ms"],
             r["vs_torch"], r["bound_ms"], r["vs_bound"]) for r in sub])
        out.append("")
    if course:
        out += ["## Course", "",
                "Wall time is what a student or TA waits; CPU time (user + system, including "
                "child processes: notebook kernels, grading sandboxes) is recorded alongside "
                "because the machine is shared: when CPU ≪ wall × cores, something else was "
                "running.", ""]
        for section, title in (("import", "Import"), ("notebooks", "Notebook execution (nbclient)"),
                               ("grading", "Grading")):
            if section in course:
                out += [f"### {title}", ""]
                out += _table(("what", "wall s", "CPU s", "detail"),
                              [(t["what"], t["wall_s"], t["cpu_s"], t["detail"]) for t in course[section]])
                out.append("")
    return "\n".join(out) + "\n"
