"""Rosters and LMS gradebooks: which student a file is, who is missing, and the files Canvas
and Moodle import (``bncourse grade --roster ... --gradebook canvas|moodle|csv``).

The roster and the gradebook writer are pure functions of the roster file and the grader's
records, tested here without grading; one slow test runs the whole command in the jail.
The headers checked are those of the import pages cited in :mod:`bncourse.grading.gradebook`.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

from bncourse.cli import main
from bncourse.errors import BNCourseError
from bncourse.grading import gradebook
from bncourse.grading.grader import Submission, grade_notebook, read_roster
from bncourse.grading.registry import all_exercises
from bncourse.grading.roster import Roster, load_roster
from tests import grading_helpers as gh
from tests.paths import NOTEBOOKS_DIR

F, B = gh.FORWARD_ID, gh.BACKWARD_ID
CANVAS_HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
CLASS = (
    "ID,Student,Email,SIS User ID,SIS Login ID,Section\n"
    '101,"Smith, Ann",Ann.Smith@uni.edu,S1,asmith,A\n'
    '102,"Jones, Bob",bob@uni.edu,S2,bjones,A\n'
    '103,"Lee, Cy",cy@uni.edu,S3,clee,B\n'
    '104,"Diaz, Dee",dee@uni.edu,S4,ddiaz,B\n'
)


def _roster(tmp_path: Path, text: str, name: str = "roster.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _read(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


# --- reading rosters -------------------------------------------------------------------------


def test_a_student_path_roster_still_names_the_student_of_each_file(tmp_path: Path) -> None:
    path = _roster(tmp_path, "student,path\ns1234 Ann,up/a.ipynb\ns1234 Ann,up/b.ipynb\nBen,up/c.ipynb\n")
    roster = load_roster(path)
    assert not roster.class_list  # a file list: found files keep their names, nobody is "missing"
    assert [(s.student, s.path) for s in read_roster(path)] == [
        ("s1234 Ann", tmp_path / "up/a.ipynb"), ("s1234 Ann", tmp_path / "up/b.ipynb"), ("Ben", tmp_path / "up/c.ipynb")]


def test_a_canvas_gradebook_export_is_a_class_list(tmp_path: Path) -> None:
    path = _roster(tmp_path, (
        "\ufeffStudent,ID,SIS User ID,SIS Login ID,Section,Homework 1 (5501),Current Score\n"
        "    Points Possible,,,,,10,(read only)\n"
        ",,,,,Manual Posting,\n"
        '"Smith, Ann",101,S1,asmith,Sec A,7,70\n'
        '"Jones, Bob",102,,bjones,Sec A,,\n'))
    roster = load_roster(path)
    assert roster.class_list
    ann, bob = roster.entries
    assert (ann.key, ann.id, ann.name, ann.sis_id, ann.login, ann.section) == ("101", "101", "Smith, Ann", "S1",
                                                                                 "asmith", "Sec A")
    assert (bob.key, bob.sis_id, bob.line) == ("102", "", 5)
    assert read_roster(path) == []  # no path column: the files are found and matched


def test_a_moodle_grade_export_is_a_class_list(tmp_path: Path) -> None:
    path = _roster(tmp_path, ("First name,Last name,ID number,Institution,Department,Email address,"
                              "Assignment: HW 1 (Real),Last downloaded from this course\n"
                              "Ann,Smith,S1,Uni,CS,ann@uni.edu,-,1700000000\n"))
    (ann,) = load_roster(path).entries
    assert (ann.key, ann.name, ann.sis_id, ann.email, ann.id) == ("ann@uni.edu", "Ann Smith", "S1", "ann@uni.edu", "")


@pytest.mark.parametrize(("text", "message"), [
    ("ID,Student\n101,Ann\n102,Bob\n101,Ann again\n", "lines 2 and 4 both name the student '101'"),
    ("id,email\n101,ann@uni.edu\n102,ANN@uni.edu\n", "lines 2 and 3 have the same email 'ANN@uni.edu'"),
    ("student,login\nann,a1\nbob,A1\n", "lines 2 and 3 have the same login 'A1'"),
    ("Student,ID,SIS User ID\nAnn,1,S1\nBob,2,S1\n", "lines 2 and 3 have the same SIS id 'S1'"),
    ("name,file\nann,uploads/a81f.ipynb\n", "needs the columns student,path"),
    ("id,name\n,Ann\n", "line 2: no id, email, login or SIS id for 'Ann'"),
    ("student,path\n,uploads/a81f.ipynb\n", "line 2: student and path are both required"),
    ("", "is empty"),
])
def test_a_bad_roster_is_a_clear_error_naming_the_lines(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(BNCourseError, match="roster .*" + message.replace("(", r"\(").replace(")", r"\)")):
        load_roster(_roster(tmp_path, text))


def test_one_student_may_have_a_row_per_notebook_file(tmp_path: Path) -> None:
    roster = load_roster(_roster(tmp_path, "id,email,path\n101,ann@uni.edu,a/03.ipynb\n101,ann@uni.edu,a/04.ipynb\n"))
    (ann,) = roster.entries
    assert ann.paths == (tmp_path / "a/03.ipynb", tmp_path / "a/04.ipynb")


# --- matching files to students --------------------------------------------------------------


@pytest.fixture()
def roster(tmp_path: Path) -> Roster:
    return load_roster(_roster(tmp_path, CLASS + '105,"Smith, Al",al@uni.edu,S5,asmith2,A\n'
                                                 '106,"Wu, Bo",bob@other.edu,S6,bwu,A\n'))


@pytest.mark.parametrize(("name", "student", "how"), [
    ("101", "101", "id"),
    ("ann.smith@uni.edu", "101", "email"),           # case-insensitive
    ("Ann.Smith", "101", "email local part"),
    ("ASMITH", "101", "login"),
    ("s3", "103", "SIS id"),
    ("smithann_101_88123_03_forward_backward", "101", "Canvas download name (user id)"),
    ("leecy_late_103_9_hw", "103", "Canvas download name (user id)"),
    ("Dee  Diaz_4711_assignsubmission_file_", "104", "Moodle download folder (full name)"),
])
def test_a_file_name_matches_one_student(roster: Roster, name: str, student: str, how: str) -> None:
    entry, by = roster.match(name)
    assert entry is not None and (entry.key, by) == (student, how)


def test_a_name_matching_no_student_or_two_is_unmatched_with_the_reason(roster: Roster) -> None:
    entry, why = roster.match("zed")
    assert entry is None and "no roster student has the id, email, email local part, login or SIS id 'zed'" in why
    entry, why = roster.match("bob")  # bob@uni.edu and bob@other.edu: the local part cannot tell
    assert entry is None and "no roster student" in why
    entry, why = roster.match("Al Smith_1_assignsubmission_file_")  # "Smith, Al" and "Smith, Ann" differ
    assert entry is not None and entry.key == "105"
    entry, why = roster.match("Bo Jones_1_assignsubmission_file_")
    assert entry is None and "no roster student" in why
    two = load_roster(_roster(roster.path.parent, "id,login\nann,x\nbob,ann\n", "two.csv"))
    entry, why = two.match("ANN")  # one student's id is another's login
    assert entry is None and why.startswith("ambiguous: 'ANN' matches 2 roster students")
    assert "ann (line 2, by id)" in why and "bob (line 3, by login)" in why


# --- gradebook columns -----------------------------------------------------------------------


def test_grade_items_default_to_one_total_column() -> None:
    (item,) = gradebook.plan_items([], ["canvas", "moodle", "csv"])
    assert (item.column, item.source) == (gradebook.DEFAULT_ASSIGNMENT, None)
    items = gradebook.plan_items(["Course total", f"{gh.NOTEBOOK}=Notebook 99", f"{F}=Forward"], ["csv"])
    assert [(i.column, i.source) for i in items] == [("Course total", None), ("Notebook 99", gh.NOTEBOOK),
                                                     ("Forward", F)]


@pytest.mark.parametrize(("options", "formats", "message"), [
    ([f"{gh.NOTEBOOK}=HW", f"{F}=hw"], ["csv"], "collision: --assignment '99_test=HW' and --assignment 'bn_fwd=hw' "
                                                 "both name the column 'hw'"),
    (["Total", "total"], ["csv"], "both name the column 'total'"),
    (["ID"], ["canvas"], "the canvas file's identity column 'ID'"),
    (["section"], ["canvas"], "identity column 'Section'"),
    ([f"{F}=Email address"], ["moodle"], "the moodle file's identity column 'Email address'"),
    (["id"], ["csv"], "the csv file's identity column 'id'"),
    (["Notebooks Final Score"], ["canvas"], "drops columns named like its computed 'Final Score'"),
    (["nope=HW"], ["csv"], "no notebook or exercise is named 'nope'"),
    ([f"{F}= "], ["csv"], "needs a name"),
])
def test_a_gradebook_column_collision_is_a_clear_error(options: list[str], formats: list[str], message: str) -> None:
    with pytest.raises(BNCourseError, match=message.replace("(", r"\(").replace(")", r"\)")):
        gradebook.plan_items(options, formats)


def test_identity_and_computed_names_collide_only_in_their_own_format() -> None:
    assert [i.column for i in gradebook.plan_items(["Notebooks Final Score", f"{F}=ID"], ["moodle"])] == [
        "Notebooks Final Score", "ID"]


# --- gradebook files from records ------------------------------------------------------------


def _rec(student: str, notebook: str | None, points: dict[str, float], **extra: Any) -> dict[str, Any]:
    results = [{"exercise": ex, "points": p, "max_points": 10} for ex, p in points.items()]
    return {"student": student, "path": f"{student}.ipynb", "notebook": notebook, "results": results,
            "errors": [], **extra}


@pytest.fixture()
def class_records(tmp_path: Path) -> tuple[Roster, list[dict[str, Any]]]:
    """Ann full marks; Bob a file that is not a notebook; Cy two files claiming one notebook; Dee nothing."""
    bad = tmp_path / "bob.ipynb"
    bad.write_text("my homework, see attached PDF")
    bob = grade_notebook(Submission("102", bad))
    assert bob["errors"] and bob["errors"][0].startswith("unreadable notebook")  # a row with the reason
    records = [_rec("101", gh.NOTEBOOK, {F: 10, B: 10}), bob,
               _rec("103", gh.NOTEBOOK, {}, conflict=True), _rec("103", gh.NOTEBOOK, {}, conflict=True)]
    return load_roster(_roster(tmp_path, CLASS)), records


def test_the_canvas_file_has_canvas_columns_a_points_possible_row_and_every_student(class_records: Any) -> None:
    roster, records = class_records
    items = gradebook.plan_items(["bncourse total", f"{gh.NOTEBOOK}=Notebook 99", f"{B}=Backward"], ["canvas"])
    table = gradebook.build_table("canvas", items, records, roster)
    maximum = sum(e.points for e in all_exercises() if e.notebook == gh.NOTEBOOK)
    backward = next(e.points for e in all_exercises() if e.id == B)
    assert table.rows == [
        [*CANVAS_HEADER, "bncourse total", "Notebook 99", "Backward"],
        ["Points Possible", "", "", "", "", f"{maximum:g}", f"{maximum:g}", f"{backward:g}"],
        ["Smith, Ann", "101", "S1", "asmith", "A", "20", "20", "10"],
        ["Jones, Bob", "102", "S2", "bjones", "A", "0", "", ""],   # not a notebook: 0 of the total, no notebook
        ["Lee, Cy", "103", "S3", "clee", "B", "", "", ""],         # a conflict: nothing until it is settled
        ["Diaz, Dee", "104", "S4", "ddiaz", "B", "", "", ""],      # missing: empty, no score
    ]
    assert table.students == 4 and table.left_out == []


def test_the_moodle_file_identifies_users_by_email_and_holds_only_grades(class_records: Any) -> None:
    roster, records = class_records
    items = gradebook.plan_items([f"{gh.NOTEBOOK}=Notebook 99"], ["moodle"])
    table = gradebook.build_table("moodle", items, records, roster)
    assert table.rows == [
        ["Email address", "ID number", "Username", "Notebook 99"],
        ["Ann.Smith@uni.edu", "S1", "asmith", "20"],  # the email exactly as in the roster: Moodle compares case
    ]
    total = gradebook.build_table("moodle", gradebook.plan_items([], ["moodle"]), records, roster)
    assert [r[0] for r in total.rows] == ["Email address", "Ann.Smith@uni.edu", "bob@uni.edu"]


def test_a_moodle_row_without_the_identifier_is_left_out_and_named(tmp_path: Path) -> None:
    roster = load_roster(_roster(tmp_path, "id,email,username\n1,ann@uni.edu,ann\n2,,bob\n"))
    records = [_rec("1", gh.NOTEBOOK, {F: 10}), _rec("2", gh.NOTEBOOK, {F: 5})]
    table = gradebook.build_table("moodle", gradebook.plan_items([], ["moodle"]), records, roster)
    assert table.rows == [["Email address", "Username", "bncourse total"], ["ann@uni.edu", "ann", "10"]]
    assert table.left_out == ["2 (roster line 3): no Email address to identify them in Moodle"]


def test_the_plain_csv_has_an_id_and_a_column_per_item(class_records: Any) -> None:
    roster, records = class_records
    items = gradebook.plan_items(["total", f"{F}=fwd"], ["csv"])
    assert gradebook.build_table("csv", items, records, roster).rows == [
        ["id", "total", "fwd"], ["101", "20", "10"], ["102", "0", ""], ["103", "", ""], ["104", "", ""]]
    without_roster = gradebook.build_table("csv", items, records[:1], None)
    assert without_roster.rows == [["id", "total", "fwd"], ["101", "20", "10"]]


def test_an_lms_gradebook_needs_a_class_list(tmp_path: Path) -> None:
    files = load_roster(_roster(tmp_path, "student,path\nann,a.ipynb\n"))
    for fmt, roster in (("canvas", None), ("moodle", files)):
        with pytest.raises(BNCourseError, match=f"--gradebook {fmt} needs --roster with the class list"):
            gradebook.build_table(fmt, gradebook.plan_items([], [fmt]), [], roster)


def test_a_notebook_without_the_expected_exercise_ids_is_a_row_with_the_reason(tmp_path: Path) -> None:
    nb = tmp_path / "102.ipynb"
    cells = [nbformat.v4.new_code_cell("import numpy as np"), nbformat.v4.new_code_cell("def something_else(x):\n"
                                                                                          "    return x\n")]
    cells[0].metadata["tags"], cells[1].metadata["tags"] = ["imports"], ["exercise"]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), nb)
    rec = grade_notebook(Submission("102", nb))
    assert rec["notebook"] is None and "could not tell which course notebook this is" in rec["errors"][0]
    table = gradebook.build_table("csv", gradebook.plan_items([], ["csv"]), [rec], None)
    assert table.rows == [["id", "bncourse total"], ["102", "0"]]


# --- the command line ------------------------------------------------------------------------


@pytest.mark.parametrize(("extra", "message"), [
    (["--gradebook", "canvas", "--assignment", "03_forward_backward=HW", "--assignment",
      "04_gamma_beta=hw"], "gradebook column collision"),
    (["--gradebook", "canvas", "--assignment", "SIS Login ID"], "identity column 'SIS Login ID'"),
])
def test_the_cli_refuses_before_grading(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str],
                                        message: str) -> None:
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    roster = _roster(tmp_path, CLASS)
    out = tmp_path / "out"
    assert main(["grade", str(tmp_path / "subs"), "--roster", str(roster), "--out", str(out), "--no-jail",
                 *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()  # nothing graded, nothing written
    _roster(tmp_path, CLASS + '105,"Dup, Ann",ANN.SMITH@UNI.EDU,S9,x,A\n')
    assert main(["grade", str(tmp_path / "subs"), "--roster", str(roster), "--out", str(out), "--no-jail"]) == 2
    assert "lines 2 and 6 have the same email 'ANN.SMITH@UNI.EDU'" in capsys.readouterr().err
    assert not out.exists()
    assert main(["grade", str(tmp_path / "subs"), "--gradebook", "moodle", "--out", str(out), "--no-jail"]) == 2
    assert "--gradebook moodle needs --roster" in capsys.readouterr().err
    assert main(["grade", str(tmp_path / "subs"), "--assignment", "HW", "--out", str(out), "--no-jail"]) == 2
    assert "--assignment names a gradebook column: add --gradebook" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_grade_with_a_roster_writes_gradebooks_canvas_and_moodle_import(tmp_path: Path) -> None:
    from tests.jail_helpers import require_bwrap

    require_bwrap()
    nb_name = "05_test_time.ipynb"
    subs = tmp_path / "subs"
    honest = nbformat.read(NOTEBOOKS_DIR / nb_name, as_version=4)
    (subs / "Ann.Smith").mkdir(parents=True)  # Ann: by her email's local part
    nbformat.write(honest, subs / "Ann.Smith" / nb_name)
    renamed = nbformat.read(NOTEBOOKS_DIR / nb_name, as_version=4)
    for cell in renamed.cells:  # Bob: the course notebook, but no exercise defines the expected names
        if "exercise" in cell.metadata.get("tags", []):
            cell.source = cell.source.replace("def population_stats", "def pop_stats").replace(
                "def batchnorm_inference", "def bn_inference").replace("class BatchNorm1d", "class BN1d")
    nbformat.write(renamed, subs / f"jonesbob_102_5501_{nb_name}")  # as Canvas's "Download Submissions" names it
    (subs / "cy@uni.edu.ipynb").write_text("not a notebook")  # Cy: by email, a file that is not a notebook
    (subs / "zed").mkdir()
    nbformat.write(honest, subs / "zed" / nb_name)  # nobody on the roster: unmatched, not graded
    (subs / "ddiaz").mkdir()
    (subs / "ddiaz" / "homework.pdf").write_bytes(b"%PDF-1.4")  # Dee (by login): not a notebook, so missing
    roster = _roster(tmp_path, CLASS)  # Dee: missing
    out = tmp_path / "out"
    assert main(["grade", str(subs), "--roster", str(roster), "--out", str(out), "--timeout", "60",
                 "--gradebook", "canvas", "--gradebook", "moodle", "--gradebook", "csv",
                 "--assignment", "bncourse total", "--assignment", "05_test_time=Notebook 5"]) == 0
    maximum = f"{sum(e.points for e in all_exercises() if e.notebook == '05_test_time'):g}"

    header, *rows = _read(out / "grades.csv")
    grades = {r[0]: dict(zip(header, r, strict=True)) for r in rows}
    assert (grades["101"]["total"], grades["101"]["max"], grades["101"]["note"]) == (maximum, maximum, "")
    assert grades["102"]["total"] == "0" and grades["103"]["total"] == "0"
    assert grades["104"]["total"] == "0" and grades["104"]["note"] == (
        f"missing: no notebook (.ipynb) submitted: only files that are not notebooks, not graded: "
        f"{subs / 'ddiaz' / 'homework.pdf'}")
    assert grades[""]["note"].startswith(f"unmatched: {subs / 'zed' / nb_name}: no roster student")
    report = json.loads((out / "report.json").read_text())
    assert {r["student"] for r in report["submissions"]} == {"101", "102", "103"}  # zed's file is nobody's
    bob = next(r for r in report["submissions"] if r["student"] == "102")
    assert {r["status"] for r in bob["results"]} == {"missing"}
    assert any("unreadable notebook" in e for r in report["submissions"] if r["student"] == "103" for e in r["errors"])
    assert [m["student"] for m in report["roster"]["missing"]] == ["104"]
    assert [u["name"] for u in report["roster"]["unmatched"]] == ["zed"]
    assert {m["name"]: m["by"] for m in report["roster"]["matched"]} == {
        "Ann.Smith": "email local part", f"jonesbob_102_5501_{nb_name[:-6]}": "Canvas download name (user id)",
        "cy@uni.edu": "email"}

    assert _read(out / "gradebook-canvas.csv") == [
        [*CANVAS_HEADER, "bncourse total", "Notebook 5"],
        ["Points Possible", "", "", "", "", maximum, maximum],
        ["Smith, Ann", "101", "S1", "asmith", "A", maximum, maximum],
        ["Jones, Bob", "102", "S2", "bjones", "A", "0", "0"],
        ["Lee, Cy", "103", "S3", "clee", "B", "0", ""],
        ["Diaz, Dee", "104", "S4", "ddiaz", "B", "", ""],
    ]
    assert _read(out / "gradebook-moodle.csv") == [
        ["Email address", "ID number", "Username", "bncourse total", "Notebook 5"],
        ["Ann.Smith@uni.edu", "S1", "asmith", maximum, maximum],
        ["bob@uni.edu", "S2", "bjones", "0", "0"],
        ["cy@uni.edu", "S3", "clee", "0", ""],
    ]
    assert _read(out / "gradebook-csv.csv") == [
        ["id", "bncourse total", "Notebook 5"], ["101", maximum, maximum], ["102", "0", "0"], ["103", "0", ""],
        ["104", "", ""]]


def test_a_file_list_keeps_found_names_and_a_class_list_matches_them(tmp_path: Path) -> None:
    from bncourse.grading.grader import Summary, _assign_students

    found = [Submission("ann", tmp_path / "ann/03.ipynb"), Submission("zed", tmp_path / "zed/03.ipynb")]
    files = load_roster(_roster(tmp_path, "student,path\nBen,b.ipynb\n", "files.csv"))
    subs, matched, unmatched = _assign_students(found, files)
    assert [(s.student, s.path.name) for s in subs] == [("ann", "03.ipynb"), ("zed", "03.ipynb"), ("Ben", "b.ipynb")]
    assert (matched, unmatched) == ([], [])
    class_list = load_roster(_roster(tmp_path, "id,email,path\n101,ann@uni.edu,ann/03.ipynb\n102,ben@uni.edu,b.ipynb\n"))
    subs, matched, unmatched = _assign_students(found, class_list)
    assert [(s.student, s.path.name) for s in subs] == [("101", "03.ipynb"), ("102", "b.ipynb")]
    assert matched == [{"name": "ann", "path": str(tmp_path / "ann/03.ipynb"), "student": "101",
                        "by": "email local part"}]
    assert [u["name"] for u in unmatched] == ["zed"]  # not graded as anyone's
    text = str(Summary(out=tmp_path, unmatched=unmatched, missing=[{"label": "103 (Lee, Cy)"}]))
    assert f"1 unmatched file(s): no roster student, not graded:\n  - {tmp_path / 'zed/03.ipynb'}: no roster" in text
    assert "1 roster student(s) missing (no submission): 103 (Lee, Cy)" in text
