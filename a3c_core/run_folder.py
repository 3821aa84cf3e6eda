"""Run storage, the folder: one run's ``config.json``, ``metrics.jsonl`` and ``checkpoints/``.

A :class:`RunFolder` names a new run (``<game>-<date>-<time>``), names its checkpoints by step count
and deletes all but the newest few, and keeps a second run out while one uses it: a lock that the
operating system releases when the process ends, however it ends. What a checkpoint holds is
:mod:`a3c_core.checkpoint`'s.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no run-folder lock
    fcntl = None

from .config import A3CConfig


class RunFolder:
    """The folder of one run: ``config.json``, ``metrics.jsonl``, ``checkpoints/step-<steps>.pt``, ``gifs/``.

    :meth:`open` makes sure that no other live run writes into it (an advisory lock on ``.lock``,
    released by the operating system when the process ends, however it ends) until :meth:`unlock`.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock_file: Any = None

    @classmethod
    def new(cls, parent: str | os.PathLike, game: str) -> "RunFolder":
        """A new, empty ``<parent>/<game>-<date>-<time>`` (``-2``, ``-3`` ... if that exists already)."""
        stem = f"{game}-{time.strftime('%Y%m%d-%H%M%S')}"
        for n in range(1, 1000):
            path = Path(parent) / (stem if n == 1 else f"{stem}-{n}")
            try:
                path.mkdir(parents=True)
                return cls(path)
            except FileExistsError:
                continue
            except OSError as error:
                raise ValueError(f"cannot create a run folder under {parent}: {error.strerror}; choose another "
                                 "run_dir") from error
        raise ValueError(f"{parent} has 1000 runs named {stem}*: choose another run_dir")

    @classmethod
    def of_checkpoint(cls, path: str | os.PathLike) -> "RunFolder":
        """The run folder that holds the checkpoint ``path`` (``<run>/checkpoints/step-....pt``, or a
        checkpoint file elsewhere: its folder)."""
        path = Path(path)
        return cls(path.parent.parent if path.parent.name == "checkpoints" else path.parent)

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    def open(self, config: A3CConfig) -> None:
        """Create the folder if needed, take its lock and write ``config.json``; ``ValueError`` in one
        sentence if that fails."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self.checkpoint_dir.mkdir(exist_ok=True)
            probe = self.path / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            raise ValueError(f"cannot use {self.path} as a run folder: {error.strerror}; choose another run "
                             "folder (--run-dir / --name)") from error
        if fcntl is not None and self._lock_file is None:
            self._lock()
        try:
            (self.path / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
        except OSError as error:
            self.unlock()
            raise ValueError(f"cannot write {self.path / 'config.json'}: {error.strerror}; free some space or "
                             "choose another run folder") from error

    def _lock(self) -> None:
        file = open(self.path / ".lock", "a+")
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            file.seek(0)
            owner = file.read().strip() or "unknown"
            file.close()
            raise ValueError(f"{self.path} is in use by another run (process {owner}): give this run another "
                             "--name, or stop that run first") from None
        file.seek(0)
        file.truncate()
        file.write(str(os.getpid()))
        file.flush()
        self._lock_file = file
        for stale in self.path.rglob("*.tmp"):  # left by a write that was killed (files.atomic_write); the lock
            stale.unlink(missing_ok=True)      # is ours, so no one else writes here

    def unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing releases the flock
            self._lock_file = None

    def checkpoints(self) -> list[Path]:
        """The run's checkpoints, oldest first (by step count, then by the order they were written)."""
        def key(path: Path) -> tuple[int, int]:
            match = re.fullmatch(r"step-(\d+)(?:-(\d+))?", path.stem)
            return (int(match[1]), int(match[2] or 0)) if match else (-1, 0)
        return sorted((p for p in self.checkpoint_dir.glob("step-*.pt") if key(p)[0] >= 0), key=key)

    def checkpoint_path(self, steps: int) -> Path:
        """``step-<steps>.pt``; ``step-<steps>-2.pt`` ... when a checkpoint at that step exists already."""
        path = self.checkpoint_dir / f"step-{steps:012d}.pt"
        n = 2
        while path.exists():
            path = self.checkpoint_dir / f"step-{steps:012d}-{n}.pt"
            n += 1
        return path

    @property
    def gif_dir(self) -> Path:
        """``gifs/``: where the run's GIFs go (:class:`a3c_core.listeners.GifRecorder` writes them)."""
        return self.path / "gifs"

    def gifs(self) -> list[Path]:
        """Every GIF of the run (``gifs/*.gif``: all sessions'), oldest first."""
        return sorted(self.gif_dir.glob("*.gif"), key=lambda path: path.stat().st_mtime)

    def rotate(self, keep: int, spare: Path | None = None) -> None:
        """Delete all but the newest ``keep`` checkpoints, and ``spare`` (the one a resumed run came
        from: a notebook or a script may hold its path and resume from it again)."""
        spared = spare.resolve() if spare is not None else None
        for old in self.checkpoints()[:-keep]:
            if old.resolve() != spared:
                old.unlink(missing_ok=True)
