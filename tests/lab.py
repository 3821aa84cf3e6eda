"""JupyterLab in headless Chromium, as a student meets it: start the server, open a notebook, Run All.

Test infrastructure, shared by ``tests/test_browser.py`` (notebook 05's dashboard in a real browser) and
``benchmarks/lab_run_all.py`` (every notebook's Run All, timed). Chromium is Debian's (``make browser``), driven by
Playwright (never ``playwright install``); the server listens on 127.0.0.1 only, with a random token.
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
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


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


def _write_settings(settings: Path) -> None:
    """No news or update pop-ups; the notebook's own kernel starts without the "Select Kernel" dialog
    (which comes up on a busy machine); every cell stays in the page (no windowing), so that the
    prompts of all cells can be read."""
    for extension, values in {"apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
                              "notebook-extension/tracker": {"autoStartDefaultKernel": True, "windowingMode": "none"}
                              }.items():
        folder, name = extension.split("/")
        (settings / "@jupyterlab" / folder).mkdir(parents=True, exist_ok=True)
        (settings / "@jupyterlab" / folder / f"{name}.jupyterlab-settings").write_text(json.dumps(values))


@contextmanager
def jupyterlab(root: Path, work: Path, make_in: Path | None = None) -> Iterator[dict[str, Any]]:
    """JupyterLab serving ``root`` on a free 127.0.0.1 port with a random token; its settings, runtime
    files and log (``jupyterlab.log``) go to ``work``.

    ``make_in``: start it the way the README says, ``make lab`` in that repository (which builds the
    environment first if needed, and serves its ``notebooks/``: ``root`` must be that folder).

    Yields ``{"base", "api", "token", "root", "pgid"}``. On exit the server's whole process group
    (its kernels and their training processes with it) is stopped; AssertionError if any process
    of the group outlives it by 20 s.
    """
    settings = work / "lab-settings"
    _write_settings(settings)
    port, token = free_port(), secrets.token_hex(16)
    args = ["--no-browser", "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if make_in is not None:
        command = ["make", "-C", str(make_in), "lab", f"LAB_ARGS={' '.join(args)}"]
    else:
        command = [sys.executable, "-m", "jupyterlab", *args, f"--ServerApp.root_dir={root}"]
        if os.geteuid() == 0:
            command.append("--allow-root")
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(work / "lab-workspaces"), "JUPYTER_RUNTIME_DIR": str(work / "jupyter-runtime")}
    log_path = work / "jupyterlab.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        lab = {"base": f"http://127.0.0.1:{port}", "api": f"http://127.0.0.1:{port}/api", "token": token,
               "root": root, "pgid": server.pid}
        try:
            # make lab may first build the environment (minutes on a fresh clone)
            deadline = time.monotonic() + (900 if make_in is not None else 60)
            while True:
                try:
                    urllib.request.urlopen(f"{lab['api']}/status?token={token}", timeout=2)
                    break
                except OSError:
                    assert server.poll() is None, f"JupyterLab exited: {log_path.read_text()[-2000:]}"
                    assert time.monotonic() < deadline, f"JupyterLab did not answer in time ({log_path})"
                    time.sleep(0.5)
            yield lab
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            deadline = time.monotonic() + 20
            while group_members(server.pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            left = group_members(server.pid)
            for pid in left:
                os.kill(pid, signal.SIGKILL)
            server.wait(10)
            assert not left, f"processes still alive 20 s after JupyterLab was stopped: {left}"


def api(lab: dict[str, Any], what: str) -> list[dict[str, Any]] | None:
    """``GET /api/<what>`` (``kernels``, ``sessions``), or None while a new kernel is still starting.

    jupyter_server can answer 500 then (the new kernel has no ``last_activity`` yet:
    jupyter-server/enterprise_gateway#1395 shows the same traceback): that means "not yet".
    """
    try:
        with urllib.request.urlopen(f"{lab['api']}/{what}?token={lab['token']}", timeout=5) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        if error.code == 500:
            return None
        raise


def kernels(lab: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The server's kernels (``GET /api/kernels``), or None while one is still starting."""
    return api(lab, "kernels")


def kernel_connected(lab: dict[str, Any], name: str) -> bool:
    """True when notebook ``name`` has a kernel, idle, with a browser connection."""
    sessions = api(lab, "sessions") or []
    return any(session["path"].endswith(name) and session["kernel"]["connections"] >= 1
               and session["kernel"]["execution_state"] == "idle" for session in sessions)


def interrupt_kernels(lab: dict[str, Any]) -> None:
    """Interrupt every kernel of the server (``POST /api/kernels/ID/interrupt``), as the toolbar's stop
    button does."""
    for kernel in kernels(lab) or []:
        request = urllib.request.Request(f"{lab['api']}/kernels/{kernel['id']}/interrupt?token={lab['token']}",
                                         method="POST")
        urllib.request.urlopen(request, timeout=30)


def shut_down_sessions(lab: dict[str, Any]) -> None:
    """End every notebook session of the server and its kernel (``DELETE /api/sessions/ID``) and wait
    until no kernel is left."""
    for session in api(lab, "sessions") or []:
        request = urllib.request.Request(f"{lab['api']}/sessions/{session['id']}?token={lab['token']}",
                                         method="DELETE")
        urllib.request.urlopen(request, timeout=60)
    deadline = time.monotonic() + 60
    while kernels(lab) != [] and time.monotonic() < deadline:
        time.sleep(0.5)


def wait_until(condition: Callable[[], bool], timeout: float, what: str, page: Any, shots: Path) -> None:
    """Poll ``condition`` until it holds; after ``timeout`` seconds save ``shots/failure.png`` and raise
    AssertionError naming ``what`` and any dialog on the page."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / "failure.png"))
            dialogs = page.locator(".jp-Dialog").all_inner_texts()
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} "
                                 f"(screenshot {shots / 'failure.png'}; dialogs: {dialogs})")
        time.sleep(0.25)


def open_notebook(page: Any, lab: dict[str, Any], name: str, shots: Path, workspace: str = "") -> None:
    """Open ``name`` (relative to the server's root) and wait until its kernel is idle and connected.

    ``workspace``: a JupyterLab workspace of that name, so that the tabs of earlier pages are not
    opened again (with their kernels). JupyterLab may start a kernel, replace it at once and only
    then connect: wait for the kernel of this notebook that the page is connected to, so that
    "Run All" goes to it.
    """
    where = f"workspaces/{workspace}/tree" if workspace else "tree"
    page.goto(f"{lab['base']}/lab/{where}/{name}?token={lab['token']}", timeout=60_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    wait_until(lambda: kernel_connected(lab, name), 90, "the notebook's kernel to be connected", page, shots)


def run_all(page: Any) -> None:
    """Run > Run All Cells, from the menu, as a student does."""
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()


def run_cell(client: Any, code: str, on_busy: Callable[[], None] | None = None, timeout: float = 300) -> str:
    """Execute ``code`` through a ``jupyter_client`` kernel client; ``on_busy()`` once the kernel has
    started it. Returns what it printed and its result's text; an error in the cell raises RuntimeError
    with the cell's traceback."""
    msg_id, text = client.execute(code), []
    while True:
        msg = client.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "status" and content["execution_state"] == "busy" and on_busy:
            on_busy()
        elif kind == "stream":
            text.append(content["text"])
        elif kind == "execute_result":
            text.append(content["data"]["text/plain"])
        elif kind == "error":
            raise RuntimeError(f"the cell failed: {content['ename']}: {content['evalue']}\n" + "\n".join(content["traceback"]))
        elif kind == "status" and content["execution_state"] == "idle":
            return "".join(text)
