"""The kernel-side handle of a training run: starts, watches, checkpoints and stops the processes.

::

    trainer = Trainer(A3CConfig.preset("fast", game="catch", workers=2))
    trainer.start()          # returns at once; workers and the evaluator train in the background
    trainer.status()         # frames, frames/s, rewards ...
    trainer.stop()           # cooperative stop, then a final checkpoint

One background thread in this process (the *reader*) drains the report queue into
:class:`History`, appends every record to ``metrics.jsonl`` in the run folder, restarts crashed
workers, writes periodic checkpoints, records GIFs of the evaluator's episodes (on request and at
the ``snapshot_minutes`` milestones) and stops the run at ``max_steps`` / ``max_minutes``.
Children watch their parent: if this process dies, they exit by themselves.

Pausing is ``stop()`` then ``start()``: the model, the optimizer state, the counters and the
history stay in the trainer, so the run (and its reward curve) continues where it stopped.
"""

from __future__ import annotations

import atexit
import json
import multiprocessing as mp
import queue as queue_module
import statistics
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import A3CConfig
from .envs import action_names, make_env
from .evaluator import run_evaluator
from .loggers import open_loggers
from .model import ActorCritic
from .plots import save_gif
from .shared import SharedAdam
from .worker import run_worker

#: Reports waiting in the queue at most; beyond that, children drop them (frames first in practice).
QUEUE_SIZE = 2000
#: Seconds a stop waits for processes to finish their update before terminating them.
STOP_TIMEOUT = 15.0
#: Frames one GIF holds at most (80 s of play at the evaluator's default pace); longer episodes are cut.
GIF_MAX_FRAMES = 1200


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

    def to_dict(self) -> dict[str, list[dict[str, Any]]]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, list[dict[str, Any]]]) -> "History":
        return cls(**{key: list(values.get(key, [])) for key in ("evals", "episodes", "losses", "errors")})


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


