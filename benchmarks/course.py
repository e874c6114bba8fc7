"""Course machinery: ``import bncourse``, executing each notebook, grading notebooks and classes.

Wall time is what a student or TA waits; the machine is shared, so CPU time (user +
system, of this process's children for the notebook kernels, of this process for the
grader's threads and their sandbox subprocesses) is recorded alongside as a check on load.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"


@dataclass
class Timed:
    """One measured step: wall seconds and CPU seconds (user + system)."""

    what: str
    wall_s: float
    cpu_s: float
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cpu_seconds() -> float:
    """User + system CPU of this process and of its reaped children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


@contextmanager
def _clock() -> Iterator[dict[str, float]]:
    """Yield a dict that holds ``wall`` and ``cpu`` seconds once the block ends."""
    result: dict[str, float] = {}
    wall0, cpu0 = time.perf_counter(), _cpu_seconds()
    yield result
    result["wall"] = time.perf_counter() - wall0
    result["cpu"] = _cpu_seconds() - cpu0


IMPORTS = (
    "import bncourse",
    "import bncourse.reference",
    "from bncourse.grading import check",
    "import numpy",
    "import torch",
)
"""Import statements timed in fresh interpreters (numpy and torch for scale)."""


def import_time(statement: str = "import bncourse", repeats: int = 3) -> Timed:
    """Median wall time of ``statement`` in a fresh interpreter, and whether torch came along."""
    code = (f"import sys, time; t = time.perf_counter(); {statement}; "
            "print(time.perf_counter() - t, 'torch' in sys.modules, 'matplotlib' in sys.modules)")
    walls, cpus, heavy = [], [], ""
    for _ in range(repeats):
        with _clock() as c:
            out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                 text=True, cwd=REPO).stdout.split()
        walls.append(float(out[0]))
        cpus.append(c["cpu"])
        heavy = f"torch loaded: {out[1]}, matplotlib loaded: {out[2]}"
    return Timed(statement, statistics.median(walls), statistics.median(cpus),
                 f"median of {repeats} fresh interpreters (CPU: whole interpreter); {heavy}")


