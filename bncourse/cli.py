"""The ``bncourse`` command line: thin wrappers around package functions.

Each subcommand parses its arguments and calls one function (``release.build``,
``lint.lint_notebooks``, ``grading.grader.grade_class``, ``slides.build``,
``grading.selfcheck.check_notebook``); the logic and its tests live there.  The student
build of the package has only ``check`` (the others' modules are not in it).  The exit
status is nonzero only when the command itself could not do its job (not when a
student's submission is bad).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

from bncourse import __version__
from bncourse.errors import BNCourseError

__all__ = ["build_parser", "main"]


def _check(args: argparse.Namespace) -> int:
    from bncourse.grading import selfcheck

    paths = [Path(p) for p in args.notebooks]
    files = [f for p in paths for f in (sorted(p.glob("*.ipynb")) if p.is_dir() else [p])]
    if not files:
        raise BNCourseError(f"no notebooks (*.ipynb) in {', '.join(map(str, paths))}")
    print(selfcheck.format_summary([selfcheck.check_notebook(f) for f in files]))
    return 0


def _has(module: str) -> bool:
    """Is ``module`` in this build of the package (the student build has no authoring or grader)?"""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _release(args: argparse.Namespace) -> int:
    from bncourse.authoring import release

    out = release.build(out=Path(args.out), notebooks_dir=Path(args.notebooks), force=args.force)
    print(f"student edition written to {out}")
    return 0


def _lint(args: argparse.Namespace) -> int:
    from bncourse.authoring import lint

    paths = [Path(p) for p in args.notebooks] or sorted(Path("notebooks").glob("*.ipynb"))
    problems = lint.lint_notebooks(paths)
    for p in problems:
        print(p)
    print(f"{len(paths)} notebooks checked, {len(problems)} problems")
    return 1 if problems else 0


def _grade(args: argparse.Namespace) -> int:
    import tempfile

    from bncourse.authoring import student_package
    from bncourse.grading import gradebook, grader
    from bncourse.grading.jail import GradingJail
    from bncourse.grading.roster import load_roster

    if not args.submissions and args.roster is None:
        raise BNCourseError("nothing to grade: name SUBMISSION folders or files, or a --roster")
    # the roster and the gradebook columns are checked before anything is graded
    roster = None if args.roster is None else load_roster(Path(args.roster))
    if args.assignment and not args.gradebook:
        raise BNCourseError("--assignment names a gradebook column: add --gradebook canvas, moodle or csv")
    items = gradebook.plan_items(args.assignment, args.gradebook) if args.gradebook else []
    gradebook.require_roster(args.gradebook, roster)
    if args.no_jail:
        print(f"warning: --no-jail: submissions run without the operating-system jail; every report is "
              f"stamped {grader.NOT_ISOLATED}", file=sys.stderr)
    else:
        grader.require_jail()
    with tempfile.TemporaryDirectory(prefix="bncourse-student-build-") as build:
        jail = None
        if not args.no_jail:  # the jail runs the student build: no answer, no expected output inside
            files = student_package.package_files(expected_outputs=False)
            jail = GradingJail(student_package.write_tree(files, Path(build)))
        summary = grader.grade_class(
            [Path(p) for p in args.submissions],
            out=Path(args.out),
            jobs=args.jobs,
            timeout=args.timeout,
            regrade=args.regrade,
            warm=not args.cold,
            jail=jail,
            roster=roster,
        )
    print(summary)
    for path, table in gradebook.write_gradebooks(Path(args.out), args.gradebook, items, summary.records, roster):
        print(f"wrote {path} ({table.students} student row(s); import it as the "
              f"README's \"Local folder + Canvas/Moodle\" says)")
        for why in table.left_out:
            print(f"  left out of {path.name}: {why}")
    return 0


def _autograder(args: argparse.Namespace) -> int:
    from bncourse.authoring import autograder

    if not args.gradescope:
        raise BNCourseError("name the platform: --gradescope (the only one so far)")
    out = autograder.build_gradescope_zip(Path(args.out), args.notebook, timeout=args.timeout,
                                          visibility=args.visibility)
    print(f"Gradescope autograder written to {out} ({out.stat().st_size / 2**20:.1f} MB): upload it as the "
          "assignment's autograder; students upload their filled-in notebook")
    return 0


def _slides(args: argparse.Namespace) -> int:
    from bncourse.authoring import slides

    decks = slides.build(
        out=Path(args.out), notebooks=[Path(p) for p in args.notebooks] or None, pdf=args.pdf
    )
    for d in decks:
        print(d)
    return 0


def _export(args: argparse.Namespace) -> int:
    from bncourse.authoring import nbgrader_export

    written = nbgrader_export.export(out=Path(args.nbgrader), notebooks_dir=Path(args.notebooks),
                                     notebooks=args.only or None, force=args.force)
    for path in written:
        print(path)
    print(f"{len(written)} nbgrader source assignment(s) written to {Path(args.nbgrader) / nbgrader_export.SOURCE}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``bncourse`` (also used to document the commands)."""
    parser = argparse.ArgumentParser(
        prog="bncourse",
        description="Batch Normalization course: student edition, class grading, slides.",
    )
    parser.add_argument("--version", action="version", version=f"bncourse {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("check", help="check every exercise of your notebooks and print a summary",
                       description="Run each notebook's imports cell and exercise cells (not the "
                       "experiments) and check every exercise, as the check cells do.")
    p.add_argument("notebooks", nargs="*", default=["notebooks"],
                   help="notebooks or folders of them (default: notebooks/)")
    p.set_defaults(func=_check)
    if not _has("bncourse.authoring"):  # the student build
        return parser

    p = sub.add_parser("release", help="build the student edition from notebooks/",
                       description="Build the student edition: solutions replaced by "
                       "NotImplementedError with a hint, instructor cells dropped, outputs cleared.")
    p.add_argument("--out", default="build/student", help="output folder (default: build/student)")
    p.add_argument("--notebooks", default="notebooks", help="instructor notebooks folder")
    p.add_argument("--force", action="store_true",
                   help="overwrite an existing edition even if files in it were modified")
    p.set_defaults(func=_release)

    p = sub.add_parser("lint-notebooks", help="check the instructor notebooks' structure",
                       description="Check exercise markers, check cells, tags, outputs and "
                       "slideshow metadata of the instructor notebooks.")
    p.add_argument("notebooks", nargs="*", help="notebooks (default: notebooks/*.ipynb)")
    p.set_defaults(func=_lint)

    p = sub.add_parser(
        "grade",
        help="grade filled-in student notebooks",
        description="Grade submissions: each SUBMISSION is a filled-in student notebook or a "
        "directory of them (one per student; the student id is the directory or file name). "
        "Only the cells tagged `imports` and `exercise` run, each submission in an operating-system "
        "jail (bubblewrap: as nobody in new user, PID, network and mount namespaces, seeing only "
        "Python, the libraries and the student build of the package; private size-capped /tmp; "
        "no capabilities, seccomp, rlimits, wall-clock timeout), forked from a warm server per job "
        "that has already imported numpy, torch, matplotlib and the course modules (so a notebook "
        "takes a fraction of a second after a one-off start-up); outputs are compared with the "
        "reference in the grading process, outside the jail. Writes OUT/grades.csv, OUT/report.json "
        "and OUT/feedback/<student>.md. Submissions are never modified; already graded ones are "
        "skipped unless --regrade.",
    )
    p.add_argument("submissions", nargs="*", metavar="SUBMISSION")
    p.add_argument("--roster", metavar="CSV",
                   help="a CSV naming the students: columns student,path (whose each file is, paths relative to "
                   "the CSV), or the LMS's class list (id/student, email, login/username, sis_id/ID number, name, "
                   "section, optional path; e.g. a Canvas or Moodle gradebook export): found files are matched to "
                   "its students by id, email, email local part, login or SIS id; unmatched files are listed and "
                   "not graded, students with no file are listed as missing")
    p.add_argument("--gradebook", action="append", default=[], choices=["canvas", "moodle", "csv"],
                   help="also write OUT/gradebook-FORMAT.csv for the LMS's gradebook import (repeatable; canvas "
                   "and moodle need a class-list --roster)")
    p.add_argument("--assignment", action="append", default=[], metavar="NAME|SOURCE=NAME",
                   help="a gradebook column: NAME = the total over every graded notebook (default: "
                   "'bncourse total'); SOURCE=NAME = the points of one notebook or exercise (repeatable)")
    p.add_argument("--no-jail", action="store_true",
                   help="run without the operating-system jail (only for code you trust; every report is "
                   "stamped NOT ISOLATED). Without this flag, grading refuses to run where bubblewrap is missing")
    p.add_argument("--out", default="build/grades", help="output folder (default: build/grades)")
    p.add_argument("--jobs", type=int, default=1, help="submissions graded in parallel (default 1)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="wall-clock seconds per submission (default 60)")
    p.add_argument("--regrade", action="store_true", help="grade again submissions already graded")
    p.add_argument("--cold", action="store_true",
                   help="start a fresh jail (or, with --no-jail, a fresh Python) for every submission "
                   "instead of forking from a warm server (slower; the same confinement)")
    p.set_defaults(func=_grade)

    p = sub.add_parser(
        "autograder", help="build a Gradescope autograder zip",
        description="Build the zip of a Gradescope programming assignment: setup.sh and run_autograder at "
        "its root, the student build of the package and the grading oracle (the instructor package, which "
        "students never see). In Gradescope's container each submission's code runs in the bubblewrap jail "
        "where the container allows namespaces, else as an unprivileged user that cannot read the oracle; "
        "results.json has one test per exercise and the feedback `bncourse grade` writes.")
    p.add_argument("--gradescope", action="store_true", help="build for Gradescope (required)")
    p.add_argument("--out", default="build/autograder.zip", help="the zip (default: build/autograder.zip)")
    p.add_argument("--notebook", action="append", default=[], metavar="NOTEBOOK",
                   help="the course notebook this assignment grades, e.g. 03_forward_backward (one Gradescope "
                   "assignment per notebook; repeat for several; default: the whole course)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="wall-clock seconds for a submission's code (default 60)")
    p.add_argument("--visibility", default="visible", choices=["visible", "hidden", "after_due_date",
                                                                "after_published"],
                   help="Gradescope visibility of the tests (default visible)")
    p.set_defaults(func=_autograder)

    p = sub.add_parser("slides", help="build offline reveal.js slides from the notebooks",
                       description="One reveal.js deck per notebook plus an index page; reveal.js "
                       "and MathJax are copied from installed packages, nothing loads from the network.")
    p.add_argument("notebooks", nargs="*", help="notebooks (default: notebooks/*.ipynb)")
    p.add_argument("--out", default="build/slides", help="output folder (default: build/slides)")
    p.add_argument("--pdf", action="store_true", help="also print each deck to PDF with headless Chromium")
    p.set_defaults(func=_slides)

    p = sub.add_parser("export", help="write the course for another grading system (nbgrader)",
                       description="Write each instructor notebook as an nbgrader source assignment, "
                       "DIR/source/NN_topic/NN_topic.ipynb: exercise cells become autograded answers "
                       "(nbgrader strips their BEGIN/END SOLUTION blocks), check cells graded tests "
                       "worth the exercise's points (check(..., strict=True)), every other cell "
                       "read-only; instructor cells, speaker notes and outputs are left out.")
    p.add_argument("--nbgrader", required=True, metavar="DIR",
                   help="the nbgrader course directory (or a folder to copy into one)")
    p.add_argument("only", nargs="*", metavar="NOTEBOOK", help="notebooks to export (default: all)")
    p.add_argument("--notebooks", default="notebooks", help="instructor notebooks folder")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty DIR (the export's files are replaced, nothing else)")
    p.set_defaults(func=_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bncourse`` console script and ``python -m bncourse``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args))
    except BNCourseError as exc:
        print(f"bncourse {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
