"""One ``start()`` .. ``stop()`` of a training run, watched from the kernel: the reader thread.

A :class:`Supervisor` holds the running process group (:mod:`a3c_core.processes`, or the Ray
backend's). Its thread passes every report to the trainer's listeners and, once a second, restarts
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
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .listeners import Listeners
    from .trainer import Trainer


class Supervisor:
    """The reader thread of one session of ``trainer``, around its started process ``group``.

    Args:
        listeners: where every report goes (the trainer's :class:`~a3c_core.listeners.Listeners`).
        save: writes a checkpoint and says (does not raise) why it could not.
        say: prints a message when the trainer is verbose.
    """

    def __init__(self, trainer: "Trainer", group: Any, listeners: "Listeners", save: Callable[[], None],
                 say: Callable[[str], None]):
        self.trainer, self.group, self.listeners, self.save, self.say = trainer, group, listeners, save, say
        self.halt = threading.Event()  # set: the session is ending (stop() under way or asked for)
        self.steps_at_start = trainer.steps
        self.rate: deque[tuple[float, int]] = deque(maxlen=30)  # (time, steps) samples for steps/s
        self.thread = threading.Thread(target=self._read_reports, name="a3c-reader", daemon=True)
        self.thread.start()

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
                self.handle({"kind": "error", "source": "reader", "time": time.time(), "error": traceback.format_exc()})

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
            self.say(f"the run failed and stops: {failure}")
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
                record["frames_per_second"] = self.steps_per_second() * trainer.frames_per_step
            if record["kind"] == "error":
                self.say(f"{record['source']} reported an error:\n{record['error']}")
        self.listeners(record)

    def steps_per_second(self) -> float:
        """Agent steps per second over the last ~30 s (0 before two samples)."""
        if len(self.rate) < 2:
            return 0.0
        (t0, s0), (t1, s1) = self.rate[0], self.rate[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0

    def finish(self, timeout: float) -> list[str]:
        """End the session: stop the reader, then the processes (cooperatively, terminated after
        ``timeout`` s); their last reports still reach the listeners. Returns the names of the
        processes that had to be terminated."""
        self.halt.set()
        if self.thread is not threading.current_thread():
            self.thread.join(timeout)
        records, stuck = self.group.stop(timeout)
        for record in records:
            self.handle(record)
        return stuck
