"""The kernel-side handle of a training run: it wires the processes, the listeners and the run folder.

    trainer = Trainer(A3CConfig.preset("catch"))
    trainer.start()   # returns at once; workers and the evaluator train in the background
    trainer.status()  # state, steps, frames/s, rewards ...
    trainer.stop()    # cooperative stop, then a final checkpoint (its path)

Each ``start()`` .. ``stop()`` is a :class:`~a3c_core.supervisor.Supervisor`'s (processes, reader thread);
the model, the optimizer state, the counters, the listeners and the run folder live here: pausing is
``stop()`` then ``start()``.
"""

from __future__ import annotations

import atexit
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from .checkpoint import CheckpointError, load_run, restore_run, save_run
from .config import A3CConfig
from .envs import action_names, make_env
from .listeners import History, Listeners
from .model import ActorCritic
from .processes import process_context
from .run_folder import RunFolder
from .shared import SharedAdam, set_learning_rate
from .supervisor import Supervisor

#: Seconds a stop waits for processes to finish their update before terminating them.
STOP_TIMEOUT = 15.0


class Trainer:
    """Owns the shared model and optimizer, the step counter, the process group and the run folder.

    Args:
        config: the run's settings (validated again at every ``start()``).
        run_dir: the run's folder; default a new ``<config.run_dir>/<game>-<date>-<time>``.
        verbose: print what happens (start, stop, crashes, checkpoints).
    """

    def __init__(self, config: A3CConfig, run_dir: str | Path | None = None, verbose: bool = True):
        config.validate()
        self.config, self.verbose = config, verbose
        self._built_for = config.replace()  # the config the model was built for (game, shape)
        self.say: Callable[[str], None] | None = None  # where messages go when verbose (default: stdout, problems stderr)
        self.folder = RunFolder(run_dir) if run_dir else RunFolder.new(config.run_dir, config.game)
        self.run_dir = self.folder.path
        env = make_env(config)
        self.action_names = action_names(env)
        env.close()
        self.model = ActorCritic.from_config(config, len(self.action_names)).share_memory()
        self.optimizer = SharedAdam(self.model.parameters(), lr=config.lr)
        self._listeners = Listeners(self.folder, config, self._say)
        # Yours: called with every record; one that raises is reported once and leaves the run.
        self.listeners = self._listeners.extra
        self.latest_frame: dict[str, Any] | None = None
        self.last_checkpoint: Path | None = None
        self.resumed_from: Path | None = None  # the checkpoint this run continued from (never rotated away)
        self.failure: str | None = None        # why the run stopped itself, if it failed
        self.save_error: str | None = None     # why the run's latest own save failed (None once one succeeds)
        self.saved_at = 0.0                    # time.monotonic() of the last checkpoint
        self._saved_state: tuple | None = None  # _state() at the last checkpoint
        self.shared_steps = process_context().Value("q", 0)  # the workers add to it, under its lock
        self._session: Supervisor | None = None  # the latest start()'s
        self._lock, self._save_lock = threading.Lock(), threading.Lock()
        self._stopped = threading.Event()  # clear from start() until stop() has saved
        self._stopped.set()
        self._elapsed_before, self._started_at = 0.0, None
        atexit.register(self.close)

    # -------------------------------------------------------------------------------- life cycle
    @property
    def history(self) -> History:
        """Everything reported so far: the evaluator's games, the workers' episodes, losses, errors."""
        return self._listeners.history

    @property
    def running(self) -> bool:
        """True from ``start()`` until ``stop()`` has ended: processes joined and the checkpoint written."""
        return not self._stopped.is_set()

    @property
    def steps(self) -> int:
        """Agent steps taken by all workers (across resumes)."""
        # Read past the counter's lock: a worker killed while it held the lock must not stop the trainer.
        return int(self.shared_steps.get_obj().value)

    @property
    def frames(self) -> int:
        return self.steps * self.config.frames_per_step

    @property
    def elapsed(self) -> float:
        """Training seconds so far (across resumes)."""
        return self.elapsed_at(time.time())

    def elapsed_at(self, when: float) -> float:
        """Training seconds at wall-clock time ``when`` (``time.time()``) of the current session."""
        return self._elapsed_before + (when - self._started_at if self._started_at is not None else 0.0)

    def start(self) -> "Trainer":
        """Start the workers, the evaluator and the reader thread; returns at once."""
        with self._lock:
            if self.running:
                self._say("already running: start() did nothing")
                return self
            self._built_for.resumed(**self.config.to_dict())  # validates; the game and the shape cannot change
            set_learning_rate(self.optimizer, self.config.lr_at(self.steps))  # a rate changed since takes effect
            self.folder.open(self.config)  # its lock, and config.json
            started = time.time()  # the session's clock starts before its workers and evaluator do
            try:
                self._listeners.open(self.config)
                session = Supervisor(self, self._listeners, self._save_or_say, self._say, self._warn)  # starts the processes
            except BaseException:
                self._listeners.close()
                self.folder.unlock()
                raise
            self.failure, self._started_at, self.saved_at = None, started, time.monotonic()
            self._stopped.clear()
            self._session = session.watch()
        workers = self.config.workers
        self._say(f"started {workers} worker{'s' if workers > 1 else ''} and the evaluator on {self.config.game} "
                  f"(run folder {self.run_dir})")
        return self

    def stop(self, save: bool = True) -> Path | None:
        """Stop every process cooperatively (terminate after a timeout), then save a checkpoint.

        Returns the run's last checkpoint: the one just written, or, if the run had already stopped
        (the dashboard's button, a limit, a failure), the one written then.
        """
        if not self._lock.acquire(timeout=4 * STOP_TIMEOUT):
            return self.last_checkpoint
        try:
            if not self.running:
                self._say(f"already stopped; last checkpoint: {self.last_checkpoint}")
                return self.last_checkpoint
            self._session.finish(STOP_TIMEOUT)
            self._elapsed_before, self._started_at = self.elapsed, None
            self._listeners.close()
            if save:
                self._save_or_say()
        finally:
            if self._started_at is None:  # the processes are gone (even if saving failed)
                self.folder.unlock()
                self._stopped.set()
            self._lock.release()
        self._say(f"stopped at {self.steps:,} steps after {self.elapsed / 60:.1f} min"
                  + (f"; checkpoint {self.last_checkpoint}" if save and self.last_checkpoint else ""))
        return self.last_checkpoint

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run has stopped (by itself or by ``stop()``) and its checkpoint is written;
        False at ``timeout``."""
        return self._stopped.wait(timeout)

    def __enter__(self) -> "Trainer":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop if running, unless a stop is under way (the reader's, in its own thread); then wait for it
        (and its checkpoint). What leaving a ``with trainer:`` block does."""
        if self.running and not self._session.ending:
            self.stop()
        self.wait(4 * STOP_TIMEOUT)

    def process_ids(self) -> dict[str, int]:
        """PIDs of the live child processes, by name (on Ray: the actors that have said where they run;
        one still starting appears at a later call)."""
        return self._session.pids() if self._session is not None and self.running else {}

    @property
    def restarts(self) -> int:
        """Crashed children restarted in the latest session."""
        return self._session.restarts if self._session is not None else 0

    # -------------------------------------------------------------------------------- GIFs
    def record_next_episode(self, name: str = "") -> None:
        """Save the evaluator's next whole episode as ``gifs/<name>-<steps>.gif`` in the run folder,
        written in the background when the episode ends; its path is then appended to :attr:`recordings`."""
        if not self.running:
            raise RuntimeError("the trainer is not running: start() it, then record the evaluator's next episode")
        if not self.config.eval_frame_every:
            raise RuntimeError("eval_frame_every is 0: the evaluator sends no frames to record")
        self._listeners.gifs.request(f"{name or 'record'}-{self.steps:012d}")

    @property
    def recordings(self) -> list[Path]:
        """The GIFs this trainer wrote, oldest first (every GIF of the run: ``trainer.folder.gifs()``)."""
        return self._listeners.gifs.recordings

    # -------------------------------------------------------------------------------- status
    def steps_per_second(self) -> float:
        """Agent steps per second over the last ~30 s (0 when stopped or before two samples)."""
        return self._session.steps_per_second() if self.running and self._session is not None else 0.0

    def status(self) -> dict[str, Any]:
        """A snapshot: state ("starting" until the workers' first steps, "running", "stopped"), steps,
        frames, frames/s, elapsed, episodes, rewards (latest and mean of 10), errors, the failure."""
        state = "stopped" if not self.running else "starting" if self._session.starting else "running"
        return {"state": state, "running": self.running, "steps": self.steps, "frames": self.frames,
                "steps_per_second": self.steps_per_second(),
                "frames_per_second": self.steps_per_second() * self.config.frames_per_step, "elapsed": self.elapsed,
                **self.history.summary(), "restarts": self.restarts, "processes_alive": len(self.process_ids()),
                "failure": self.failure}

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"Trainer({self.config.game}, {state}, {self.steps:,} steps, {self.elapsed / 60:.1f} min, {self.run_dir})"

    def _say(self, message: str, stream: Any = None) -> None:
        """A status line (stdout, so a notebook shows it as output, not as an error), or with
        ``stream=sys.stderr`` a problem; both to :attr:`say` where one is set (the command line's bar)."""
        if self.verbose:
            (self.say or (lambda line: print(line, file=stream or sys.stdout)))(f"[a3c] {message}")

    def _warn(self, message: str) -> None:
        """A problem (a crash, an error report, a failure, a checkpoint not written): stderr."""
        self._say(message, sys.stderr)

    # -------------------------------------------------------------------------------- checkpoints
    def save(self, path: str | Path | None = None) -> Path:
        """Write a checkpoint (default ``checkpoints/step-<steps>.pt`` in the run folder, keeping the last
        ``keep_checkpoints``). Weights that are not finite are never saved: ``CheckpointError``.
        A stopped run that has not changed since its last checkpoint is not saved again: that
        checkpoint's path is returned (a second copy would only push an older one out)."""
        with self._save_lock:
            unchanged = (path is None and not self.running and self.last_checkpoint is not None
                         and self.last_checkpoint.exists() and self._saved_state == self._state())
            if unchanged:
                self._say(f"nothing changed since {self.last_checkpoint.name}: not saved again")
                return self.last_checkpoint
            if self._session is not None:
                self._session.sync()  # the Ray backend's state lives in its server: copy it here first
            steps = self.steps  # read once: the file's name and the count inside it agree
            target = self.folder.checkpoint_path(steps) if path is None else Path(path)
            save_run(target, self.config, self.model, self.optimizer, {"steps": steps, "elapsed": self.elapsed},
                     self.history.to_dict(), self.action_names)
            self.saved_at, self._saved_state, self.save_error = time.monotonic(), self._state(), None
            if path is None:
                self.last_checkpoint = target
                self.folder.rotate(self.config.keep_checkpoints, spare=self.resumed_from)
        return target

    def _state(self) -> tuple:
        """What a checkpoint records that can change: steps, training time, the history's lengths."""
        history = self.history
        return (self.steps, self.elapsed, len(history.evals), len(history.episodes), len(history.losses),
                len(history.errors))

    def _save_or_say(self) -> None:
        """A save from the run's own machinery (periodic, final): a failure is said, not raised."""
        try:
            self.save()
        except CheckpointError as error:
            self.save_error = str(error)
            self._warn(self.save_error)

    @classmethod
    def from_checkpoint(cls, path: str | Path, run_dir: str | Path | None = None, verbose: bool = True,
                        **overrides: Any) -> "Trainer":
        """A stopped trainer that continues where ``path`` left off (weights, Adam state, counters, history),
        by default in the checkpoint's run folder. ``overrides`` change config fields (``workers=4``,
        ``lr=1e-4``, ``max_minutes=30`` ...: each takes effect), except the game and the model's shape
        (:meth:`A3CConfig.resumed`). ``path`` may also be a run folder: its newest checkpoint."""
        path = Path(path)
        if path.is_dir():
            newest = RunFolder(path.parent if path.name == "checkpoints" else path).checkpoints()[-1:]
            if not newest:
                raise CheckpointError(f"{path} is a folder without checkpoints: give a run folder or a checkpoint")
            path = newest[0]
        config, payload = load_run(path, **overrides)
        trainer = cls(config, run_dir=run_dir or RunFolder.of_checkpoint(path).path, verbose=verbose)
        restore_run(path, payload, trainer.model, trainer.optimizer)
        trainer.shared_steps.value = int(payload["counters"]["steps"])
        trainer._elapsed_before = float(payload["counters"]["elapsed"])
        trainer._listeners.history = History.from_dict(payload["history"])
        trainer.last_checkpoint = trainer.resumed_from = path
        trainer._listeners.rewrite_metrics = True  # at start(): what came after the checkpoint never happened
        trainer._listeners.gifs.milestone(trainer.elapsed)  # milestones already passed are not recorded again
        return trainer
