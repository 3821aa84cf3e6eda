"""Where the notebooks are, wherever the package runs from; `a3c-lab lab`; the CLI's default workers."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from a3c_core import course
from conftest import cli

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "a3c_core"]


@pytest.fixture
def back_home():
    cwd = os.getcwd()
    yield
    os.chdir(cwd)


def test_the_clone_is_the_course() -> None:
    assert course.source_tree() == ROOT and course.course_root() == ROOT
    assert course.is_course(ROOT) and not course.is_course(ROOT / "notebooks")


def test_a_kernel_in_the_notebooks_folder_stays_there(back_home) -> None:
    assert course.enter_course(ROOT / "notebooks") == ROOT / "notebooks"


def test_a_kernel_beside_a_notebook_of_your_own_stays_there(tmp_path: Path, back_home) -> None:
    (tmp_path / "mine.ipynb").write_text("{}")
    assert course.enter_course(tmp_path) == tmp_path and not (tmp_path / "a3c-lab").exists()


def test_from_elsewhere_the_series_is_copied_once_and_entered(tmp_path: Path, back_home, capsys) -> None:
    entered = course.enter_course(tmp_path)
    assert entered == tmp_path / "a3c-lab" / "notebooks" and Path.cwd() == entered
    assert (Path("..") / "data" / "pong-fast-sticky.pt").exists()          # what the notebooks read
    assert list((Path("..") / "benchmarks" / "results").glob("ray_overhead*.json"))  # what notebook 09 draws
    assert sorted(p.name for p in entered.glob("0*.ipynb")) == sorted(p.name for p in (ROOT / "notebooks").glob("0*.ipynb"))
    assert "working directory:" in capsys.readouterr().out
    (entered / "runs").mkdir()
    assert course.enter_course(tmp_path) == entered and (entered / "runs").is_dir()  # not copied again


def test_from_a_folder_that_holds_the_series_it_moves_into_its_notebooks(tmp_path: Path, back_home) -> None:
    course.copy_course(tmp_path / "home")
    assert course.enter_course(tmp_path / "home") == tmp_path / "home" / "notebooks"
    assert not (tmp_path / "home" / "a3c-lab").exists()


def test_a_graded_class_gets_the_series_without_the_reference_solutions(tmp_path: Path) -> None:
    self_study, graded = course.copy_course(tmp_path / "self"), course.copy_course(tmp_path / "graded", solutions=False)
    assert sorted((self_study / "notebooks" / "solutions").glob("solutions_*.py"))
    assert not (graded / "notebooks" / "solutions").exists()
    assert sorted(p.name for p in (graded / "notebooks").glob("0*.ipynb")) == sorted(
        p.name for p in (self_study / "notebooks").glob("0*.ipynb"))


def test_without_the_series_installed_one_sentence_says_how(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(course, "course_root", lambda: None)
    with pytest.raises(FileNotFoundError, match="install it from the repository"):
        course.copy_course(tmp_path / "x")


def test_lab_command_is_jupyterlab_on_the_notebooks_with_allow_root_as_root() -> None:
    command = course.lab_command(ROOT, ["--no-browser"])
    assert command[:4] == [sys.executable, "-m", "jupyterlab", str(ROOT / "notebooks")]
    assert ("--allow-root" in command) == (os.geteuid() == 0) and command[-1] == "--no-browser"


def test_lab_with_a_folder_it_cannot_write_says_so_in_one_sentence() -> None:
    result = subprocess.run(CLI + ["lab", "--dir", "/proc/a3c-lab-cannot-be-here"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    result = cli("play", "x.pt", "--no-such-option")
    assert result.returncode == 2 and "unrecognized arguments: --no-such-option" in result.stderr


def test_the_cli_starts_no_more_workers_than_the_cores_it_may_use(tmp_path: Path) -> None:
    env = {"CPU_LIMIT": "1"}
    result = cli("train", "--preset", "catch", "--max-steps", "200", "--run-dir", str(tmp_path), "--name", "limited",
                 env=env)
    assert result.returncode == 0, result.stderr
    assert "[a3c] 1 worker: this process may use 1 core (" in result.stderr and "CPU_LIMIT 1" in result.stderr
    assert json.loads((tmp_path / "limited" / "config.json").read_text())["workers"] == 1
    chosen = cli("train", "--preset", "catch", "--workers", "2", "--max-steps", "200", "--run-dir", str(tmp_path),
                 "--name", "chosen", env=env)
    assert chosen.returncode == 0 and "this process may use" not in chosen.stderr
    assert json.loads((tmp_path / "chosen" / "config.json").read_text())["workers"] == 2
