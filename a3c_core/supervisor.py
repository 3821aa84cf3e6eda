"""One ``start()`` .. ``stop()`` of a training run, seen from the kernel: its processes and the reader thread.

A :class:`Supervisor` starts the workers and the evaluator on the config's backend (a
:class:`~a3c_core.processes.ProcessGroup` sharing the model's memory, or Ray actors around a
parameter server: :mod:`a3c_core.ray_backend`) and stops them at the end. Its reader thread passes
every report to the trainer's listeners and, once a second, restarts
crashed children, writes the periodic checkpoint, asks for a GIF at each milestone, and stops the run
at ``max_steps`` / ``max_minutes`` or when it failed (diverged, or a crash that keeps happening).
What outlives a session (model, optimizer, counters, history, run folder) stays in the
:class:`~a3c_core.trainer.Trainer`.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections import deque
from typing import Any, Callable, Protocol

import torch

from .config import A3CConfig
from .evaluator import run_evaluator
from .listeners import Listeners
from .model import ActorCritic
from .processes import ProcessGroup
from .worker import run_worker


class Run(Protocol):
    """The run a session belongs to (a :class:`~a3c_core.trainer.Trainer`), as far as the session knows it:
    what it reads, the two things it writes (``failure``, ``latest_frame``) and the three it calls."""

    config: A3CConfig
    model: ActorCritic                 # the shared model
    optimizer: torch.optim.Optimizer   # its shared Adam
    shared_steps: Any                  # the shared step counter (a multiprocessing.Value)
    steps: int
    elapsed: float                     # training seconds so far, all sessions
    saved_at: float                    # time.monotonic() of the last checkpoint
    failure: str | None
    latest_frame: dict[str, Any] | None

    def elapsed_at(self, when: float) -> float: ...
    def record_next_episode(self, name: str) -> None: ...
    def stop(self) -> Any: ...


class Supervisor:
    """One session of ``trainer``: starts its processes; :meth:`watch` starts the reader thread,
    :meth:`finish` ends both.

    Args:
        trainer: the run (:class:`Run`: the members of the trainer a session uses).
        listeners: where every report goes (the trainer's :class:`~a3c_core.listeners.Listeners`).
        save: writes a checkpoint and says (does not raise) why it could not.
        say: prints a status message when the trainer is verbose.
        warn: prints a problem (a crash, an error report, a failure) when the trainer is verbose.
    """

    def __init__(self, trainer: Run, listeners: Listeners, save: Callable[[], None],
                 say: Callable[[str], None], warn: Callable[[str], None]):
        self.trainer, self.listeners, self.save, self.say, self.warn = trainer, listeners, save, say, warn
        self.halt = threading.Event()  # set: the session is ending (stop() under way or asked for)
        self.steps_at_start = trainer.steps
        self.rate: deque[tuple[float, int]] = deque(maxlen=30)  # (time, steps) samples for steps/s
        self.thread = threading.Thread(target=self._read_reports, name="a3c-reader", daemon=True)
        self.group = self._start_group()

    def _start_group(self) -> Any:
        """The workers and the evaluator, on ``config.backend``: processes sharing the model's memory
        here, or Ray actors around a parameter server (notebook 09)."""
        config, model, optimizer, steps = (self.trainer.config, self.trainer.model, self.trainer.optimizer,
                                           self.trainer.shared_steps)
        if config.backend == "ray":
            try:
                from .ray_backend import RayGroup  # Ray is an optional extra: imported only when asked for
            except ImportError as error:
                raise ImportError("backend 'ray' needs Ray: pip install -e \".[cluster]\" (or pip install ray)") from error
            group = RayGroup(config, self.say, self.warn)
            group.start(model, optimizer, steps)
            return group
        group = ProcessGroup(config.restart_crashed, self.warn)
        group.start({**{f"worker {rank}": (run_worker, (rank, config, model, optimizer, steps))
                        for rank in range(config.workers)},
                     "evaluator": (run_evaluator, (config, model, steps))}, threads=("evaluator",))
        return group

    def watch(self) -> "Supervisor":
        """Start the reader thread (once the trainer's clock runs: reports carry its elapsed time)."""
        self.thread.start()
        return self

    def _read_reports(self) -> None:
        last_duty, stopping = 0.0, False
        while not self.halt.is_set():
            try:
                for record in self.group.read(0.1):
                    self.handle(record)
                if not stopping and time.monotonic() - last_duty >= 1.0:
                    last_duty = time.monotonic()
                    stopping = self._every_second(last_duty)
            except Exception:  # a bug here must not silently end the run's bookkeeping: show it, go on
                error = traceback.format_exc()
                try:
                    self.handle({"kind": "error", "source": "reader", "time": time.time(), "error": error})
                except Exception:  # the report itself failed (a listener of ours): say it where we can
                    self.warn(f"the reader could not record an error:\n{error}")

    def _every_second(self, now: float) -> bool:
        """The periodic duties; True once the run is being stopped (limit or failure)."""
        trainer, config = self.trainer, self.trainer.config
        self.rate.append((now, trainer.steps))
        records, failure = self.group.check()
        for record in records:
            self.handle(record)
        if now - trainer.saved_at >= 60 * config.checkpoint_minutes:
            self.save()
        milestone = self.listeners.gifs.milestone(trainer.elapsed)
        if milestone and self.listeners.gifs.pending is None:
            trainer.record_next_episode(milestone)
        if failure:
            trainer.failure = failure
            self.warn(f"the run failed and stops: {failure}")
        limit = ((config.max_steps and trainer.steps >= config.max_steps)
                 or (config.max_minutes and trainer.elapsed >= 60 * config.max_minutes))
        if failure or limit:
            self.halt.set()
            threading.Thread(target=trainer.stop, name="a3c-stop", daemon=True).start()
            return True
        return False

    def handle(self, record: dict[str, Any]) -> None:
        """Pass one report to the listeners (the GIF recorder takes the frames), with the run's elapsed
        seconds; the latest frame is also the trainer's ``latest_frame`` (the dashboard shows it)."""
        trainer = self.trainer
        if record["kind"] == "frame":
            trainer.latest_frame = record
        else:
            record = {**record, "elapsed": trainer.elapsed_at(record["time"])}
            if record["kind"] == "losses":
                record["frames_per_second"] = self.steps_per_second() * trainer.config.frames_per_step
            if record["kind"] == "error":
                self.warn(f"{record['source']} reported an error:\n{record['error']}")
        for name, error in self.listeners(record):
            self.handle({"kind": "error", "source": f"listener {name}", "time": time.time(), "error": error})

    # The trainer's view of its session: these, handle() and finish(), never the group itself.
    @property
    def ending(self) -> bool:
        """The session is ending: a stop is under way or has been asked for."""
        return self.halt.is_set()

    @property
    def starting(self) -> bool:
        """No worker has made a step yet in this session."""
        return self.trainer.steps == self.steps_at_start

    @property
    def restarts(self) -> int:
        """Crashed children restarted in this session."""
        return self.group.restarts

    def pids(self) -> dict[str, int]:
        """PIDs of the live child processes (or Ray actors), by name."""
        return self.group.pids()

    def sync(self) -> None:
        """Bring the trainer's model and optimizer up to date with the run's (on Ray: the server's)."""
        self.group.sync()

    def steps_per_second(self) -> float:
        """Agent steps per second over the last ~30 s (0 before two samples)."""
        if len(self.rate) < 2:
            return 0.0
        (t0, s0), (t1, s1) = self.rate[0], self.rate[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0

    def finish(self, timeout: float) -> None:
        """End the session: stop the reader, then the processes (cooperatively, terminated after
        ``timeout`` s, which is said); their last reports still reach the listeners."""
        self.halt.set()
        if self.thread is not threading.current_thread():
            self.thread.join(timeout)
        records, stuck = self.group.stop(timeout)
        for record in records:
            self.handle(record)
        if stuck:
            self.warn(f"{', '.join(stuck)} did not stop within {timeout:.0f} s and was terminated")
