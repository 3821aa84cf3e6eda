"""JupyterLab in headless Chromium: notebook 05's Catch dashboard renders, lives and stops from its button.

Executing a notebook (``test_notebooks.py``) runs the code but renders no widget; only a browser
shows whether the widgets appear and whether their updates from the dashboard's thread arrive.
The test starts JupyterLab on localhost with a token, opens the cells of
``notebooks/05_training_live.ipynb`` up to the Catch dashboard plus one cell that keeps the kernel
busy, runs them, and checks in the page that:

- the game frame is a real image whose pixels change over time, also while the kernel is busy;
- the reward plot is drawn and redrawn once the evaluator has finished episodes;
- the Stop button stops the training (status line "stopped", a checkpoint on disk).

Screenshots land in ``tests/output/browser/``. Chromium comes from Debian (``make browser``); the
test skips without it, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import cv2
import nbformat
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "05_training_live.ipynb"
OUTPUT = ROOT / "tests" / "output" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
#: The cell appended after the dashboard: the kernel stays busy while the browser watches.
BUSY_SECONDS = 8
BUSY_CELL = f"""# Added by tests/test_browser.py: keep the kernel busy while the browser watches the dashboard
import time
deadline = time.monotonic() + 90
while catch.latest_frame is None and time.monotonic() < deadline:
    time.sleep(0.2)
time.sleep({BUSY_SECONDS})"""


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} not found: install it with `make browser` (apt-get install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(message + "; CI must run the browser test")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def group_members(pgid: int) -> list[int]:
    """PIDs of the live (not zombie) processes in process group ``pgid``."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def write_test_notebook(folder: Path) -> Path:
    """Notebook 05's cells up to the one tagged ``catch-dashboard``, then :data:`BUSY_CELL`."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    (end,) = [i for i, cell in enumerate(nb.cells) if "catch-dashboard" in cell.metadata.get("tags", [])]
    nb.cells = nb.cells[:end + 1] + [nbformat.v4.new_code_cell(BUSY_CELL)]
    path = folder / "dashboard_catch.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[dict]:
    """JupyterLab serving ``tmp_path`` on a free localhost port with a random token. Teardown ends
    its whole process group (the kernel and the trainer's processes with it) and checks it is gone."""
    require_chromium()
    notebook = write_test_notebook(tmp_path)
    settings = tmp_path / "lab-settings"
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    # Start the notebook's own kernel without the "Select Kernel" dialog (which comes up on a busy machine).
    (settings / "@jupyterlab" / "notebook-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"autoStartDefaultKernel": True}))
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime")}
    log = open(tmp_path / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}", "--allow-root",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
                break
            except OSError:
                assert server.poll() is None, f"JupyterLab exited: {(tmp_path / 'jupyterlab.log').read_text()[-2000:]}"
                assert time.monotonic() < deadline, "JupyterLab did not answer within 60 s"
                time.sleep(0.5)
        yield {"url": f"http://127.0.0.1:{port}/lab/tree/{notebook.name}?token={token}", "root": tmp_path,
               "api": f"http://127.0.0.1:{port}/api", "token": token}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while group_members(server.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = group_members(server.pid)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        server.wait(10)
        log.close()
        assert not left, f"processes still alive 20 s after JupyterLab was stopped: {left}"


def kernel_connected(lab: dict) -> bool:
    """True when the server has exactly one kernel, idle, with a browser connection.

    While a kernel is still starting, jupyter_server's ``GET /api/kernels`` can answer 500 (the new
    kernel has no ``last_activity`` yet: jupyter-server/enterprise_gateway#1395 shows the same
    traceback): that means "not yet", not a failure.
    """
    try:
        with urllib.request.urlopen(f"{lab['api']}/kernels?token={lab['token']}", timeout=5) as response:
            kernels = json.load(response)
    except urllib.error.HTTPError as error:
        if error.code == 500:
            return False
        raise
    return len(kernels) == 1 and kernels[0]["connections"] >= 1 and kernels[0]["execution_state"] == "idle"


def element_pixels(locator) -> np.ndarray:
    """The element as it is on screen, ``(H, W, 3)`` uint8."""
    return cv2.imdecode(np.frombuffer(locator.screenshot(), np.uint8), cv2.IMREAD_COLOR)


def natural_size(locator) -> tuple[int, int]:
    return tuple(locator.evaluate("img => [img.naturalWidth, img.naturalHeight]"))


def wait_until(condition, timeout: float, what: str, page) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            page.screenshot(path=str(OUTPUT / "failure.png"))
            dialogs = page.locator(".jp-Dialog").all_inner_texts()
            raise AssertionError(f"timed out after {timeout} s waiting for {what} "
                                 f"(screenshot tests/output/browser/failure.png; dialogs: {dialogs})")
        time.sleep(0.25)


def test_dashboard_lives_in_jupyterlab_and_stops_from_its_button(lab: dict) -> None:
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.set_default_timeout(30_000)
            page.goto(lab["url"], timeout=60_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
            # JupyterLab may start a kernel, replace it at once and only then connect: wait for the one
            # kernel that the page is connected to, so that "Run All" goes to it.
            wait_until(lambda: kernel_connected(lab), 60, "the notebook's kernel to be connected", page)
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()

            frame, plot, status = page.locator(".a3c-frame"), page.locator(".a3c-plot"), page.locator(".a3c-status")
            busy = page.locator(".jp-Notebook-ExecutionIndicator[data-status='busy']")
            # The frame appears once the evaluator has started; the busy cell then holds the kernel.
            wait_until(lambda: frame.count() == 1 and natural_size(frame)[0] > 0, 120, "the first game frame", page)
            assert natural_size(frame) == (320, 420), "the frame is the (210, 160) Atari frame, enlarged twice"
            samples, busy_samples = [], 0
            for _ in range(6):
                samples.append(element_pixels(frame))
                busy_samples += busy.count()
                time.sleep(1.0)
            changed = sum(not np.array_equal(a, b) for a, b in zip(samples, samples[1:]))
            assert busy_samples >= 4, "the kernel should have been busy with the added cell while we watched"
            assert changed >= 3, f"the game frame changed only {changed} times in 5 s while the kernel was busy"
            assert all(sample.std() > 5 for sample in samples), "the frame is blank"

            # The reward plot: drawn at once, redrawn once the evaluator has finished a few episodes.
            first_plot = element_pixels(plot)
            wait_until(lambda: "mean of 10" in status.inner_text(), 90, "an evaluator episode in the status", page)
            wait_until(lambda: not np.array_equal(element_pixels(plot), first_plot), 30, "a redrawn plot", page)
            assert natural_size(plot) == (720, 272)
            drawn = element_pixels(plot)
            blue = (drawn[..., 0] > 150) & (drawn[..., 2] < 120)  # the evaluator's curve is tab:blue (BGR)
            assert blue.sum() > 50, "the plot shows no evaluator curve"
            assert "running" in status.inner_text()
            page.locator(".jp-Notebook").screenshot(path=str(OUTPUT / "dashboard.png"))

            page.locator(".a3c-stop").click()
            wait_until(lambda: "stopped" in status.inner_text(), 60, "the status line to say stopped", page)
            wait_until(lambda: "checkpoint" in page.locator(".a3c-message").inner_text(), 30,
                       "the checkpoint message", page)
            page.screenshot(path=str(OUTPUT / "stopped.png"))
        finally:
            browser.close()
    checkpoints = list(lab["root"].glob("runs/catch-*/checkpoints/step-*.pt"))
    assert len(checkpoints) == 1, f"expected the Stop button's checkpoint, found {checkpoints}"
