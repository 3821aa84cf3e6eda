"""The instructor's kit: a student edition and an instructor edition of the exercises, for nbgrader.

The notebooks in ``notebooks/`` are the self-study edition: skeletons to fill in, checks that answer at
once, reference solutions in ``notebooks/solutions/``. :func:`build_course` makes an nbgrader course
folder from the same notebooks, solutions and :mod:`a3c_core.checks` tables (``a3c-lab editions DIR``):

- ``source/<assignment>/``, the **instructor edition**: each skeleton holds its reference solution
  between nbgrader's ``### BEGIN SOLUTION`` and ``### END SOLUTION``; each check cell is an autograded
  test worth one point whose hidden test asserts the very check the student sees; a locked cell after
  the parameters cell turns on the smoke parameters while nbgrader executes the notebook, so grading
  never trains for long.
- ``release/<assignment>/``, the **student edition**, made by nbgrader's ``generate_assignment``: the
  skeletons as in the self-study edition, the hidden tests gone, no pointer to the solutions.
- ``nbgrader_config.py``: the course id, the exchange folder, the skeleton's stub, a cell time limit
  that a smoke run keeps far from.

The assignments are notebooks 01-04 (one each, named as the notebook). Notebook 09's exercises stay
self-study: they read the series' measurements from ``../benchmarks``, which an assignment folder lacks.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat

#: The notebooks an instructor can hand out as assignments, by stem (also the assignment's name).
ASSIGNMENTS = ("01_observations", "02_model", "03_shared_memory", "04_loss")
#: The one line every exercise skeleton has where the student's code goes: nbgrader's stub too.
STUB = "raise NotImplementedError  # your code here"
#: Seconds one cell may run while nbgrader executes a notebook (autograde, validate): smoke runs take
#: seconds; this only stops a student's endless loop.
CELL_TIMEOUT_S = 600
#: A check cell: ``checks.<exercise>(my_<function>)`` and nothing else.
CHECK_CELL = re.compile(r"^checks\.(\w+)\((my_\w+)\)\s*$")
#: A skeleton: the cell defines ``my_<function>`` and its body is :data:`STUB`.
SKELETON = re.compile(r"^def (my_\w+)\(", re.MULTILINE)
#: Where the self-study edition points at its solutions (one sentence each), and the whitespace before it.
SOLUTION_POINTER = re.compile(r"\s*(Stuck\? The answers\s+are in|Reference solutions of [^:`]*:)\s+"
                              r"`solutions/solutions_\d+\.py`(\s+\(`%load [^)]*\))?\.")


class KitError(Exception):
    """Something the instructor's kit cannot do; the message says what to do instead."""


def solution_bodies(path: Path) -> dict[str, str]:
    """The body of each function in a solutions file, without its docstring, indented as written:
    ``{"my_crop": "    return frame[35:195]"}``."""
    source = path.read_text()
    lines = source.splitlines()
    bodies = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef):
            statements = node.body[1:] if ast.get_docstring(node) is not None else node.body
            bodies[node.name] = "\n".join(lines[statements[0].lineno - 1:node.end_lineno])
    return bodies


def _smoke_lines(nb: nbformat.NotebookNode) -> list[str]:
    """``NAME = value`` for each smoke parameter of the notebook (``SMOKE = True`` unless its metadata
    names more)."""
    values = nb.metadata.get("a3c_lab", {}).get("smoke_parameters", {"SMOKE": True})
    return [f"    {name} = {value!r}" for name, value in values.items()]


def _mark(cell: nbformat.NotebookNode, grade_id: str, *, solution: bool = False, grade: bool = False,
          locked: bool = False, points: int = 0) -> nbformat.NotebookNode:
    """``cell`` with nbgrader's metadata (schema 3)."""
    cell.metadata["nbgrader"] = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
                                 "solution": solution, **({"points": points} if grade else {})}
    return cell


def instructor_notebook(nb: nbformat.NotebookNode, solutions: dict[str, str]) -> nbformat.NotebookNode:
    """The instructor edition of one notebook (a new notebook; ``nb`` is left as it was).

    Args:
        nb: a self-study notebook, with one ``parameters`` cell, skeletons and check cells.
        solutions: the reference solutions' bodies by function name (:func:`solution_bodies`).
    """
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        if cell.cell_type == "markdown":
            cell.source = SOLUTION_POINTER.sub("", cell.source)
        elif "parameters" in cell.metadata.get("tags", []):
            cells.append(_mark(nbformat.v4.new_code_cell("\n".join([
                "# While nbgrader executes this notebook (grading), the quick path: nothing trains for long.",
                "import os", "", 'if os.environ.get("NBGRADER_EXECUTION"):', *_smoke_lines(nb)]),
                id="grader-parameters"), "grader_parameters", locked=True))
        elif (skeleton := SKELETON.search(cell.source)) and STUB in cell.source:
            name = skeleton[1]
            if name not in solutions:
                raise KitError(f"the skeleton {name} has no reference solution in notebooks/solutions/")
            cell.source = cell.source.replace(
                f"    {STUB}", f"    ### BEGIN SOLUTION\n{solutions[name]}\n    ### END SOLUTION")
            _mark(cell, name, solution=True)
        elif check := CHECK_CELL.match(cell.source):
            exercise, function = check[1], check[2]
            cell.source = "\n".join([
                cell.source.strip(), "### BEGIN HIDDEN TESTS", f"_result = checks.{exercise}({function})",
                "assert _result.passed, _result.message", "### END HIDDEN TESTS"])
            _mark(cell, f"check_{exercise}", grade=True, locked=True, points=1)
    nb.cells = cells
    return nb