class Trainer:
    """Owns the shared model and optimizer, the counters, the queue, the stop event and the processes.

    Args:
        config: the run's settings.
        run_dir: folder for ``metrics.jsonl``, ``config.json`` and ``checkpoints/``; default
            ``<config.run_dir>/<game>-<date>-<time>``.
        verbose: print what happens (start, stop, crashes, checkpoints).
    """

    def __init__(self, config: A3CConfig, run_dir: str | Path | None = None, verbose: bool = True):
        self.config = config
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.run_dir = Path(run_dir) if run_dir else Path(config.run_dir) / f"{config.game}-{stamp}"
        self.verbose = verbose
        env = make_env(config)
        self.action_names = action_names(env)
        env.close()
        self.model = ActorCritic.from_config(config, len(self.action_names)).share_memory()
        self.optimizer = SharedAdam(self.model.parameters(), lr=config.lr)
        self.history = History()
        self.latest_frame: dict[str, Any] | None = None
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self.restarts = 0
        self.recordings: list[Path] = []             # GIFs written by this trainer, oldest first
        self._recording: dict[str, Any] | None = None  # the GIF being collected: name, episode, frames
        self._gif_writers: list[threading.Thread] = []
        self._loggers: list[Any] = []                  # TensorBoard / W&B, when installed (loggers.py)
        self._next_snapshot = config.snapshot_minutes  # training minutes of the next milestone GIF

        self._ctx = mp.get_context("spawn")
        self._steps = self._ctx.Value("q", 0)
        self._stop_event = self._ctx.Event()
        self._queue = self._ctx.Queue(maxsize=QUEUE_SIZE)
        self._processes: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._stopped = threading.Event()       # clear from start() until stop() has saved: see running
        self._stopped.set()
        self._reader: threading.Thread | None = None
        self._elapsed_before = 0.0
        self._started_at: float | None = None  # wall-clock time of the current start()
        self._rate = deque(maxlen=30)           # (time, steps) samples for frames/s
        self._last_checkpoint = 0.0
        self._checkpoints: list[Path] = []
        atexit.register(self._finish)

    # -------------------------------------------------------------------------------- life cycle
    @property
    def running(self) -> bool:
        """True from ``start()`` until ``stop()`` has ended: processes joined and the checkpoint written."""
        return not self._stopped.is_set()

    @property
    def steps(self) -> int:
        """Agent steps taken by all workers (across resumes)."""
        return int(self._steps.value)

    @property
    def frames_per_step(self) -> int:
        """Emulator frames per agent step: the frame skip (Catch has none)."""
        return self.config.frames_per_step

    @property
    def frames(self) -> int:
        """Emulator frames: agent steps times frame skip."""
        return self.steps * self.frames_per_step

    @property
    def elapsed(self) -> float:
        """Training seconds so far (across resumes)."""
        running = time.time() - self._started_at if self._started_at is not None else 0.0
        return self._elapsed_before + running

    def start(self) -> "Trainer":
        """Start the workers, the evaluator and the reader thread; returns at once."""
        with self._lock:
            if self.running:
                self._say("already running: start() did nothing")
                return self
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.json").write_text(json.dumps(self.config.to_dict(), indent=2))
            self._loggers = open_loggers(self.run_dir, self.frames_per_step, self.config.to_dict())
            self._stop_event.clear()
            self._halt.clear()
            self._stopped.clear()
            self._started_at = time.time()
            self._last_checkpoint = time.monotonic()
            self._rate.clear()
            for rank in range(self.config.workers):
                self._spawn(f"worker {rank}")
            self._spawn("evaluator")
            self._reader = threading.Thread(target=self._read_reports, name="a3c-reader", daemon=True)
            self._reader.start()
        self._say(f"started {self.config.workers} workers and the evaluator on {self.config.game} "
                  f"(run folder {self.run_dir})")
        return self

    def stop(self, save: bool = True) -> Path | None:
        """Stop every process cooperatively (terminate after a timeout), then save a checkpoint.

        Returns the checkpoint path (``None`` if ``save`` is false or nothing was running).
        """
        if not self._lock.acquire(timeout=2 * STOP_TIMEOUT):
            return None
        try:
            if not self.running:
                self._say("not running: stop() did nothing")
                return None
            self._stop_event.set()
            deadline = time.monotonic() + STOP_TIMEOUT
            for process in self._processes.values():
                process.join(max(0.1, deadline - time.monotonic()))
            stuck = [name for name, process in self._processes.items() if process.is_alive()]
            for name in stuck:
                self._processes[name].terminate()
                self._processes[name].join(5)
            self._halt.set()
            if self._reader is not None and self._reader is not threading.current_thread():
                self._reader.join(STOP_TIMEOUT)
            if stuck:  # a child killed in the middle of a record leaves half a message: reading it would block
                self._say(f"{', '.join(stuck)} did not stop within {STOP_TIMEOUT:.0f} s and was terminated; "
                          "its last reports are dropped")
            else:
                self._drain()
            self._elapsed_before = self.elapsed
            self._started_at = None
            self._processes.clear()
            if self._recording is not None:
                self._say(f"the evaluator's episode for {self._recording['name']}.gif did not finish: not saved")
                self._recording = None
            for writer in self._gif_writers:
                writer.join(30)
            self._gif_writers.clear()
            for logger in self._loggers:
                logger.close()
            self._loggers = []
            path = self.save() if save else None
        finally:
            if self._started_at is None:  # the processes are gone (even if saving failed)
                self._stopped.set()
            self._lock.release()
        self._say(f"stopped at {self.steps:,} steps after {self.elapsed / 60:.1f} min"
                  + (f"; checkpoint {path}" if path else ""))
        return path

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run has stopped (by itself at ``max_steps`` / ``max_minutes``, or by ``stop()``).

        True once every process has exited and the final checkpoint is written; False at ``timeout``.
        """
        return self._stopped.wait(timeout)

    def __enter__(self) -> "Trainer":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self._finish()

    def _finish(self) -> None:
        """Stop if running, unless a stop is under way (the limit's, in its own thread); then wait for it."""
        if self.running and not self._stop_event.is_set():
            self.stop()
        self.wait(4 * STOP_TIMEOUT)

    # -------------------------------------------------------------------------------- processes
    def _spawn(self, name: str) -> None:
        if name == "evaluator":
            target, args = run_evaluator, (self.config, self.model, self._steps, self._stop_event, self._queue)
        else:
            rank = int(name.split()[1])
            target, args = run_worker, (rank, self.config, self.model, self.optimizer, self._steps,
                                        self._stop_event, self._queue)
        process = self._ctx.Process(target=target, args=args, name=f"a3c {name}", daemon=True)
        process.start()
        self._processes[name] = process

    def _check_processes(self) -> None:
        """Report children that died with an error; restart them if ``restart_crashed``."""
        for name, process in list(self._processes.items()):
            if process.is_alive() or process.exitcode == 0 or self._stop_event.is_set():
                continue
            record = {"kind": "error", "source": name, "time": time.time(),
                      "error": f"{name} exited with code {process.exitcode}"}
            self._handle(record)
            if self.config.restart_crashed:
                self._spawn(name)
                self.restarts += 1
                self._say(f"{name} crashed (exit code {process.exitcode}) and was restarted")
            else:
                del self._processes[name]
                self._say(f"{name} crashed (exit code {process.exitcode}); training goes on without it")

    def process_ids(self) -> dict[str, int]:
        """PIDs of the live child processes, by name."""
        return {name: p.pid for name, p in self._processes.items() if p.is_alive()}

    # -------------------------------------------------------------------------------- reports
    def _read_reports(self) -> None:
        # Reading goes on after the run reached its limit, until stop() halts it: a child can only exit
        # once the records it queued have left the pipe, and an evaluator frame is bigger than a pipe.
        last_check, limit_reached = 0.0, False
        while not self._halt.is_set():
            try:
                try:
                    self._handle(self._queue.get(timeout=0.1))
                except queue_module.Empty:
                    pass
                now = time.monotonic()
                if not limit_reached and now - last_check >= 1.0:
                    last_check = now
                    limit_reached = self._every_second(now)
            except Exception:  # a bug here must not silently end the run's bookkeeping: show it, go on
                error = {"kind": "error", "source": "reader", "time": time.time(), "elapsed": self.elapsed,
                         "error": traceback.format_exc()}
                self.history.errors.append(error)
                self._say(f"the reader thread hit an error and goes on:\n{error['error']}")

    def _every_second(self, now: float) -> bool:
        """The reader's periodic duties; True when the run reached its limit and is being stopped."""
        self._rate.append((now, self.steps))
        self._check_processes()
        if now - self._last_checkpoint >= 60 * self.config.checkpoint_minutes:
            self.save()
        if self._next_snapshot and self.elapsed >= 60 * self._next_snapshot:
            if self._recording is None:
                self.record_next_episode(f"after-{self._next_snapshot:g}min")
            self._skip_past_snapshots()
        limit_steps = self.config.max_steps and self.steps >= self.config.max_steps
        limit_time = self.config.max_minutes and self.elapsed >= 60 * self.config.max_minutes
        if limit_steps or limit_time:
            threading.Thread(target=self.stop, name="a3c-stop", daemon=True).start()
            return True
        return False

    def _drain(self) -> None:
        while True:
            try:
                self._handle(self._queue.get_nowait())
            except (queue_module.Empty, OSError, ValueError):
                return

    def _handle(self, record: dict[str, Any]) -> None:
        kind = record["kind"]
        if kind == "frame":
            self.latest_frame = record
            self._collect(record)
        else:
            record = {**record, "elapsed": self._elapsed_before + record["time"] - (self._started_at or record["time"])}
            {"eval": self.history.evals, "episode": self.history.episodes, "losses": self.history.losses,
             "error": self.history.errors}[kind].append(record)
            with open(self.run_dir / "metrics.jsonl", "a") as log:
                log.write(json.dumps(record) + "\n")
            if kind == "error" and self.verbose:
                print(f"[a3c] {record['source']} reported an error:\n{record['error']}", file=sys.stderr)
            if kind == "eval":
                self._collect(record)
            for logger in self._loggers:
                logger(record, self.steps_per_second() * self.frames_per_step)
        for listener in self.listeners:
            listener(record)

    # -------------------------------------------------------------------------------- GIFs
    def record_next_episode(self, name: str = "") -> None:
        """Save the evaluator's next whole episode as ``gifs/<name>-<steps>.gif`` in the run folder.

        The GIF holds the frames the dashboard shows (every ``eval_frame_every``-th step, at the
        evaluator's pace) and is written in the background when the episode ends; its path is then
        appended to :attr:`recordings`. A request while another recording is pending replaces it.
        """
        if not self.running:
            raise RuntimeError("the trainer is not running: start() it, then record the evaluator's next episode")
        if not self.config.eval_frame_every:
            raise RuntimeError("eval_frame_every is 0: the evaluator sends no frames to record")
        self._recording = {"name": f"{name or 'record'}-{self.steps:012d}", "episode": None, "frames": []}
        self._say(f"recording the evaluator's next episode as {self._recording['name']}.gif")

    def _skip_past_snapshots(self) -> None:
        """Move the next milestone (30, 60, 120 ... min) past the training time so far."""
        while self._next_snapshot and self.elapsed >= 60 * self._next_snapshot:
            self._next_snapshot *= 2

    def gifs(self) -> list[Path]:
        """Every GIF in the run folder (this session's and earlier ones), oldest first."""
        return sorted((self.run_dir / "gifs").glob("*.gif"), key=lambda path: path.stat().st_mtime)

    def _collect(self, record: dict[str, Any]) -> None:
        """Feed a frame or eval record to the pending recording; write the GIF when its episode ends."""
        recording = self._recording
        if recording is None:
            return
        if recording["episode"] is None:  # the episode now playing is under way: wait for the next one
            if record["kind"] == "frame":
                recording["episode"] = record["episode"] + 1
            return
        if record["kind"] == "frame" and record["episode"] == recording["episode"]:
            recording["frames"].append(record["frame"])
            if len(recording["frames"]) < GIF_MAX_FRAMES:
                return
        elif record["episode"] < recording["episode"] or not recording["frames"]:
            return
        self._recording = None
        path = self.run_dir / "gifs" / f"{recording['name']}.gif"
        fps = (self.config.eval_steps_per_second or 30.0) / self.config.eval_frame_every
        writer = threading.Thread(target=self._write_gif, args=(path, recording["frames"], fps),
                                  name="a3c-gif", daemon=True)
        self._gif_writers = [w for w in self._gif_writers if w.is_alive()] + [writer]
        writer.start()

    def _write_gif(self, path: Path, frames: list[Any], fps: float) -> None:
        save_gif(path, frames, fps)
        self.recordings.append(path)
        self._say(f"saved {path} ({len(frames)} frames)")

    # -------------------------------------------------------------------------------- status
    def steps_per_second(self) -> float:
        """Agent steps per second over the last ~30 s (0 when stopped or before two samples)."""
        if not self.running or len(self._rate) < 2:
            return 0.0
        (t0, s0), (t1, s1) = self._rate[0], self._rate[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0

    def status(self) -> dict[str, Any]:
        """A snapshot: running, steps, frames, frames/s, elapsed, episodes, rewards (latest and mean of 10)."""
        evals = [e["score"] for e in self.history.evals]
        per_worker: dict[int, list[float]] = {}
        for episode in self.history.episodes:
            per_worker.setdefault(episode["rank"], []).append(episode["reward"])
        return {
            "running": self.running,
            "steps": self.steps,
            "frames": self.frames,
            "steps_per_second": self.steps_per_second(),
            "frames_per_second": self.steps_per_second() * self.frames_per_step,
            "elapsed": self.elapsed,
            "episodes": len(self.history.episodes),
            "eval_episodes": len(evals),
            "eval_latest": evals[-1] if evals else None,
            "eval_mean10": _mean(evals[-10:]),
            "workers": {rank: {"latest": rewards[-1], "mean10": _mean(rewards[-10:]), "episodes": len(rewards)}
                        for rank, rewards in sorted(per_worker.items())},
            "errors": len(self.history.errors),
            "restarts": self.restarts,
            "processes_alive": len(self.process_ids()),
        }

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"Trainer({self.config.game}, {state}, {self.steps:,} steps, {self.elapsed / 60:.1f} min, {self.run_dir})"

    def _say(self, message: str) -> None:
        if self.verbose:
            print(f"[a3c] {message}", file=sys.stderr)

    # -------------------------------------------------------------------------------- checkpoints
    def save(self, path: str | Path | None = None) -> Path:
        """Write a checkpoint (default ``run_dir/checkpoints/step-<steps>.pt``), keeping the last K."""
        default = path is None
        path = Path(path) if path else self.run_dir / "checkpoints" / f"step-{self.steps:012d}.pt"
        save_checkpoint(path, {
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "counters": {"steps": self.steps, "elapsed": self.elapsed},
            "history": self.history.to_dict(),
            "action_names": self.action_names,
        })
        self._last_checkpoint = time.monotonic()
        if default:
            if path not in self._checkpoints:
                self._checkpoints.append(path)
            while len(self._checkpoints) > self.config.keep_checkpoints:
                self._checkpoints.pop(0).unlink(missing_ok=True)
        return path

    @classmethod
    def from_checkpoint(cls, path: str | Path, run_dir: str | Path | None = None, verbose: bool = True,
                        **overrides: Any) -> "Trainer":
        """A stopped trainer that continues where ``path`` left off (weights, Adam state, counters, history).

        By default it keeps writing into the checkpoint's run folder. ``overrides`` change config
        fields (for example ``workers=4`` or ``max_minutes=30``).
        """
        payload = load_checkpoint(path)
        if "optimizer" not in payload:
            raise CheckpointError(f"{path} is a play-only export (no optimizer state): play it with "
                                  f"checkpoint.load_model, or resume from a checkpoint in a run folder")
        config = A3CConfig.from_dict({**payload["config"], **overrides})
        path = Path(path)
        if run_dir is None:
            run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
        trainer = cls(config, run_dir=run_dir, verbose=verbose)
        trainer.model.load_state_dict(payload["model"])
        trainer.optimizer.load_state_dict(payload["optimizer"])
        trainer._steps.value = int(payload["counters"]["steps"])
        trainer._elapsed_before = float(payload["counters"]["elapsed"])
        trainer.history = History.from_dict(payload["history"])
        trainer._skip_past_snapshots()
        trainer._checkpoints = sorted((Path(run_dir) / "checkpoints").glob("step-*.pt"))
        return trainer
