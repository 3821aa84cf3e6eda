"""The paths without make: a fresh virtual environment with Python 3.12 (what Colab runs), a plain
``pip install`` of the repository (not editable, no make), ``a3c-lab lab`` for JupyterLab, and every
notebook executed from a working directory outside the repository (Colab starts in /content).

The environment is new for every run of this file. What it downloads is kept in a folder of wheels
(``~/.cache/a3c-lab/wheels-py312``): PyTorch 2.13.0 for Python 3.12 comes from PyPI as its CUDA build,
about 3 GB with its nvidia packages, which the first run on a machine downloads (several minutes).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WHEELS = Path.home() / ".cache" / "a3c-lab" / "wheels-py312"
pytestmark = pytest.mark.slow


def python312() -> str | None:
    """A Python 3.12 that runs: pyenv's own build, else one on PATH (pyenv's shim there runs only where
    pyenv has selected 3.12, so it is asked to run before it is taken)."""
    pyenv = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")))
    for candidate in pyenv[-1:] + [shutil.which("python3.12")]:
        if candidate and subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0:
            return candidate
    return None


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    python = python312()
    if python is None:
        pytest.skip("needs Python 3.12 (python3.12 on PATH, or pyenv's); Colab runs 3.12")
    folder = tmp_path_factory.mktemp("py312") / "venv"
    subprocess.run([python, "-m", "venv", str(folder)], check=True)
    # A copy of the working tree, as a clone would be: pip builds from it, and nothing points back at it.
    source = tmp_path_factory.mktemp("source") / "a3c-lab"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".venv", ".git", "runs", "tests", "*.egg-info",
                                                                "build", "__pycache__", ".pytest_cache"))
    pip = [str(folder / "bin" / "python"), "-m", "pip"]
    WHEELS.mkdir(parents=True, exist_ok=True)
    if not list(WHEELS.glob("torch-2.13.0-cp312-*.whl")):  # the first run on this machine: download once
        out = subprocess.run(pip + ["download", "--quiet", "--dest", str(WHEELS), f"{source}[test,cluster]"],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-3000:]
        for built in WHEELS.glob("a3c_lab-*"):  # the project itself is installed from the source below
            built.unlink()
    out = subprocess.run(pip + ["install", "--quiet", "--find-links", str(WHEELS), f"{source}[test,cluster]"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    shutil.rmtree(source)  # the installed package must not need the source any more
    return folder


def test_a_plain_pip_install_runs_every_notebook_from_another_directory(venv: Path, tmp_path: Path) -> None:
    python = venv / "bin" / "python"
    version = subprocess.run([str(python), "-c", "import sys, a3c_core; print(sys.version_info[:2], a3c_core.__file__)"],
                             capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert version.startswith("(3, 12)") and "site-packages" in version, version  # not the repository's copy
    elsewhere = tmp_path / "content"
    elsewhere.mkdir()
    out = subprocess.run([str(python), str(REPO / "tests" / "run_notebooks.py"),
                          str(venv / "share" / "a3c-lab" / "notebooks"), str(elsewhere)],
                         capture_output=True, text=True, timeout=3600, cwd=elsewhere)
    print(out.stdout)
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-3000:]
    assert (elsewhere / "a3c-lab" / "notebooks" / "00_setup.ipynb").exists()  # the copy the notebooks work in
    assert list((elsewhere / "a3c-lab" / "notebooks" / "runs").iterdir())     # notebook 05's run went there


def test_a3c_lab_lab_opens_jupyterlab_without_make(venv: Path, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [str(venv / "bin" / "a3c-lab"), "lab", "--dir", str(tmp_path / "course"), "--no-browser",
               "--ip=127.0.0.1", f"--port={port}", "--ServerApp.token=classroom"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    import requests
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                reply = requests.get(f"http://127.0.0.1:{port}/api/contents/05_training_live.ipynb?token=classroom",
                                     timeout=5)
                if reply.ok:
                    break
            except requests.ConnectionError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, process.stdout.read()[-3000:]
            time.sleep(1)
        assert reply.json()["type"] == "notebook"
        assert (tmp_path / "course" / "data" / "pong-fast-sticky.pt").exists()
    finally:
        os.killpg(process.pid, 15)
        process.wait(30)
    bad = subprocess.run([str(venv / "bin" / "a3c-lab"), "lab", "--dir", "/proc/a3c-lab-cannot-be-here"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "error:" in bad.stderr, bad.stderr
