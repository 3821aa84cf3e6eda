"""JupyterLab in headless Chromium: notebook 05's Catch dashboard renders, lives and stops from its button;
``benchmarks/lab_run_all.py`` times a notebook's Run All and reads its outputs.

Executing a notebook (``test_notebooks.py``) runs the code but renders no widget; only a browser
shows whether the widgets appear and whether their updates from the dashboard's thread arrive.
The dashboard test starts JupyterLab on localhost with a token (``tests/lab.py``), opens the cells of
``notebooks/05_training_live.ipynb`` up to the Catch dashboard plus one cell that awaits the run
(``await wait_while_training(catch)``, as the notebook's own waiting cells do), runs them, and checks
in the page that:

- the game frame is a real image whose pixels change over time, also while the kernel is busy, and
  after the page was scrolled away from it and back;
- the reward plot is drawn and redrawn once the evaluator has finished episodes;
- the Stop button, pressed while the waiting cell holds the kernel, answers: its message at once,
  the status line "stopped", the waiting cell's end, and a checkpoint on disk (the seconds each took
  go to ``tests/output/browser/stop_while_waiting.json``).

Screenshots land in ``tests/output/browser/``. Chromium comes from Debian (``make browser``); the
test skips without it, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import cv2
import nbformat
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # lab_run_all, below
from lab import CHROMIUM, CHROMIUM_ARGS, jupyterlab, open_notebook, run_all, wait_until  # noqa: E402

pytestmark = pytest.mark.slow  # pytest -m "not slow" leaves the notebook and browser runs out

NOTEBOOK = ROOT / "notebooks" / "05_training_live.ipynb"
OUTPUT = ROOT / "tests" / "output" / "browser"
#: Catch's time limit in the test notebook: far beyond the moment the test presses Stop, so that only
#: the click can end the run and the waiting cell.
CATCH_MINUTES = 10
#: The cell appended after the dashboard: the kernel awaits the run while the browser watches and
#: presses Stop (the notebook's own waiting cells await the same way).
WAIT_CELL = f"""# Added by tests/test_browser.py: the kernel awaits the run while the browser watches and presses Stop
await wait_while_training(catch, minutes=1.5, until=lambda run: run.latest_frame is not None)
await wait_while_training(catch, minutes={CATCH_MINUTES})
print(f"the wait ended after {{catch.elapsed:.0f}} s of training; running: {{catch.running}}")"""


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} not found: install it with `make browser` (apt-get install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(message + "; CI must run the browser test")
    pytest.skip(message)


def write_test_notebook(folder: Path) -> Path:
    """Notebook 05's cells up to the one tagged ``catch-dashboard``, with ``CATCH_MINUTES`` set after its
    parameters cell, then :data:`WAIT_CELL`."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    (end,) = [i for i, cell in enumerate(nb.cells) if "catch-dashboard" in cell.metadata.get("tags", [])]
    (parameters,) = [i for i, cell in enumerate(nb.cells) if "parameters" in cell.metadata.get("tags", [])]
    limit = nbformat.v4.new_code_cell(f"CATCH_MINUTES = {CATCH_MINUTES}  # added by tests/test_browser.py")
    # Text below the cells, enough to scroll the dashboard out of view and back.
    below = [nbformat.v4.new_markdown_cell(f"Added by tests/test_browser.py: text to scroll past ({n}).\n\n"
                                           + "A paragraph that only takes room. " * 120) for n in range(12)]
    nb.cells = (nb.cells[:parameters + 1] + [limit] + nb.cells[parameters + 1:end + 1]
                + [nbformat.v4.new_code_cell(WAIT_CELL)] + below)
    path = folder / "dashboard_catch.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[dict]:
    """JupyterLab (tests/lab.py) serving ``tmp_path``, with the test notebook in it as ``lab["notebook"]``.
    Teardown ends its whole process group (the kernel and the trainer's processes with it) and checks it is gone."""
    require_chromium()
    notebook = write_test_notebook(tmp_path)
    with jupyterlab(tmp_path, tmp_path) as server:
        yield {**server, "notebook": notebook.name}


