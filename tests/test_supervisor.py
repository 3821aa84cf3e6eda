"""The Supervisor alone (a3c_core/supervisor.py), with a scripted process group and no processes:
reports reach the listeners with the run's elapsed time, and the once-a-second duties save, restart,
ask for GIFs and stop the run at its limit or on a failure."""

from __future__ import annotations

import threading
import time
from typing import Any

from a3c_core import A3CConfig
from a3c_core.supervisor import Supervisor


class ScriptedGroup:
    """A process group that reports what the test hands it and says it failed when told."""

    def __init__(self) -> None:
        self.inbox: list[dict[str, Any]] = []
        self.failure: str | None = None
        self.checks = 0
        self.stopped_with: float | None = None

    def read(self, timeout: float) -> list[dict[str, Any]]:
        time.sleep(min(timeout, 0.02))
        records, self.inbox = self.inbox, []
        return records

    def check(self) -> tuple[list[dict[str, Any]], str | None]:
        self.checks += 1
        return [], self.failure

    def stop(self, timeout: float) -> tuple[list[dict[str, Any]], list[str]]:
        self.stopped_with = timeout
        return [{"kind": "episode", "time": time.time(), "score": 1.0}], ["worker 0"]


class Gifs:
    pending = None

    def __init__(self) -> None:
        self.asked: list[float] = []

    def milestone(self, elapsed: float) -> str | None:
        self.asked.append(elapsed)
        return None


class Listeners(list):
    def __init__(self) -> None:
        super().__init__()
        self.gifs = Gifs()

    def __call__(self, record: dict[str, Any]) -> list[tuple[str, str]]:
        self.append(record)
        return []  # no listener failed


class FakeTrainer:
    """What the Supervisor reads and calls on its trainer."""

    def __init__(self, **config: Any) -> None:
        self.config = A3CConfig.preset("catch", **config)
        self.steps, self.saved_at = 0, time.monotonic()
        self.started_at, self.failure, self.latest_frame = time.time() - 100.0, None, None
        self.stopped = threading.Event()

    @property
    def elapsed(self) -> float:
        return self.elapsed_at(time.time())

    def elapsed_at(self, when: float) -> float:
        return 50.0 + when - self.started_at  # 50 s of earlier sessions

    def stop(self) -> None:
        self.stopped.set()

    def record_next_episode(self, name: str) -> None:
        raise AssertionError("no milestone was due")


def supervise(trainer: FakeTrainer, group: ScriptedGroup) -> tuple[Supervisor, Listeners, list[str], list[str]]:
    """A Supervisor around ``group`` instead of real processes, watching."""
    listeners, saves, said = Listeners(), [], []

    class Scripted(Supervisor):
        def _start_group(self) -> ScriptedGroup:
            return group

    supervisor = Scripted(trainer, listeners, lambda: saves.append("saved"), said.append,
                          lambda problem: said.append(f"problem: {problem}")).watch()
    return supervisor, listeners, saves, said


def test_reports_reach_the_listeners_with_the_runs_elapsed_time_and_the_latest_frame_the_trainer() -> None:
    trainer, group = FakeTrainer(), ScriptedGroup()
    supervisor, listeners, _, said = supervise(trainer, group)
    sent = time.time() - 2.0
    group.inbox = [{"kind": "episode", "time": sent, "score": -3.0}, {"kind": "frame", "time": sent, "rgb": None},
                   {"kind": "error", "time": sent, "source": "worker 1", "error": "boom"}]
    deadline = time.monotonic() + 10
    while len(listeners) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    supervisor.finish(5.0)
    assert [r["kind"] for r in listeners] == ["episode", "frame", "error", "episode"]  # the last from stop()
    assert abs(listeners[0]["elapsed"] - (50.0 + sent - trainer.started_at)) < 1e-6
    assert trainer.latest_frame is listeners[1] and group.stopped_with == 5.0
    assert said == ["problem: worker 1 reported an error:\nboom",
                    "problem: worker 0 did not stop within 5 s and was terminated"]
    assert not supervisor.thread.is_alive() and supervisor.halt.is_set()


def test_the_step_limit_stops_the_run_once_and_the_rate_is_measured() -> None:
    trainer, group = FakeTrainer(max_steps=1000), ScriptedGroup()
    supervisor, _, saves, _ = supervise(trainer, group)
    for steps in (200, 400, 600, 800, 1000):
        trainer.steps = steps
        time.sleep(1.05)
    assert trainer.stopped.wait(5), "the limit should have asked the trainer to stop"
    assert supervisor.halt.is_set()
    checks = group.checks
    time.sleep(1.5)
    assert group.checks == checks  # once stopping, the duties end
    assert 120 < supervisor.steps_per_second() < 280 and saves == [] and trainer.failure is None
    supervisor.finish(1.0)


def test_a_failure_stops_the_run_and_is_said_and_checkpoints_come_at_their_cadence() -> None:
    trainer, group = FakeTrainer(checkpoint_minutes=0.01), ScriptedGroup()  # every 0.6 s
    supervisor, _, saves, said = supervise(trainer, group)
    time.sleep(2.5)
    assert saves, "a checkpoint was due every 0.6 s"
    group.failure = "worker 0 crashed 3 times in 300 s"
    assert trainer.stopped.wait(5)
    assert trainer.failure == group.failure and said[-1] == f"problem: the run failed and stops: {group.failure}"
    supervisor.finish(1.0)
