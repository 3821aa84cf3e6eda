"""The set-up files: environment.yml and pyproject.toml name the same packages with the same pins; the
Makefile starts JupyterLab as root too, and can take PyTorch's CPU wheels."""

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def requirement_map(lines):
    out = {}
    for line in lines:
        name = re.split(r"[<>=!~\[ ;]", line, maxsplit=1)[0].strip().lower().replace("_", "-")
        out[name] = line[len(name):].replace(" ", "")
    return out


def test_environment_yml_and_pyproject_agree():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    pip_lines = [line.strip()[2:] for line in (ROOT / "environment.yml").read_text().splitlines()
                 if line.startswith("      - ")]
    assert requirement_map(pip_lines) == requirement_map(wanted)


def test_torch_is_pinned_to_the_version_on_disk():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "torch==2.13.0" in project["dependencies"]


def make_dry_run(*args: str) -> str:
    """What ``make -n args`` would run, from the repository root (nothing is run)."""
    return subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def test_make_lab_adds_allow_root_only_for_root():
    lab = [line for line in make_dry_run("lab", "-o", ".venv/.installed").splitlines() if "jupyter lab" in line]
    assert len(lab) == 1
    assert ("--allow-root" in lab[0]) == (os.getuid() == 0), lab[0]


def test_torch_index_is_an_extra_index_for_pip_and_off_by_default():
    stamp = ["-W", "pyproject.toml", ".venv/.installed"]  # as if pyproject.toml had changed: show the install
    default = [line for line in make_dry_run(*stamp).splitlines() if "pip install" in line and "-e" in line]
    cpu = [line for line in make_dry_run(*stamp, "TORCH_INDEX=https://download.pytorch.org/whl/cpu").splitlines()
           if "pip install" in line and "-e" in line]
    assert len(default) == len(cpu) == 1
    assert "index-url" not in default[0]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in cpu[0]


def test_readme_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make lab" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_make_test_keeps_each_xdist_group_in_one_test_process(tmp_path):
    # `make test` runs pytest -n 2 --dist loadgroup: the notebook tests must share one process (the claims
    # tests' smoke runs are reused) and so must the Ray tests (one cluster). Two files of one group here.
    assert "-n $(TEST_WORKERS) --dist loadgroup" in (ROOT / "Makefile").read_text()
    for name in ("a", "b"):
        (tmp_path / f"test_{name}.py").write_text(
            "import pytest\npytestmark = pytest.mark.xdist_group('one')\n\n"
            "@pytest.mark.parametrize('i', range(3))\ndef test_where(i):\n    pass\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider",
                             "-v", str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    workers = re.findall(r"\[(gw\d+)\] .*PASSED", result.stdout)  # the worker that ran each test
    assert len(workers) == 6 and len(set(workers)) == 1, result.stdout