def natural_size(locator) -> tuple[int, int]:
    return tuple(locator.evaluate("img => [img.naturalWidth, img.naturalHeight]"))


def element_pixels(locator) -> np.ndarray:
    """The element as it is on screen, ``(H, W, 3)`` uint8."""
    return cv2.imdecode(np.frombuffer(locator.screenshot(), np.uint8), cv2.IMREAD_COLOR)


def test_dashboard_lives_in_jupyterlab_and_stops_from_its_button(lab: dict) -> None:
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.set_default_timeout(30_000)
            open_notebook(page, lab, lab["notebook"], OUTPUT)
            run_all(page)

            frame, plot, status = page.locator(".a3c-frame"), page.locator(".a3c-plot"), page.locator(".a3c-status")
            busy = page.locator(".jp-Notebook-ExecutionIndicator[data-status='busy']")
            # The frame appears once the evaluator has started; the busy cell then holds the kernel.
            wait_until(lambda: frame.count() == 1 and natural_size(frame)[0] > 0, 120, "the first game frame",
                       page, OUTPUT)
            assert natural_size(frame) == (320, 420), "the frame is the (210, 160) Atari frame, enlarged twice"
            samples, busy_samples = [], 0
            for _ in range(6):
                samples.append(element_pixels(frame))
                busy_samples += busy.count()
                time.sleep(1.0)
            changed = sum(not np.array_equal(a, b) for a, b in zip(samples, samples[1:]))
            assert busy_samples >= 4, "the kernel should have been busy with the waiting cell while we watched"
            assert changed >= 3, f"the game frame changed only {changed} times in 5 s while the kernel was busy"
            assert all(sample.std() > 5 for sample in samples), "the frame is blank"

            # Scrolled out of view and back, the frame is still the game at its size, and still moving.
            scroller = page.locator(".jp-WindowedPanel-outer").first
            scroller.evaluate("panel => { panel.scrollTop = panel.scrollHeight; }")
            time.sleep(3)
            scroller.evaluate("panel => { panel.scrollTop = 0; }")
            frame.scroll_into_view_if_needed()
            wait_until(lambda: natural_size(frame) == (320, 420), 10, "the frame after scrolling back", page, OUTPUT)
            shown = frame.evaluate("img => [img.getBoundingClientRect().width, img.getBoundingClientRect().height]")
            assert shown == [320, 420], f"the frame shows at {shown} after scrolling away and back"
            before = element_pixels(frame)
            wait_until(lambda: not np.array_equal(element_pixels(frame), before), 10, "the frame to move again",
                       page, OUTPUT)

            # The reward plot: drawn at once, redrawn once the evaluator has finished a few episodes.
            first_plot = element_pixels(plot)
            wait_until(lambda: "mean of 10" in status.inner_text(), 90, "an evaluator episode in the status",
                       page, OUTPUT)
            wait_until(lambda: not np.array_equal(element_pixels(plot), first_plot), 30, "a redrawn plot", page, OUTPUT)
            assert natural_size(plot) == (720, 272)
            drawn = element_pixels(plot)
            blue = (drawn[..., 0] > 150) & (drawn[..., 2] < 120)  # the evaluator's curve is tab:blue (BGR)
            assert blue.sum() > 50, "the plot shows no evaluator curve"
            assert "running" in status.inner_text()
            page.locator(".jp-Notebook").screenshot(path=str(OUTPUT / "dashboard.png"))

            # Stop, pressed while the waiting cell holds the kernel: the click is taken at once, the run
            # stops and the wait ends, minutes before the run's own limit would have ended both.
            assert busy.count() == 1, "the waiting cell should still hold the kernel when Stop is pressed"
            message, clicked = page.locator(".a3c-message"), time.monotonic()
            page.locator(".a3c-stop").click()
            seconds = {}
            for name, answered in (("the button's message", lambda: "stopping" in message.inner_text()
                                    or "checkpoint" in message.inner_text()),
                                   ("the status line to say stopped", lambda: "stopped" in status.inner_text()),
                                   ("the waiting cell to end", lambda: busy.count() == 0)):
                wait_until(answered, 60, name + " after Stop", page, OUTPUT)
                seconds[name] = round(time.monotonic() - clicked, 1)
            wait_until(lambda: "checkpoint" in message.inner_text(), 30, "the checkpoint message", page, OUTPUT)
            ended = page.locator(".jp-OutputArea-output", has_text="the wait ended after").inner_text()
            assert "running: False" in ended, ended
            (OUTPUT / "stop_while_waiting.json").write_text(json.dumps(seconds, indent=1))
            print("seconds from the Stop click:", seconds)
            page.screenshot(path=str(OUTPUT / "stopped.png"))
        finally:
            browser.close()
    checkpoints = list(lab["root"].glob("runs/catch-*/checkpoints/step-*.pt"))
    assert len(checkpoints) == 1, f"expected the Stop button's checkpoint, found {checkpoints}"