def _kernel_cpu_seconds(client: Any) -> float | None:
    """CPU seconds (user + system, own + reaped children) of the client's kernel process.

    Read from ``/proc/<pid>/stat`` (Linux); ``None`` where that is not available.
    """
    pid = getattr(getattr(getattr(client, "km", None), "provisioner", None), "pid", None)
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # after "pid (comm)": state is fields[0], so utime, stime, cutime, cstime are 11..14
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def execute_notebook(path: Path, timeout: float = 600.0) -> Timed:
    """Execute a copy of ``path`` in memory with nbclient (the file is not written).

    CPU time is the kernel's own, read after each cell (before the kernel shuts down),
    so notebooks executed side by side do not mix; where ``/proc`` is missing it falls
    back to this process's reaped children.
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    kernel_cpu: list[float] = []

    def after_cell(**_: Any) -> None:
        seconds = _kernel_cpu_seconds(client)
        if seconds is not None:
            kernel_cpu.append(seconds)

    client.on_cell_executed = after_cell
    with _clock() as c:
        # The kernel's own log (transport warnings, its shutdown) would drown the progress
        # lines; a failing cell still raises CellExecutionError here.
        client.execute(stderr=subprocess.DEVNULL)
    cells = sum(1 for cell in nb.cells if cell.cell_type == "code")
    cpu = kernel_cpu[-1] if kernel_cpu else c["cpu"]
    return Timed(path.name, c["wall"], cpu, f"{cells} code cells")


def execute_notebooks(paths: list[Path], jobs: int = 1,
                      progress: Callable[[str], None] = print) -> tuple[list[Timed], Timed]:
    """Execute every notebook, ``jobs`` at a time; per-notebook times and the total.

    Each notebook runs torch with 1 thread (``setup_notebook(threads=1)``), so two at a
    time on two cores is what a student with two notebooks open would see.  The total's
    CPU time is this process's plus every reaped kernel's.
    """
    with _clock() as c, ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = []
        for t in pool.map(execute_notebook, paths):
            progress(f"notebook {t.what}: {t.wall_s:.1f} s wall, {t.cpu_s:.1f} s CPU")
            results.append(t)
    total = Timed(f"all {len(paths)} notebooks", c["wall"], c["cpu"],
                  f"executed {jobs} at a time")
    return results, total


def _grade(submissions: list[Path], out: Path, jobs: int, warm: bool = True,
           jail: Any = None) -> tuple[Any, dict[str, float]]:
    from bncourse.grading.grader import grade_class

    with _clock() as c:
        summary = grade_class(submissions, out, jobs=jobs, regrade=True, warm=warm, jail=jail)
    return summary, c


def grading_jail(root: Path) -> Any:
    """The jail ``bncourse grade`` uses (the student build written under ``root``), or None
    where bubblewrap is missing (the rows then say NOT ISOLATED)."""
    from bncourse.authoring import student_package
    from bncourse.grading.jail import GradingJail, bwrap_path

    if bwrap_path() is None:
        return None
    files = student_package.package_files(expected_outputs=False)
    return GradingJail(student_package.write_tree(files, root / "student-build"))


def _split(summary: Any) -> str:
    """``"start-up 3.2 s, then 0.21 s per notebook (median)"`` from a grading summary."""
    times = sorted(summary.per_notebook_seconds)
    median = times[len(times) // 2] if times else float("nan")
    head = f"start-up {summary.startup_seconds:.1f} s, then " if summary.startup_seconds else ""
    return f"{head}{median:.2f} s per notebook (median)"


def grading_times(notebooks: list[Path], class_size: int, jobs_list: tuple[int, ...] = (1, 2),
                  progress: Callable[[str], None] = print) -> list[Timed]:
    """Grade each instructor notebook alone (warm, and the last one also ``--cold``), then a
    class of ``class_size`` students who each submit every notebook — all in the OS jail, as
    ``bncourse grade`` does (where bubblewrap is missing: without it, and the rows say so).

    Every graded submission must score full marks (the instructor notebooks hold the
    solutions); a shortfall is reported in ``detail`` so a slow-but-wrong grader shows.
    ``detail`` also splits the fork server's one-off start-up from the per-notebook time.
    """
    from bncourse.grading.grader import grade_notebook  # noqa: F401  (import cost outside timing)

    rows: list[Timed] = []
    with tempfile.TemporaryDirectory(prefix="bncourse-bench-") as tmp:
        root = Path(tmp)
        jail = grading_jail(root)
        how = "jailed" if jail is not None else "NOT ISOLATED"
        runs = [(nb, True) for nb in notebooks] + ([(notebooks[-1], False)] if notebooks else [])
        for nb, warm in runs:
            sub = root / "one" / f"{nb.stem}-{warm}" / "instructor"
            sub.mkdir(parents=True)
            shutil.copy(nb, sub / nb.name)
            summary, c = _grade([sub], root / "out" / f"{nb.stem}-{warm}", jobs=1, warm=warm, jail=jail)
            label = f"grade {nb.name} ({how})" + ("" if warm else " --cold")
            rows.append(Timed(label, c["wall"], c["cpu"], f"{_scores(summary.out)}; {_split(summary)}"))
            progress(f"{label}: {c['wall']:.1f} s")
        if notebooks and class_size > 0:
            klass = root / "class"
            for i in range(class_size):
                (klass / f"student{i:02d}").mkdir(parents=True)
                for nb in notebooks:
                    shutil.copy(nb, klass / f"student{i:02d}" / nb.name)
            n = class_size * len(notebooks)
            for jobs in jobs_list:
                summary, c = _grade([klass], root / "out" / f"class-jobs{jobs}", jobs=jobs, jail=jail)
                rows.append(Timed(f"grade class of {class_size} students × {len(notebooks)} notebooks "
                                  f"({n}, {how}), --jobs {jobs}", c["wall"], c["cpu"],
                                  f"{_scores(summary.out)}; {_split(summary)}"))
                progress(f"graded class, --jobs {jobs}: {c['wall']:.1f} s")
    return rows


def _scores(out: Path) -> str:
    """``"k/n submissions at full marks"`` from a gradebook's grades.csv."""
    import csv

    with open(out / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    full = sum(1 for r in rows if r.get("total") and r["total"] == r.get("max"))
    return f"{full}/{len(rows)} at full marks"


def notebook_paths() -> list[Path]:
    """The course notebooks present now (``notebooks/NN_*.ipynb``)."""
    return sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb") if ".ipynb_checkpoints" not in str(p))


def environment() -> dict[str, str]:
    """Threads-related environment variables in force (they change the numbers)."""
    keys = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    return {k: os.environ.get(k, "(unset)") for k in keys}
