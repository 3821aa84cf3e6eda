"""The instructor's kit (``a3c-lab editions``): a student and an instructor edition from the one series, and a
class graded by nbgrader from the same checks the students see, through nbgrader's own exchange."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import time
from pathlib import Path

import nbformat
import pytest

from a3c_core import editions
from a3c_core.__main__ import main
from a3c_core.editions import ASSIGNMENTS, STUB, KitError, build_course, solution_bodies

pytestmark = pytest.mark.skipif(importlib.util.find_spec("nbgrader") is None,
                                reason="nbgrader is not installed (pip install 'a3c-lab[instructor]')")

SERIES = Path(__file__).resolve().parents[1] / "notebooks"


def code_of(nb: nbformat.NotebookNode) -> str:
    return "\n".join(cell.source for cell in nb.cells)


def nbgrader_id(cell: nbformat.NotebookNode) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The course folder that `a3c-lab editions` writes, as an instructor would run it."""
    folder = tmp_path_factory.mktemp("kit") / "course"
    assert main(["editions", str(folder)]) == 0
    return folder


@pytest.mark.slow  # the course fixture runs nbgrader once per assignment
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_the_student_edition_is_the_series_without_its_solutions(course: Path, name: str) -> None:
    series = nbformat.read(SERIES / f"{name}.ipynb", as_version=4)
    student = nbformat.read(course / "release" / name / f"{name}.ipynb", as_version=4)
    instructor = nbformat.read(course / "source" / name / f"{name}.ipynb", as_version=4)
    bodies = solution_bodies(SERIES / "solutions" / f"solutions_{name[:2]}.py")
    assert len(student.cells) == len(instructor.cells) == len(series.cells) + 1  # + the grader's parameters
    originals = iter(series.cells)
    solved = checked = 0
    for cell, answer in zip(student.cells, instructor.cells):
        grade = cell.metadata.get("nbgrader", {})
        if grade.get("grade_id") == "grader_parameters":
            assert grade["locked"] and 'os.environ.get("NBGRADER_EXECUTION")' in cell.source
            assert "SMOKE = True" in cell.source
            continue
        original = next(originals)
        if cell.cell_type == "markdown":
            assert "solutions/" not in cell.source
            assert cell.source == original.source or "solutions/" in original.source
            continue
        assert cell.source == original.source  # every code cell as in the self-study edition
        if grade.get("solution"):
            solved += 1
            assert STUB in cell.source and bodies[grade["grade_id"]] in answer.source  # the answer: instructor only
        if grade.get("grade"):
            checked += 1
            assert grade["points"] == 1 and cell.source.startswith("checks.")
            assert "assert _result.passed, _result.message" in answer.source
    assert solved == checked == len(bodies) >= 2
    text = code_of(student) + json.dumps(student.metadata)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "solutions/" not in text


def fetch_answer_submit(exchange: Path, home: Path, student: str, assignment: str, answers: dict[str, str]) -> None:
    """What a student does: fetch the assignment, replace the stub of each exercise in ``answers`` with
    its body, submit (through nbgrader's exchange, as the lab extension's buttons do)."""
    home.mkdir(parents=True, exist_ok=True)
    common = ["--course", "a3c-lab", f"--Exchange.root={exchange}"]
    run_nbgrader(home, "fetch_assignment", assignment, *common)
    path = home / assignment / f"{assignment}.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if nbgrader_id(cell) in answers:
            cell.source = cell.source.replace(f"    {STUB}", answers[nbgrader_id(cell)])
    nbformat.write(nb, path)
    run_nbgrader(home, "submit", assignment, "--student", student, *common)


def run_nbgrader(cwd: Path, *args: str) -> None:
    """``nbgrader <args>`` in ``cwd``, as the kit runs it (a failure raises KitError with nbgrader's words)."""
    editions.nbgrader(cwd, *args)


#: Each simulated student's answers (function -> body) and the score each assignment must get.
REFERENCE = {name: body for number in ("01", "02", "03", "04")
             for name, body in solution_bodies(SERIES / "solutions" / f"solutions_{number}.py").items()}
