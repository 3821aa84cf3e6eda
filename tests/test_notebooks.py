"""Every numbered notebook, executed top to bottom in smoke mode, as JupyterLab runs it (cwd = notebooks/).

Papermill style: the smoke parameters go into a new cell right after the cell tagged ``parameters``.
By default that cell is ``SMOKE = True``; a notebook can ask for more in its metadata::

    "metadata": {"a3c_lab": {"smoke_parameters": {"SMOKE": true, "MINUTES": 0.2},
                             "smoke_timeout_s": 300}}

``smoke_timeout_s`` (default :data:`DEFAULT_TIMEOUT_S`) bounds the CPU seconds of the notebook's kernel
(a busy machine stretches wall-clock time, not those); a cell that runs :data:`HANG_FACTOR` times that
long in wall-clock time is taken to hang. Each notebook's run time is printed at the end of the session and written to ``tests/output/notebook_times.json``;
the executed notebooks land in ``tests/output/notebooks/`` for a look after a failure.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
OUTPUT = ROOT / "tests" / "output"
NOTEBOOK_PATHS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
#: Seconds of the kernel's CPU a notebook may use in smoke mode unless its metadata says otherwise
#: (CPU, not wall-clock time: other jobs on the machine stretch the latter, not the former).
DEFAULT_TIMEOUT_S = 180
#: A cell that runs this many times the notebook's budget in wall-clock time is taken to hang.
HANG_FACTOR = 5
#: The kernel spec the tests write: this very Python, whatever kernels the machine has installed.
KERNEL_NAME = "a3c-lab-test"

RUN_TIMES: dict[str, float] = {}
#: A warning as Python's ``warnings`` module prints it: ``file.py:40: UserWarning: text``.
PYTHON_WARNING = re.compile(r"^.*:\d+: \w*Warning: .*$", re.MULTILINE)
#: A float printed with all its digits (``'elapsed': 13.449915885925293``), with a little context.
RAW_FLOAT = re.compile(r".{0,30}\d\.\d{7,}")


def lab_metadata(nb: nbformat.NotebookNode) -> dict:
    """The notebook's ``a3c_lab`` metadata (smoke parameters, timeout), or ``{}``."""
    return dict(nb.metadata.get("a3c_lab", {}))


