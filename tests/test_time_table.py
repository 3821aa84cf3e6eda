"""One set of Run All times, the measured one: what the README's table and each notebook's first cell
say is what ``benchmarks/lab_run_all.py`` measured in JupyterLab, idle and beside two busy loops.

A change that makes a notebook slower is caught when the times are measured again (the two commands
in the README); this test makes the documents follow the measurement, not a hope."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from lab_run_all import NOTEBOOKS, PROMISE, duration  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
MEASURED = {"idle": (RESULTS / "lab_run_all.json", 0), "loaded": (RESULTS / "lab_run_all_loaded.json", 2)}


def measurement(which: str) -> dict:
    path, busy = MEASURED[which]
    record = json.loads(path.read_text())
    assert record["busy_loops"] == busy and record["cores"] == 2, (path.name, record["busy_loops"], record["cores"])
    return record


def times() -> dict[str, dict[str, str]]:
    """notebook -> {"idle": "11 s", "loaded": "25 s"}, from the two measurements."""
    found: dict[str, dict[str, str]] = {name: {} for name in NOTEBOOKS}
    for which in MEASURED:
        for result in measurement(which)["results"]:
            found[result["notebook"]][which] = duration(result["seconds"])
    return found


@pytest.mark.parametrize("which", MEASURED)
def test_every_notebook_was_measured_and_ran_every_cell_without_a_traceback(which):
    results = {r["notebook"]: r for r in measurement(which)["results"]}
    assert sorted(results) == NOTEBOOKS
    for name, result in results.items():
        assert result["status"] == "finished" and result["ran"] == result["code_cells"], (name, result)
        assert result["errors"] == [] and result["processes_left"] == 0, (name, result)


def test_the_readmes_time_table_is_the_measurement():
    readme = (ROOT / "README.md").read_text()
    for name, measured in times().items():
        row = f"| `{name}` | {measured['idle']} | {measured['loaded']} |"
        assert row in readme, f"README's time table should have the measured row: {row}"
    commits = {which: measurement(which)["commit"] for which in MEASURED}
    assert all(commit in readme for commit in commits.values()), f"the README names the commits measured: {commits}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_each_notebook_says_how_long_its_run_all_takes(name):
    cells = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())["cells"]
    promise = PROMISE.format(**times()[name])
    assert promise in "".join(cells[0]["source"]), f"{name}'s first cell should say: {promise}"
    prose = "".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown")
    assert prose.count("*Run All* takes") == prose.count(promise), f"{name} states another time for its Run All"