CLASS = {
    "alice": (REFERENCE, {"01_observations": 3, "02_model": 3, "03_shared_memory": 2, "04_loss": 3}),  # all right
    "bob": ({  # the typical mistakes of tests/test_checks.py
        "my_crop": "    return frame[34:194]",  # one row off: and my_state, which uses it, is wrong too
        "my_normalize": "    return image.astype(np.float32) / 255",
        "my_state": REFERENCE["my_state"],
        "my_n_step_returns": REFERENCE["my_n_step_returns"],
        "my_value_loss": "    return ((returns - values) ** 2).mean()",  # a mean, not a sum
        "my_policy_loss": "    return -(log_probs * (returns - values)).sum()",  # the advantage not detached
    }, {"01_observations": 1, "04_loss": 1}),
    "carol": ({  # hands the work to the package: wrong, however it is written
        "my_crop": "    return preprocess.crop(frame)",
        "my_normalize": "    from a3c_core.preprocess import normalize as scale\n    return scale(image)",
        "my_state": REFERENCE["my_state"],  # its own code, on top of her crop and normalize: right
        "my_n_step_returns": "    from a3c_core import loss\n    return loss.n_step_returns(rewards, bootstrap_value, gamma)",
        "my_value_loss": REFERENCE["my_value_loss"],
        "my_policy_loss": REFERENCE["my_policy_loss"],
    }, {"01_observations": 1, "04_loss": 2}),
    "dave": ({}, {"01_observations": 0, "02_model": 0, "03_shared_memory": 0, "04_loss": 0}),  # handed in untouched
}
#: Bob and Carol hand in 01 and 04 only: nbgrader's table gives them 0 for the others.


@pytest.mark.slow
def test_a_class_is_graded_from_the_checks_the_students_saw(course: Path, tmp_path: Path) -> None:
    exchange = course / "exchange"
    for assignment in ASSIGNMENTS:
        run_nbgrader(course, "release_assignment", assignment)
        for student, (answers, expected) in CLASS.items():
            if assignment in expected:
                fetch_answer_submit(exchange, tmp_path / student, student, assignment, answers)
        run_nbgrader(course, "collect", assignment)
        start = time.perf_counter()
        run_nbgrader(course, "autograde", assignment)
        print(f"autograde {assignment}: {sum(assignment in e for _, e in CLASS.values())} students in "
              f"{time.perf_counter() - start:.1f} s")
    run_nbgrader(course, "export", "--to", str(tmp_path / "grades.csv"))
    scores = {(row["student_id"], row["assignment"]): (float(row["score"]), float(row["max_score"]))
              for row in csv.DictReader((tmp_path / "grades.csv").open())}
    points = {"01_observations": 3.0, "02_model": 3.0, "03_shared_memory": 2.0, "04_loss": 3.0}
    for student, (_, expected) in CLASS.items():
        for assignment in ASSIGNMENTS:
            got = scores[student, assignment]
            assert got == (expected.get(assignment, 0.0), points[assignment]), (student, assignment, got)

    # The grader's feedback is the check's own sentence, and grading ran the smoke path, never training.
    graded = nbformat.read(course / "autograded" / "bob" / "01_observations" / "01_observations.ipynb", as_version=4)
    (crop,) = [cell for cell in graded.cells if nbgrader_id(cell) == "check_crop"]
    errors = [output for output in crop.outputs if output.output_type == "error"]
    assert errors and "the shape is right but the rows are not" in errors[0].evalue
    wrapped = nbformat.read(course / "autograded" / "carol" / "04_loss" / "04_loss.ipynb", as_version=4)
    (returns,) = [cell for cell in wrapped.cells if nbgrader_id(cell) == "check_n_step_returns"]
    assert "calls loss.n_step_returns, the package's own answer" in returns.outputs[-1].evalue


@pytest.mark.slow  # runs nbgrader twice
def test_the_kit_keeps_an_instructors_edit_and_says_what_is_missing(tmp_path: Path, monkeypatch, capsys) -> None:
    course = tmp_path / "course"
    build_course(course, SERIES, assignments=("02_model",))
    edited = course / "source" / "02_model" / "02_model.ipynb"
    nb = nbformat.read(edited, as_version=4)
    nb.cells[0].source += "\n\nAn instructor's note."
    nbformat.write(nb, edited)
    with pytest.raises(SystemExit) as exit_code:
        main(["editions", str(course)])
    assert exit_code.value.code == 2
    assert "02_model.ipynb differs from the series' instructor edition" in capsys.readouterr().err
    assert "An instructor's note." in edited.read_text()  # kept
    assert not (course / "source" / "01_observations").exists()  # nothing written: refused before any edition
    with pytest.raises(KitError, match="no reference solution"):
        editions.instructor_notebook(nbformat.read(SERIES / "02_model.ipynb", as_version=4), {})
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(KitError, match=r"pip install 'a3c-lab\[instructor\]'"):
        build_course(tmp_path / "other", SERIES, assignments=("02_model",))