def parameters_index(nb: nbformat.NotebookNode) -> int:
    """Index of the one code cell tagged ``parameters``."""
    tagged = [i for i, cell in enumerate(nb.cells)
              if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"expected exactly one code cell tagged 'parameters', found {len(tagged)}"
    return tagged[0]


def inject_smoke_parameters(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` with the smoke parameters in a cell right after the ``parameters`` cell."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    values = lab_metadata(nb).get("smoke_parameters", {"SMOKE": True})
    source = "# Injected by tests/test_notebooks.py: the smoke parameters\n" + "\n".join(
        f"{name} = {value!r}" for name, value in values.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(parameters_index(nb) + 1, cell)
    return nb


@pytest.fixture(scope="session", autouse=True)
def report_run_times(pytestconfig: pytest.Config):
    """At the end of the session: print each notebook's smoke run time and save them as JSON."""
    yield
    if not RUN_TIMES:
        return
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / "notebook_times.json").write_text(json.dumps(RUN_TIMES, indent=2) + "\n")
    lines = ["", "notebook smoke run times (seconds):"]
    lines += [f"  {name:<40} {seconds:6.1f}" for name, seconds in sorted(RUN_TIMES.items())]
    lines.append(f"  {'total':<40} {sum(RUN_TIMES.values()):6.1f}")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():  # shown even though pytest captures output
        print("\n".join(lines))


@dataclass
class SmokeRun:
    """One execution of a notebook in smoke mode: the executed notebook (``nb``, without the closing
    cell), its wall-clock ``seconds``, the CPU seconds of its kernel (``cpu_seconds``: the kernel's own and
    its waited-for children's, None if a cell failed) and the budget for them (``limit``), everything
    its cells printed (``text``), the value of the query evaluated in its kernel after the last cell
    (``value``), and the cell error that ended it early (``error``, else None)."""

    nb: nbformat.NotebookNode
    seconds: float
    cpu_seconds: float | None
    limit: float
    text: str
    value: Any
    error: Exception | None


#: The plain smoke runs (no inserted cell, no extra parameter) of this test session, by notebook name:
#: a notebook that a claims test has executed is not executed again by test_notebook_runs_in_smoke_mode.
_PLAIN_RUNS: dict[str, SmokeRun] = {}
QUERY_MARKER = "CLAIMS="


def smoke_run(name: str, query: str | None = None, after_tag: str | None = None, insert: str = "",
              parameters: dict | None = None) -> SmokeRun:
    """Execute notebook ``name`` in smoke mode (a cell that runs past :data:`HANG_FACTOR` times the
    notebook's ``smoke_timeout_s`` is stopped); with ``parameters`` added to the smoke ones, ``insert`` as a new cell
    right after the cell tagged ``after_tag``, and ``query`` (a Python expression over the notebook's
    variables) evaluated in its kernel at the end and sent back as JSON. Without ``query``, a plain run
    that this session already made is reused. A claims test (``query`` given) raises the notebook's
    own error; the smoke test reports it from :attr:`SmokeRun.error`."""
    plain = after_tag is None and not parameters
    if query is None and plain and name in _PLAIN_RUNS:
        return _PLAIN_RUNS[name]
    nb = inject_smoke_parameters(nbformat.read(NOTEBOOKS / name, as_version=4))
    limit = float(lab_metadata(nb).get("smoke_timeout_s", DEFAULT_TIMEOUT_S))
    injected = next(cell for cell in nb.cells if "injected-parameters" in cell.metadata.get("tags", []))
    injected.source += "".join(f"\n{key} = {value!r}" for key, value in (parameters or {}).items())
    if after_tag:
        index = next(i for i, cell in enumerate(nb.cells) if after_tag in cell.metadata.get("tags", []))
        nb.cells.insert(index + 1, nbformat.v4.new_code_cell(insert))
    nb.cells.append(nbformat.v4.new_code_cell(  # the closing cell: the kernel's CPU time, the query's value
        "import json as _json, os as _os\n_times = _os.times()\n"
        f"print({QUERY_MARKER!r} + _json.dumps([_times.user + _times.system + _times.children_user"
        f" + _times.children_system, {query if query is not None else 'None'}]))"))
    start, error = time.perf_counter(), None
    client = NotebookClient(nb, kernel_name=KERNEL_NAME, resources={"metadata": {"path": str(NOTEBOOKS)}},
                            timeout=int(HANG_FACTOR * limit))
    try:
        client.execute()
    except Exception as failure:  # a cell's error or timeout: the run's result, reported by the tests
        error = failure
    seconds = time.perf_counter() - start
    value = cpu_seconds = None
    printed = "".join(output.get("text", "") for output in nb.cells.pop().outputs if output.get("name") == "stdout")
    if error is None:
        cpu_seconds, value = json.loads(printed.split(QUERY_MARKER, 1)[1].splitlines()[0])
    text = "".join(output.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for output in cell.outputs if output.output_type == "stream")
    run = SmokeRun(nb, seconds, cpu_seconds, limit, text, value, error)
    if plain:
        _PLAIN_RUNS[name] = run
    if error is not None and query is not None:
        raise error
    return run


def test_there_are_notebooks() -> None:
    assert len(NOTEBOOK_PATHS) >= 5, [p.name for p in NOTEBOOK_PATHS]


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=[p.stem for p in NOTEBOOK_PATHS])
def test_notebook_is_committed_clean(path: Path) -> None:
    """No outputs, no execution counts, a title, "what you will learn" and one tagged parameters cell."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"cell {i} was committed with outputs"
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# "), "the first cell is the title"
    assert "what you will learn" in first.source.lower()
    params = nb.cells[parameters_index(nb)].source
    assert "SMOKE" in params, "the parameters cell should define SMOKE"


@pytest.mark.slow  # runs the notebook
@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=[p.stem for p in NOTEBOOK_PATHS])
def test_notebook_runs_in_smoke_mode(path: Path, kernel_dir: Path) -> None:
    run = smoke_run(path.name)
    RUN_TIMES[path.name] = round(run.seconds, 1)
    (OUTPUT / "notebooks").mkdir(parents=True, exist_ok=True)
    nbformat.write(run.nb, OUTPUT / "notebooks" / path.name)
    if run.error is not None:
        raise run.error
    print(f"{path.name}: {run.seconds:.1f} s in smoke mode, {run.cpu_seconds:.1f} s of the kernel's CPU")
    assert run.cpu_seconds <= run.limit, (f"{path.name}'s kernel used {run.cpu_seconds:.0f} s of CPU in smoke mode, "
                                          f"more than its {run.limit:.0f} s")
    warned = [match.group(0) for cell in run.nb.cells if cell.cell_type == "code" for output in cell.outputs
              if output.get("name") == "stderr" for match in PYTHON_WARNING.finditer(output.text)]
    assert not warned, f"{path.name} shows a student Python's warnings (a red box that reads as an error): {warned}"
    raw = [match.group(0) for match in RAW_FLOAT.finditer(run.text)]
    assert not raw, f"{path.name} prints numbers nobody reads to the last digit (round them): {raw}"


@pytest.mark.slow  # runs the notebook, every cell twice
@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=[p.stem for p in NOTEBOOK_PATHS])
def test_every_cell_runs_again_right_after_itself(path: Path, kernel_dir: Path) -> None:
    """Students run a cell again (to see it once more, after a mistake, or by habit): each code cell,
    executed twice in a row in smoke mode, ends without an error, its second run included."""
    nb = inject_smoke_parameters(nbformat.read(path, as_version=4))
    nb.cells = [copy for cell in nb.cells
                for copy in ([cell, nbformat.from_dict(json.loads(json.dumps(cell)))] if cell.cell_type == "code" else [cell])]
    limit = float(lab_metadata(nb).get("smoke_timeout_s", DEFAULT_TIMEOUT_S))
    NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=int(HANG_FACTOR * limit),  # a cell that hangs
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
