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


def test_binder_builds_the_environment_and_installs_the_package(tmp_path):
    """repo2docker (Binder's builder) turns the repository into a Dockerfile: environment.yml's packages,
    then postBuild's install of the package. No image is built here (no container engine on these
    machines); what is checked is what repo2docker itself derives from the files."""
    import shutil
    repo2docker = shutil.which("repo2docker") or str(Path(sys.executable).with_name("repo2docker"))
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tmp_path / name)
    out = subprocess.run([repo2docker, "--no-build", "--no-run", "--debug", str(tmp_path)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    dockerfile = out.stdout + out.stderr
    assert '--file "environment.yml"' in dockerfile and "RUN ./postBuild" in dockerfile
    assert "pip install --no-deps -e ." in (ROOT / "postBuild").read_text()