def test_run_all_in_jupyterlab_times_a_notebook_and_finds_no_traceback(tmp_path: Path) -> None:
    """benchmarks/lab_run_all.py on notebook 00: Run All from the menu, every cell ran, nothing left behind;
    with --merge the new result takes the old one's place in the record and the others stay."""
    require_chromium()
    out = tmp_path / "run_all.json"
    kept = {"notebook": "01_observations", "status": "finished", "seconds": 4.1, "ran": 9, "code_cells": 9,
            "errors": [], "stderr": []}
    out.write_text(json.dumps({"commit": "old", "cores": os.cpu_count(), "busy_loops": 0, "results": [
        kept, {**kept, "notebook": "00_setup", "seconds": 999.0}]}))
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "lab_run_all.py"), "00_setup", "--merge",
                             "--out", str(out), "--work", str(tmp_path / "work")], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    record = json.loads(out.read_text())
    measured, other = record["results"]
    assert other == kept and record["commit"] == "old"
    assert measured["notebook"] == "00_setup" and measured["commit"] not in ("", "old")
    assert measured["status"] == "finished" and 0 < measured["seconds"] < 300
    assert measured["ran"] == measured["code_cells"] == 6 and measured["errors"] == [] and measured["processes_left"] == 0
    assert "| 00_setup | " in result.stdout and "| 01_observations | " not in result.stdout


def test_run_all_merges_only_into_a_record_measured_alike(tmp_path: Path) -> None:
    require_chromium()
    out = tmp_path / "run_all.json"
    out.write_text(json.dumps({"commit": "old", "cores": os.cpu_count(), "busy_loops": 0, "results": []}))
    for args, says in ((["--busy", "2"], "was measured beside 0 busy loops"), ([], "needs an earlier record")):
        if not args:
            out.unlink()
        result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "lab_run_all.py"), "00_setup", "--merge",
                                 "--out", str(out), *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert says in result.stderr.splitlines()[-1]


def test_run_all_reads_tracebacks_and_stderr_from_the_saved_notebook(tmp_path: Path) -> None:
    from lab_run_all import read_saved

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("1", execution_count=1),
        nbformat.v4.new_code_cell("1 / 0", execution_count=2, outputs=[nbformat.v4.new_output(
            "error", ename="ZeroDivisionError", evalue="division by zero", traceback=[])]),
        nbformat.v4.new_code_cell("print('x', file=sys.stderr)", execution_count=None, outputs=[
            nbformat.v4.new_output("stream", name="stderr", text="A.L.E: Arcade Learning Environment\nmore\n")]),
        nbformat.v4.new_markdown_cell("text")])
    nbformat.write(nb, tmp_path / "n.ipynb")
    assert read_saved(tmp_path / "n.ipynb") == {
        "code_cells": 3, "ran": 2, "errors": ["cell 1: ZeroDivisionError: division by zero"],
        "stderr": ["cell 2: A.L.E: Arcade Learning Environment"]}


def test_run_all_names_an_unknown_notebook_in_one_sentence() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "lab_run_all.py"), "05_training"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no notebook named 05_training: choose from 00_setup" in result.stderr.splitlines()[-1]
