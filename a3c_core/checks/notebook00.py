"""The checks of notebook 00: is everything installed? (the set-up checks)."""

from __future__ import annotations

import importlib
import multiprocessing
import os
import sys
import warnings


from ..resources import core_limits
from .exercise import CheckResult


INSTALL_ADVICE = "from the repository root, run `make lab` (or `pip install -e .` in your environment)"


def rom_present(game: str) -> CheckResult:
    """Whether ale-py ships the ROM of ``game`` (an ALE name such as ``"pong"`` or ``"space_invaders"``)."""
    try:
        import ale_py.roms
        with warnings.catch_warnings():  # ale-py warns about an unknown name; the verdict says it better
            warnings.simplefilter("ignore")
            path = ale_py.roms.get_rom_path(game)
    except Exception as error:  # an old or broken ale-py: say so, with the fix
        return CheckResult(False, f"Could not look up the {game} ROM ({type(error).__name__}: {error}); install "
                                  f"ale-py >= 0.9, which ships the ROMs: {INSTALL_ADVICE}.")
    if path is None or not os.path.exists(path):
        return CheckResult(False, f"ale-py has no ROM for {game!r}; ale-py >= 0.9 ships Pong and Space Invaders: "
                                  f"{INSTALL_ADVICE}.")
    return CheckResult(True, f"ROM for {game} found ({os.path.basename(path)}).")


def setup() -> list[CheckResult]:
    """Everything the lessons need, one verdict per item: Python, packages, ROMs, cores, ``spawn``."""
    new_enough, cores = sys.version_info >= (3, 10), core_limits()
    results = [CheckResult(new_enough, f"Python {'.'.join(map(str, sys.version_info[:3]))}" + (
        "." if new_enough else f"; the lessons need 3.10 or newer: {INSTALL_ADVICE}."))]
    for package in ("torch", "gymnasium", "ale_py", "numpy", "cv2", "matplotlib", "ipywidgets"):
        try:
            module = importlib.import_module(package)
        except ImportError as error:
            results.append(CheckResult(False, f"{package} is missing ({error}): {INSTALL_ADVICE}."))
        else:
            results.append(CheckResult(True, f"{package} {getattr(module, '__version__', '(version unknown)')}."))
    spawn = "spawn" in multiprocessing.get_all_start_methods()
    return results + [rom_present("pong"), rom_present("space_invaders"), CheckResult(
        True, f"CPU cores this kernel may use: {cores.describe()}" + (
        "; training runs one worker per core." if cores.usable >= 2 else
        "; training runs one worker beside the evaluator: it works, more slowly than on two cores.")),
        CheckResult(spawn, "The 'spawn' start method is available." if spawn else
                    "The 'spawn' start method is missing, which the trainer needs: use CPython 3.10+.")]
