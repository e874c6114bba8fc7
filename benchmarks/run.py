"""``make bench``: time the kernels and the course, write ``report.md`` and ``results.json``.

Usage::

    python benchmarks/run.py --out build/bench            # everything (< 5 min on 2 cores)
    python benchmarks/run.py --out /tmp/b --quick         # tiny shapes, one call each, no course
    python benchmarks/run.py --out /tmp/b --no-course     # kernels only

All numbers come from this one run on this machine; read them as ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch

from benchmarks import course, kernels, report
from benchmarks.timing import QUICK, Budget, copy_bandwidth


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("build/bench"), help="output folder")
    p.add_argument("--quick", action="store_true",
                   help="tiny shapes, one timed call per case, 8 MB bandwidth copy, no course timings")
    p.add_argument("--no-course", action="store_true", help="skip import/notebook/grading timings")
    p.add_argument("--no-notebooks", action="store_true", help="skip executing the notebooks")
    p.add_argument("--class-size", type=int, default=4,
                   help="synthetic submissions in the graded class (default 4: keeps make bench < 5 min)")
    p.add_argument("--notebook-jobs", type=int, default=2,
                   help="notebooks executed at once (each notebook runs torch with 1 thread; default 2)")
    return p.parse_args(argv)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    def progress(msg: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f} s] {msg}", flush=True)

    bw = copy_bandwidth(8.0 if args.quick else 256.0, repeats=3 if args.quick else 7)
    progress(f"copy bandwidth {bw.gb_per_s_median:.1f} GB/s (median), {bw.gb_per_s_best:.1f} best")
    shapes = kernels.QUICK_SHAPES if args.quick else kernels.SHAPES
    budget = QUICK if args.quick else Budget()
    rows = kernels.run_kernels(shapes, budget, bw.gb_per_s_best, progress=progress)

    course_rows: dict[str, Any] = {}
    if not (args.quick or args.no_course):
        course_rows["import"] = [course.import_time(stmt).as_dict() for stmt in course.IMPORTS]
        progress("imports: " + ", ".join(f"{t['what']} {t['wall_s'] * 1e3:.0f} ms"
                                          for t in course_rows["import"]))
        notebooks = course.notebook_paths()
        if not args.no_notebooks:
            per_nb, total = course.execute_notebooks(notebooks, jobs=args.notebook_jobs, progress=progress)
            course_rows["notebooks"] = [t.as_dict() for t in [*per_nb, total]]
        course_rows["grading"] = [t.as_dict() for t in
                                  course.grading_times(notebooks, args.class_size, progress=progress)]

    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": f"{platform.machine()}, {os.cpu_count()} logical CPUs, {cpu_model()}",
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "environment": course.environment(),
        "quick": args.quick,
        "bandwidth": {"megabytes": bw.megabytes, "gb_per_s_median": bw.gb_per_s_median,
                      "gb_per_s_best": bw.gb_per_s_best},
        "timing": {"min_repeats": budget.min_repeats, "min_seconds": budget.min_seconds,
                   "max_repeats": budget.max_repeats, "warmup": budget.warmup},
        "command": "make bench  (python benchmarks/run.py " + " ".join(sys.argv[1:]) + ")",
    }
    meta["seconds"] = round(time.perf_counter() - start, 1)
    results = {"meta": meta, "kernels": [r.as_dict() for r in rows], "course": course_rows}
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "report.md").write_text(report.render(results))
    progress(f"wrote {out / 'report.md'} and {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