def nbgrader_config(course_id: str, exchange: Path) -> str:
    """The course folder's ``nbgrader_config.py``."""
    return "\n".join([
        '"""nbgrader\'s settings for the a3c-lab course (written by `a3c-lab editions`)."""',
        "c = get_config()  # noqa: F821  (nbgrader defines it when it reads this file)",
        f"c.CourseDirectory.course_id = {course_id!r}",
        f"c.Exchange.root = {str(exchange)!r}",
        f"c.ClearSolutions.code_stub = {{'python': {STUB!r}}}",
        f"c.ExecutePreprocessor.timeout = {CELL_TIMEOUT_S}",
        "# The student's name in a submission is the one `nbgrader submit --student` gave (one machine",
        "# user for a whole class, as on the classroom hub), not the owner of its files.",
        "c.ExchangeCollect.check_owner = False",
        ""])


def student_nbgrader_config(course_id: str, exchange: Path, student: str) -> str:
    """A student's ``~/.jupyter/nbgrader_config.py`` on a hub where every server runs as the same
    system user (``classroom/jupyterhub_config.py``): the course, the exchange, and the student's hub
    name as nbgrader's student id (nbgrader would otherwise take the system user's name)."""
    return "\n".join([
        '"""nbgrader\'s settings for this student (written by the classroom hub)."""',
        "c = get_config()  # noqa: F821  (nbgrader defines it when it reads this file)",
        f"c.CourseDirectory.course_id = {course_id!r}",
        f"c.Exchange.root = {str(exchange)!r}",
        f"c.CourseDirectory.student_id = {student!r}",
        ""])


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    """Run ``nbgrader <args>`` in the course folder; its output is kept for an error message."""
    if importlib.util.find_spec("nbgrader") is None:
        raise KitError("the instructor's kit needs nbgrader: pip install 'a3c-lab[instructor]' "
                       "(or pip install nbgrader)")
    # nbgrader runs alembic's command for its gradebook: the one beside this Python, also when not on PATH
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, capture_output=True, text=True,
                          env={**os.environ, "PATH": path})
    if done.returncode != 0:
        raise KitError(f"nbgrader {' '.join(args)} failed: {(done.stderr or done.stdout).strip()[-800:]}")
    return done


def build_course(course: Path, notebooks: Path, course_id: str = "a3c-lab", exchange: Path | None = None,
                 assignments: tuple[str, ...] = ASSIGNMENTS, force: bool = False) -> dict[str, Path]:
    """Write the nbgrader course folder ``course`` from the self-study ``notebooks`` folder (with its
    ``solutions/``): the instructor edition under ``source/``, the student edition under ``release/``.

    Returns each assignment's student edition folder. ``exchange`` defaults to ``course/exchange``
    (on a hub, a folder every student's server can read and write, such as ``/srv/nbgrader/exchange``).
    An instructor edition already there that differs from the one built now (edited by hand) is kept,
    and the build refused, unless ``force``.
    """
    editions = {}
    for name in assignments:  # every edition built and checked before anything is written
        path = notebooks / f"{name}.ipynb"
        solutions = notebooks / "solutions" / f"solutions_{name[:2]}.py"
        if not path.is_file() or not solutions.is_file():
            raise KitError(f"{path} or {solutions} is missing: build the editions from the series' notebooks "
                           "folder (a clone's notebooks/, or the copy `a3c-lab lab` makes)")
        nb = instructor_notebook(nbformat.read(path, as_version=4), solution_bodies(solutions))
        target = course / "source" / name / path.name
        if target.is_file() and not force and nbformat.read(target, as_version=4) != nb:
            raise KitError(f"{target} differs from the series' instructor edition (edited by hand?); nothing was "
                           "written: move it away, or build again with --force to overwrite it")
        editions[name] = (target, nb)
    exchange = (exchange or course / "exchange").resolve()
    config, settings = course / "nbgrader_config.py", nbgrader_config(course_id, exchange)
    if config.is_file() and not force and config.read_text() != settings:
        raise KitError(f"{config} differs from the one this build writes (edited by hand, or another course id or "
                       "exchange?); nothing was written: build again with --force to overwrite it")
    course.mkdir(parents=True, exist_ok=True)
    exchange.mkdir(parents=True, exist_ok=True)
    config.write_text(settings)
    for name, (target, nb) in editions.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
        nbgrader(course, "generate_assignment", name, "--force")
    return {name: course / "release" / name for name in editions}