# --- a class's runs on one plot (classroom/class_progress.ipynb) ------------------------------------
def write_run(home: Path, run: str, game: str, scores: list[float], partial_line: bool = False) -> Path:
    """A run folder as the trainer writes it: config.json, and metrics.jsonl with one eval record per score."""
    folder = home / "notebooks" / "runs" / run
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"game": game, "frame_skip": 4}))
    records = [{"kind": "episode", "steps": 5, "elapsed": 1.0, "reward": -1.0, "rank": 0}]
    records += [{"kind": "eval", "steps": 100 * i, "elapsed": 6.0 * i, "score": s, "reward": s, "length": 45}
                for i, s in enumerate(scores)]
    text = "".join(json.dumps(r) + "\n" for r in records) + ('{"kind": "eval", "ste' if partial_line else "")
    (folder / "metrics.jsonl").write_text(text)
    return folder


@pytest.fixture
def homes(tmp_path: Path) -> Path:
    """Four students' home folders: one learning (and writing right now), one not yet, one just started,
    one whose run has no evaluator game yet."""
    homes = tmp_path / "homes"
    write_run(homes / "alice", "catch-1", "catch", [-3.0] * 10 + [float(min(5, i)) for i in range(20)],
              partial_line=True)
    old = write_run(homes / "bob", "catch-old", "catch", [5.0] * 30)  # an older run of his: not the newest
    os.utime(old / "metrics.jsonl", (1, 1))
    write_run(homes / "bob", "catch-2", "catch", [-3.0, -1.0] * 12)
    write_run(homes / "bob", "pong-1", "pong", [-21.0] * 12)  # another game
    write_run(homes / "carol", "catch-1", "catch", [-3.0] * 5)
    write_run(homes / "dave", "catch-1", "catch", [])
    return homes


def test_the_class_curves_are_each_students_newest_run_of_the_game(homes: Path) -> None:
    from a3c_core.curves import class_curves, progress_rows

    curves = class_curves(homes, "catch")
    assert list(curves) == ["alice", "bob", "carol"]  # dave's run has no evaluator game yet
    assert len(curves["alice"]["score"]) == 30  # the line being written is left out
    assert curves["alice"]["frames"][-1] == 29 * 100 * 4 and curves["bob"]["score"][0] == -3.0  # not the old run
    rows = {row["name"]: row for row in progress_rows(curves)}
    assert [rows[name]["verdict"] for name in curves] == ["learning", "not yet", "too early"]
    assert rows["alice"]["first"] == -3.0 and rows["alice"]["last"] == 5.0 and rows["alice"]["minutes"] == 2.9
    assert list(class_curves(homes, "pong")) == ["bob"] and class_curves(homes / "nobody", "catch") == {}


def test_the_instructors_notebook_draws_the_class_now_and_live(homes: Path, kernel_dir: Path) -> None:
    from nbclient import NotebookClient
    from test_notebooks import KERNEL_NAME

    path = Path(__file__).resolve().parents[1] / "classroom" / "class_progress.ipynb"
    nb = nbformat.read(path, as_version=4)
    (parameters,) = [i for i, cell in enumerate(nb.cells) if "parameters" in cell.metadata.get("tags", [])]
    nb.cells.insert(parameters + 1, nbformat.v4.new_code_cell(f"HOMES = {str(homes)!r}\nSMOKE = True"))
    nb.cells.append(nbformat.v4.new_code_cell(
        "import json\nlive.join(timeout=60)\n"
        "print(json.dumps({'png': picture.value[:4] == b'\\x89PNG', 'table': progress.value, "
        "'alive': live.is_alive()}))"))
    NotebookClient(nb, timeout=120, kernel_name=KERNEL_NAME, resources={"metadata": {"path": str(path.parent)}}).execute()
    now = [output for cell in nb.cells for output in cell.get("outputs", []) if "image/png" in output.get("data", {})]
    assert len(now) == 1  # the "Now" picture
    values = json.loads(nb.cells[-1].outputs[0].text)
    assert values["png"] and not values["alive"]
    table = values["table"]
    for student, verdict in (("alice", "learning"), ("bob", "not yet"), ("carol", "too early")):
        assert f"<td>{student}</td>" in table and verdict in table
    assert "dave" not in table
