"""Run All in JupyterLab, as a student does it, for each notebook of the series: how long it takes,
and whether it ends without a traceback.

    .venv/bin/python benchmarks/lab_run_all.py                          # every notebook
    .venv/bin/python benchmarks/lab_run_all.py 00_setup 05_training_live
    .venv/bin/python benchmarks/lab_run_all.py --make                   # a fresh clone, started by `make lab`
    .venv/bin/python benchmarks/lab_run_all.py --busy 2 --out benchmarks/results/lab_run_all_loaded.json
    .venv/bin/python benchmarks/lab_run_all.py 04_loss --merge          # one changed notebook, measured again

The notebooks run with their committed parameters (not the tests' smoke mode), in a copy under
``--work`` (with links to ``data/`` and ``benchmarks/``), so the checkout's notebooks stay without
outputs; with ``--make`` the copy is a ``git clone`` of this repository's HEAD, and JupyterLab is
started by ``make lab`` in it: the README's first command, environment build included (its minutes
are reported too). For each notebook, in headless Chromium: open it, Run > Run All Cells, wait until
no cell is queued or running, save, and read the saved file: the seconds from the click to the end,
the code cells that ran, the error outputs (tracebacks) and the stderr outputs. Then its kernel is
shut down, and any process it leaves behind is reported (and stopped).

Writes the results to ``--out`` (JSON, after every notebook) and prints a markdown table, with the
machine's load beside it (minutes depend on it). ``--busy N`` runs N busy loops (one core each) for the
whole measurement, as on a machine that others share. The series states one set of times, these two
(``benchmarks/results/lab_run_all.json`` idle, ``lab_run_all_loaded.json`` beside two busy loops):
the README's table and each notebook's first cell (:data:`PROMISE`), checked by
``tests/test_time_table.py``. ``--merge`` measures the named notebooks again into ``--out``'s record, in
place of their earlier results (each result says the commit it was measured at), under the record's own
``--busy`` count: a notebook whose code changed is measured again without measuring all ten.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from lab import (CHROMIUM, CHROMIUM_ARGS, group_members, interrupt_kernels, jupyterlab, kernels,  # noqa: E402
                 open_notebook, run_all, shut_down_sessions, wait_until)

#: The prompt of a cell that ran or is queued/running: "[3]:" or "[*]:" (not "[ ]:").
STARTED = re.compile(r"\[(\*|\d+)\]:")
NOTEBOOKS = sorted(path.stem for path in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
#: What each notebook's first cell says of its Run All, with :func:`duration` of the two measurements.
PROMISE = "*Run All* takes {idle} on 2 idle cores, {loaded} beside two busy loops"


def prepare(work: Path, make: bool) -> tuple[Path, Path | None]:
    """The folder JupyterLab serves, and the repository to run ``make lab`` in (``--make``) or None."""
    if make:
        clone = work / "a3c-lab"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        return clone / "notebooks", clone
    copy = work / "a3c-lab"
    shutil.copytree(ROOT / "notebooks", copy / "notebooks", ignore=shutil.ignore_patterns("runs", ".ipynb_checkpoints"))
    for folder in ("data", "benchmarks"):
        (copy / folder).symlink_to(ROOT / folder)
    return copy / "notebooks", None


def prompts(page: Any) -> list[str]:
    """The execution prompt of every code cell on the page: "[3]:", "[*]:" (queued or running) or "[ ]:"."""
    return [text.strip() for text in page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()]


def read_saved(path: Path) -> dict[str, Any]:
    """What the saved notebook holds: code cells run, error outputs, first lines of stderr outputs."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    code = [(i, cell) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    errors, stderr = [], []
    for i, cell in code:
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                errors.append(f"cell {i}: {output.ename}: {output.evalue}"[:300])
            elif output.output_type == "stream" and output.name == "stderr" and output.text.strip():
                stderr.append(f"cell {i}: {output.text.strip().splitlines()[0]}"[:200])
    return {"code_cells": len(code), "ran": sum(cell.execution_count is not None for _, cell in code),
            "errors": errors, "stderr": stderr}


