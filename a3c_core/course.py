"""Where the notebooks and the shipped agents are, wherever the package was installed from.

The notebooks read the shipped agents as ``../data/...`` and write their runs to ``runs/``, both
relative to the notebooks' folder. In a clone of the repository that folder is ``notebooks/``; a
plain ``pip install`` of the repository (no clone kept, or Colab) installs them (and the measurements
notebook 09 draws, ``benchmarks/results/*.json``) under ``<prefix>/share/a3c-lab/``, from where :func:`enter_course` copies them to a folder of the user's.
``python -m a3c_core lab`` (the ``a3c-lab lab`` command) does what ``make lab`` does, without make.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

#: Where ``pip install`` puts the notebooks and data/ (pyproject.toml's data-files), under the prefix.
SHARE = Path("share") / "a3c-lab"
#: The folder a copy of the course goes to when none is found around the working directory.
COPY_NAME = "a3c-lab"
#: What a copy of the course holds, relative to its root: each folder that the source has.
COURSE_FOLDERS = ("notebooks", "data", "benchmarks/results")


def is_course(folder: Path) -> bool:
    """Whether ``folder`` holds the series: ``notebooks/`` (with notebook 00) and ``data/`` side by side."""
    return (folder / "notebooks" / "00_setup.ipynb").is_file() and (folder / "data").is_dir()


def source_tree() -> Path | None:
    """The repository this package runs from (a clone, an editable install), if it does."""
    here = Path(__file__).resolve().parent.parent
    return here if is_course(here) else None


def course_root() -> Path | None:
    """The series: :func:`source_tree`, else the copy ``pip install`` made under ``share/a3c-lab`` of
    the environment or of the user (read it, never write into it: :func:`copy_course`)."""
    for folder in (source_tree(), Path(sys.prefix) / SHARE, Path(site.getuserbase()) / SHARE):
        if folder is not None and is_course(folder):
            return folder
    return None


def copy_course(target: Path, solutions: bool = True) -> Path:
    """``target`` with the series in it: copied from :func:`course_root` unless it holds one already;
    without ``notebooks/solutions`` if not ``solutions`` (a graded class's students)."""
    if is_course(target):
        return target
    source = course_root()
    if source is None:
        raise FileNotFoundError("the notebooks are not installed with the package: install it from the "
                                "repository (pip install <clone or address>), not from a wheel built without them")
    for name in COURSE_FOLDERS:
        if (source / name).is_dir():
            shutil.copytree(source / name, target / name, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("runs", ".ipynb_checkpoints", "__pycache__",
                                                          *([] if solutions else ["solutions"])))
    return target


def enter_course(cwd: Path | None = None) -> Path:
    """Make the notebooks' folder the working directory, so that ``../data`` and ``runs/`` work.

    Nothing changes where a notebook is: JupyterLab starts a notebook's kernel in the notebook's
    folder, the series' own or one of yours. From a folder that holds the series (a clone's root, a
    student's home on the classroom hub) it moves into its ``notebooks/``; from a folder without
    notebooks (Colab starts kernels in /content, a script anywhere) into ``./a3c-lab/notebooks``,
    copying the series there first if it is not there yet. It says where it moved.
    """
    cwd = Path.cwd() if cwd is None else cwd
    if any(cwd.glob("*.ipynb")):
        return cwd
    root = cwd if is_course(cwd) else copy_course(cwd / COPY_NAME)
    os.chdir(root / "notebooks")
    print(f"working directory: {root / 'notebooks'} (the notebooks' folder: ../data holds the shipped agents)")
    return root / "notebooks"


def lab_command(root: Path, extra: list[str]) -> list[str]:
    """The JupyterLab command that opens the series in ``root``: ``--allow-root`` as root, as ``make lab``."""
    as_root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    return [sys.executable, "-m", "jupyterlab", str(root / "notebooks"), *as_root, *extra]


def open_lab(folder: str | None, extra: list[str]) -> int:
    """``a3c-lab lab``: the clone's notebooks, or a copy of the installed ones in ``folder`` (default
    ``./a3c-lab``), opened in JupyterLab. Returns JupyterLab's exit code."""
    root = source_tree() if folder is None else None
    root = root or copy_course(Path(folder or COPY_NAME).resolve())
    print(f"opening {root / 'notebooks'} in JupyterLab (Ctrl-C twice to stop it)", flush=True)
    try:
        return subprocess.call(lab_command(root, extra))
    except KeyboardInterrupt:
        return 130
