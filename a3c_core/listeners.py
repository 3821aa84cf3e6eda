"""Everything in the kernel that consumes the children's reports, each through one interface.

A listener is called with every report record, in the order the trainer's reader thread receives
them (``listener(record)``), and may have a ``close()`` that the trainer calls when the run stops:

- :class:`History`: the run's curves as plain lists (the dashboard's plots, the checkpoints);
- :class:`MetricsFile`: every record but frames, one JSON line each, in ``metrics.jsonl``;
- :class:`GifRecorder`: the evaluator's frames of a requested episode, written as a GIF;
- the optional TensorBoard / W&B loggers of :mod:`a3c_core.loggers`.

:class:`Listeners` is all of them as one listener: the trainer calls it with every record.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .files import atomic_write
from .loggers import open_loggers

if TYPE_CHECKING:
    from .config import A3CConfig
    from .run_folder import RunFolder

#: Frames one GIF holds at most (80 s of play at the evaluator's default pace); longer episodes are cut.
GIF_MAX_FRAMES = 1200
#: The record kinds a History keeps, and the list each goes to.
KINDS = {"eval": "evals", "episode": "episodes", "losses": "losses", "error": "errors"}


def compact(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with its keys and text values as the one shared copy of each string (``sys.intern``).

    A record unpickled from a queue brings its own copy of every key, and an hour of Catch at one worker's
    speed sends about 60,000 episodes: kept as they came they take about 950 bytes each, compacted 410."""
    return {sys.intern(key): sys.intern(value) if type(value) is str else value for key, value in record.items()}


@dataclass
class History:
    """Everything reported so far, as plain lists of dicts (checkpoint- and JSON-safe).

    Each record has ``steps`` (agent steps of all workers at that moment) and ``elapsed``
    (training seconds since the run first started, across resumes).
    """

    evals: list[dict[str, Any]] = field(default_factory=list)     # greedy evaluator episodes
    episodes: list[dict[str, Any]] = field(default_factory=list)  # worker training episodes
    losses: list[dict[str, Any]] = field(default_factory=list)    # averaged loss terms per worker
    errors: list[dict[str, Any]] = field(default_factory=list)    # crashes, with tracebacks

    def __call__(self, record: dict[str, Any]) -> None:
        if record["kind"] in KINDS:
            getattr(self, KINDS[record["kind"]]).append(compact(record))

    def summary(self) -> dict[str, Any]:
        """Counts and rewards: episodes, the evaluator's latest score and mean of its last 10, each
        worker's latest reward and mean of its last 10, errors."""
        evals = [e["score"] for e in self.evals]
        per_worker: dict[int, list[float]] = {}
        for episode in self.episodes:
            per_worker.setdefault(episode["rank"], []).append(episode["reward"])
        return {
            "episodes": len(self.episodes),
            "eval_episodes": len(evals),
            "eval_latest": evals[-1] if evals else None,
            "eval_mean10": statistics.fmean(evals[-10:]) if evals else None,
            "workers": {rank: {"latest": rewards[-1], "mean10": statistics.fmean(rewards[-10:]), "episodes": len(rewards)}
                        for rank, rewards in sorted(per_worker.items())},
            "errors": len(self.errors),
        }

    def records(self) -> list[dict[str, Any]]:
        """Every record, in the order of ``elapsed``."""
        return sorted((r for name in KINDS.values() for r in getattr(self, name)), key=lambda r: r.get("elapsed", 0))

    def to_dict(self) -> dict[str, list[dict[str, Any]]]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, list[dict[str, Any]]]) -> "History":
        return cls(**{name: [compact(record) for record in values.get(name, [])] for name in KINDS.values()})