def run_notebook(browser: Any, lab: dict[str, Any], name: str, timeout: float, shots: Path) -> dict[str, Any]:
    """Open ``name``.ipynb in a page of its own, Run All, wait for the end, save, close the page and
    end the kernel; returns the measurements (``status`` says why, if the page did not get there)."""
    path = Path(lab["root"]) / f"{name}.ipynb"
    server_processes = set(group_members(lab["pgid"]))
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(30_000)
    try:
        result = {"notebook": name, **_run_in(page, lab, path, timeout, shots)}
    except AssertionError as error:  # a wait that timed out: say which, and go on with the next notebook
        result = {"notebook": name, "status": f"failed: {error}", "seconds": 0.0, **read_saved(path)}
    finally:
        page.close()
    shut_down_sessions(lab)
    deadline = time.monotonic() + 30
    while set(group_members(lab["pgid"])) - server_processes and time.monotonic() < deadline:
        time.sleep(0.5)
    left = sorted(set(group_members(lab["pgid"])) - server_processes)
    for pid in left:
        os.kill(pid, 9)
    result["processes_left"] = len(left)
    return result


def _run_in(page: Any, lab: dict[str, Any], path: Path, timeout: float, shots: Path) -> dict[str, Any]:
    name = path.stem
    open_notebook(page, lab, path.name, shots, workspace=f"run-all-{name}")
    saved_before = path.stat().st_mtime
    run_all(page)
    start = time.monotonic()
    wait_until(lambda: any(STARTED.fullmatch(p) for p in prompts(page)), 120, f"{name}'s first cell to start",
               page, shots)
    status, quiet = "finished", 0
    while quiet < 2:  # the kernel idle and no cell queued, twice in a row a second apart
        time.sleep(1.0)
        found = kernels(lab) or []
        idle = bool(found) and all(k["execution_state"] == "idle" for k in found)
        quiet = quiet + 1 if idle and not any("*" in p for p in prompts(page)) else 0
        if time.monotonic() - start > timeout:
            status = "timed out"
            interrupt_kernels(lab)
            time.sleep(5)
            break
    seconds = time.monotonic() - start - (2.0 if status == "finished" else 0.0)
    page.screenshot(path=str(shots / f"{name}.png"))
    page.keyboard.press("Control+s")
    wait_until(lambda: path.stat().st_mtime > saved_before, 60, f"{name} to be saved", page, shots)
    time.sleep(1.0)  # the save is written in one go, but give the file system a moment
    return {"status": status, "seconds": round(seconds, 1), **read_saved(path)}


def duration(seconds: float) -> str:
    """``42.3`` -> ``"42 s"``; ``150`` -> ``"2.5 min"``."""
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| notebook | Run All | code cells run | tracebacks | stderr outputs |", "|---|---:|---:|---:|---:|"]
    for r in results:
        took = duration(r["seconds"]) + ("" if r["status"] == "finished" else f" ({r['status']})")
        lines.append(f"| {r['notebook']} | {took} | {r['ran']} / {r['code_cells']} | {len(r['errors'])} "
                     f"| {len(r['stderr'])} |")
    return "\n".join(lines)


def merge_into(path: Path, busy: int, names: list[str], refuse: Any) -> dict[str, Any]:
    """The record in ``path`` without the results of ``names`` (measured again next); ``refuse(message)``
    if there is no such record or it was measured beside another number of busy loops."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        refuse(f"--merge needs an earlier record in {path}: {error}")
    if record.get("busy_loops", 0) != busy or record.get("cores") != os.cpu_count():
        refuse(f"{path} was measured beside {record.get('busy_loops', 0)} busy loops on {record.get('cores')} cores; "
               f"measure again with --busy {record.get('busy_loops', 0)} on such a machine, or all notebooks anew")
    record["results"] = [r for r in record["results"] if r["notebook"] not in names]
    return record


@contextlib.contextmanager
def busy_loops(count: int) -> Iterator[None]:
    """``count`` processes that each keep one core busy, stopped on leaving."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                        help=f"names without .ipynb (default: all of {NOTEBOOKS[0]}..{NOTEBOOKS[-1]})")
    parser.add_argument("--make", action="store_true", help="a fresh clone of HEAD, started with `make lab`")
    parser.add_argument("--timeout", type=float, default=900, help="seconds one notebook may take (default 900)")
    parser.add_argument("--work", type=Path, help="folder for the copy, settings and screenshots (default: temporary)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "lab_run_all.json")
    parser.add_argument("--merge", action="store_true",
                        help="put the named notebooks' new results into --out's record in place of their old ones")
    parser.add_argument("--busy", type=int, default=0, metavar="N",
                        help="run N busy loops beside the measurement, one core each (default 0)")
    args = parser.parse_args()
    names = [name.removesuffix(".ipynb") for name in args.notebooks] or NOTEBOOKS
    unknown = [name for name in names if name not in NOTEBOOKS]
    if unknown:
        parser.error(f"no notebook named {', '.join(unknown)}: choose from {', '.join(NOTEBOOKS)}")
    if not CHROMIUM.exists():
        parser.error(f"{CHROMIUM} not found: install it with `make browser` (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        parser.error("Playwright is not installed in this environment: pip install -e '.[test]'")
    if args.timeout <= 0:
        parser.error(f"--timeout must be a positive number of seconds, got {args.timeout}")
    if not 0 <= args.busy <= 64:
        parser.error(f"--busy must be a number of busy loops from 0 to 64, got {args.busy}")

    work = args.work or Path(tempfile.mkdtemp(prefix="lab-run-all-"))
    work.mkdir(parents=True, exist_ok=True)
    shots = work / "screenshots"
    shots.mkdir(exist_ok=True)
    served, make_in = prepare(work, args.make)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    record: dict[str, Any] = {"commit": commit, "make": args.make, "user": os.environ.get("USER") or str(os.geteuid()),
                              "cores": os.cpu_count(), "busy_loops": args.busy, "load_before": os.getloadavg()[0],
                              "results": []}
    started_at_load = record["load_before"]
    if args.merge:
        record = merge_into(args.out, args.busy, names, parser.error)
    print(f"JupyterLab on {served}" + (" (make lab: builds the environment first)" if args.make else "")
          + (f", beside {args.busy} busy loops" if args.busy else ""), flush=True)
    start = time.monotonic()
    with busy_loops(args.busy), jupyterlab(served, work, make_in) as lab:
        record["server_start_seconds"] = round(time.monotonic() - start, 1)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
            try:
                for name in names:
                    load_before = os.getloadavg()[0]
                    print(f"  {name}: Run All ...", end="", flush=True)
                    result = {**run_notebook(browser, lab, name, args.timeout, shots), "commit": commit,
                              "load_before": round(load_before, 2)}
                    record["results"].append(result)
                    record["results"].sort(key=lambda r: NOTEBOOKS.index(r["notebook"]))
                    print(f" {result['status']} in {duration(result['seconds'])}, {result['ran']}/"
                          f"{result['code_cells']} cells, {len(result['errors'])} tracebacks", flush=True)
                    for line in result["errors"]:
                        print(f"    {line}")
                    record["load_after"] = os.getloadavg()[0]
                    args.out.parent.mkdir(parents=True, exist_ok=True)
                    args.out.write_text(json.dumps(record, indent=1))
            finally:
                browser.close()
    print(f"\nJupyterLab answered after {record['server_start_seconds']:.0f} s; load average "
          f"{started_at_load:.1f} before, {record.get('load_after', 0):.1f} after, on {record['cores']} cores; "
          f"commit {commit}; screenshots in {shots}\n")
    print(table([r for r in record["results"] if r["notebook"] in names]))
    failed = [r for r in record["results"] if r["notebook"] in names
              and (r["status"] != "finished" or r["errors"] or r["ran"] < r["code_cells"])]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