class MetricsFile:
    """``metrics.jsonl``: one JSON line per record (frames left out)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __call__(self, record: dict[str, Any]) -> None:
        if record["kind"] != "frame":
            with open(self.path, "a") as file:
                file.write(json.dumps(record) + "\n")

    def rewrite(self, history: History) -> None:
        """Make the file hold exactly ``history`` (a resumed run drops what came after its checkpoint)."""
        with atomic_write(self.path) as tmp:
            tmp.write_text("".join(json.dumps(record) + "\n" for record in history.records()))


class GifRecorder:
    """Collects the evaluator's frames of its next whole episode and writes them as a GIF.

    :meth:`request` asks for the next episode that starts after the request; the GIF holds the frames
    the evaluator sends (every ``eval_frame_every``-th step) and is written in a background thread
    when the episode ends (or at :data:`GIF_MAX_FRAMES`); its path is then appended to
    :attr:`recordings` and ``say`` tells. :meth:`milestone` keeps the schedule of the automatic GIFs,
    after ``snapshot_minutes`` of training and then at every doubling (30, 60, 120 ... minutes).
    """

    def __init__(self, folder: Path, fps: float, snapshot_minutes: float, say: Callable[[str], None]):
        self.folder, self.fps, self.say = folder, fps, say
        self.next_snapshot = snapshot_minutes
        self.recordings: list[Path] = []            # GIFs written, oldest first
        self.pending: dict[str, Any] | None = None  # name, episode (None until known), frames
        self._writers: list[threading.Thread] = []

    def request(self, name: str) -> None:
        self.pending = {"name": name, "episode": None, "frames": []}
        self.say(f"recording the evaluator's next episode as {name}.gif")

    def milestone(self, elapsed: float) -> str | None:
        """The name of the milestone GIF due after ``elapsed`` training seconds, if one is (and only
        once: the schedule moves past ``elapsed``)."""
        due = None
        while self.next_snapshot and elapsed >= 60 * self.next_snapshot:
            due = f"after-{self.next_snapshot:g}min"
            self.next_snapshot *= 2
        return due

    def __call__(self, record: dict[str, Any]) -> None:
        pending = self.pending
        if pending is None or record["kind"] not in ("frame", "eval"):
            return
        if pending["episode"] is None:  # the episode now playing is under way: wait for the next one
            if record["kind"] == "frame":
                pending["episode"] = record["episode"] + 1
            return
        if record["kind"] == "frame" and record["episode"] == pending["episode"]:
            pending["frames"].append(record["frame"])
            if len(pending["frames"]) < GIF_MAX_FRAMES:
                return
        elif record["episode"] < pending["episode"] or not pending["frames"]:
            return
        self.pending = None
        writer = threading.Thread(target=self._write, args=(self.folder / f"{pending['name']}.gif", pending["frames"]),
                                  name="a3c-gif", daemon=True)
        self._writers = [w for w in self._writers if w.is_alive()] + [writer]
        writer.start()

    def _write(self, path: Path, frames: list[Any]) -> None:
        # Imported here: plots brings matplotlib and imageio, which the training processes never need
        # (they import this package, and so this module, too; their memory is what a class runs on).
        from .plots import save_gif

        save_gif(path, frames, self.fps)
        self.recordings.append(path)
        self.say(f"saved {path} ({len(frames)} frames)")

    def close(self) -> str | None:
        """Wait for the GIFs being written; the name of a requested GIF whose episode did not finish."""
        for writer in self._writers:
            writer.join(30)
        self._writers.clear()
        unfinished, self.pending = self.pending, None
        return None if unfinished is None else unfinished["name"]


class Listeners:
    """The run's listeners as one: its :class:`History`, :class:`MetricsFile`, :class:`GifRecorder`, the
    loggers (open while the run runs) and ``extra`` (anyone's: called with every record too)."""

    def __init__(self, folder: RunFolder, config: A3CConfig, say: Callable[[str], None]):
        self.run_dir, self.say, self.history = folder.path, say, History()
        self.metrics = MetricsFile(folder.path / "metrics.jsonl")
        fps = (config.eval_steps_per_second or 30.0) / max(1, config.eval_frame_every)  # the evaluator's frames/s
        self.gifs = GifRecorder(folder.gif_dir, fps, config.snapshot_minutes, say)
        self.loggers: list[Any] = []
        self.extra: list[Callable[[dict[str, Any]], None]] = []
        self.rewrite_metrics = False  # set on resume: the next open() rewrites metrics.jsonl

    def open(self, config: A3CConfig) -> None:
        """Open the loggers installed here (:func:`a3c_core.loggers.open_loggers`); after a resume, first
        make ``metrics.jsonl`` hold exactly the history (what came after the checkpoint never happened)."""
        if self.rewrite_metrics:
            self.metrics.rewrite(self.history)
            self.rewrite_metrics = False
        self.loggers = open_loggers(self.run_dir, config.frames_per_step, config.to_dict())

    def __call__(self, record: dict[str, Any]) -> list[tuple[str, str]]:
        """Pass ``record`` to every listener. A logger or an ``extra`` listener that raises leaves the run (the
        others still hear every record): returned as ``(name, traceback)``, for the caller to report once."""
        for listener in (self.history, self.metrics, self.gifs):
            listener(record)
        failed = []
        for group in (self.loggers, self.extra):
            for listener in list(group):
                try:
                    listener(record)
                except Exception:
                    group.remove(listener)
                    failed.append((getattr(listener, "__name__", type(listener).__name__), traceback.format_exc()))
        return failed

    def close(self) -> None:
        """Close the loggers and wait for the GIFs being written; say which requested GIF's episode did not
        finish (it is not saved)."""
        for logger in self.loggers:
            logger.close()
        self.loggers = []
        unfinished = self.gifs.close()
        if unfinished:
            self.say(f"the evaluator's episode for {unfinished}.gif did not finish: not saved")
