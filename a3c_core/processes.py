"""The local process group: the children of one run, how they start, report, crash and stop.

This is the one seam a second backend (a cluster engine) implements. Each child gets its own
report queue, made fresh every time the child is (re)started: a child killed in the middle of a
write can leave half a message in its queue, and that queue is then dropped instead of read.
A child is a process (a worker: it needs a core of its own) or a thread of this process (the
evaluator: it plays at a gentle pace, and a process of its own would cost as much memory again as
a worker, which a class of students on one server feels).

The child-side helpers (:func:`setup_child_process`, :func:`parent_alive`, :func:`send`,
:func:`release_queue_if_orphaned`) are what a child process's entry point (``worker.run_worker``)
calls; a child thread (``evaluator.run_evaluator``) needs :func:`send` only.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import queue as queue_module
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing import parent_process
from multiprocessing.connection import wait as wait_for_data
from typing import Any, Callable

import torch

#: Reports waiting in one child's queue at most; beyond that the child drops them (frames first in practice).
QUEUE_SIZE = 1000
#: Exit code of a worker that stopped because its loss or gradient was not finite (the run diverged).
DIVERGED_EXIT_CODE = 3
#: A child that crashes this many times within CRASH_WINDOW seconds is not restarted again: the run fails.
MAX_CRASHES = 3
CRASH_WINDOW = 300.0


#: What every child process imports, loaded once by the fork server (see :func:`process_context`).
PRELOAD = ["a3c_core.worker"]
#: Thread pools that the fork server's libraries must not start: a child inherits none, so one
#: thread each is what the children use anyway, and a process forked with idle pools may hang.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
_context: Any = None


def process_context() -> Any:
    """The ``multiprocessing`` context every child of this package is started with.

    On Linux it is ``forkserver``: one server process imports torch, the environments and this
    package once, and each child is a fork of it, sharing those pages (about 200 MB that ``import
    torch`` writes in every process that runs it) until it changes them. A Catch run's children then
    cost tens of MB each instead of 300 MB, which is what lets a class of students share one server.
    Elsewhere it is ``spawn`` (the only method on Windows; macOS's system libraries are not safe to
    use in a forked process): each child imports everything afresh.
    """
    global _context
    if _context is None:
        if sys.platform == "linux":
            _context = mp.get_context("forkserver")
            _context.set_forkserver_preload(PRELOAD)
            saved = {name: os.environ.get(name) for name in ONE_THREAD}
            os.environ.update(ONE_THREAD)  # the server inherits the environment it starts with
            try:
                from multiprocessing import forkserver
                forkserver.ensure_running()
            finally:
                for name, value in saved.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value
        else:
            _context = mp.get_context("spawn")
    return _context


def setup_child_process() -> None:
    """First thing in every child: one torch thread, so that N processes share N cores without
    oversubscription (and without the OpenMP hang of forked children). Ctrl-C in a terminal and a
    closed terminal (SIGHUP) reach the whole process group: children ignore both and let the parent
    stop them cooperatively, with a final checkpoint.

    ``gc.freeze()`` first: a child forked from the fork server shares its imported objects until it
    writes to them, and Python's garbage collector would write to every one of them (its bookkeeping
    lives in each object) at its first full collection. Frozen objects are never visited, so their
    pages stay shared."""
    gc.freeze()
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)


def parent_alive() -> bool:
    """False once the process that started this one has died (kernel restarted or killed)."""
    parent = parent_process()
    return parent is None or parent.is_alive()


def release_queue_if_orphaned(queue: Any) -> None:
    """Called as a child ends. If the parent has died, nobody reads ``queue`` any more: let the
    process exit without flushing it (otherwise the exit waits forever on a full pipe)."""
    if not parent_alive():
        queue.cancel_join_thread()


def send(queue: Any, record: dict[str, Any]) -> None:
    """Put ``record`` on ``queue`` without waiting; drop it if the queue is full."""
    try:
        queue.put_nowait(record)
    except queue_module.Full:
        pass


class StopFlag:
    """The group's stop signal, shared with its children: one byte in shared memory that the group
    sets and every child reads, with no lock. (A ``multiprocessing.Event`` takes a lock even to be
    read: a child killed while it held that lock, in the middle of a look, would leave the group
    waiting for the lock forever.)"""

    def __init__(self, context: Any):
        self._flag = context.RawValue("b", 0)

    def set(self) -> None:
        self._flag.value = 1

    def clear(self) -> None:
        self._flag.value = 0

    def is_set(self) -> bool:
        return self._flag.value == 1


class ChildThread(threading.Thread):
    """A child that runs as a thread of this process, with the members of ``multiprocessing.Process``
    that the group uses. ``exitcode`` is 0 once ``target`` returned, 1 if it raised or exited (the
    target reports its own error). It has no ``pid``, and cannot be terminated: it ends when the group's
    :class:`StopFlag` is set."""

    pid = None
    exitcode: int | None = None

    def run(self) -> None:
        try:
            super().run()
        except BaseException:  # SystemExit too, which would end the thread without a word
            self.exitcode = 1
        else:
            self.exitcode = 0

    def terminate(self) -> None:
        """Nothing: a thread cannot be ended from outside (it checks the stop flag at every step)."""


@dataclass
class Child:
    """One child: what it runs, in a process or a thread, its process and queue of the moment, its recent crash times."""

    name: str
    target: Callable[..., None]
    args: tuple
    thread: bool = False
    process: Any = None
    queue: Any = None
    crashes: list[float] = field(default_factory=list)
    last_error: str = ""  # the error this process reported itself, if any (its crash is reported: once is enough)

    def take(self, limit: int = 200) -> list[dict[str, Any]]:
        """Up to ``limit`` records from the queue without waiting; none once its writer is gone for good."""
        records = []
        try:
            for _ in range(limit):
                records.append(self.queue.get_nowait())
        except (queue_module.Empty, EOFError, OSError, ValueError):
            pass
        for record in records:
            if record["kind"] == "error":
                self.last_error = record["error"]
        return records


class ProcessGroup:
    """The children of one run (:func:`process_context`): start, read reports, notice crashes and restart, stop.

    Each child runs ``target(*args, stop_event, queue)`` and reports through its own ``queue``;
    those named in ``threads`` run in a thread of this process instead of a process of their own.
    """

    def __init__(self, restart_crashed: bool = True, say: Callable[[str], None] = print):
        self.context = process_context()
        self.stop_event = StopFlag(self.context)
        self.restart_crashed = restart_crashed
        self.restarts = 0
        self.say = say
        self._children: dict[str, Child] = {}

    def start(self, children: dict[str, tuple[Callable[..., None], tuple]], threads: tuple[str, ...] = ()) -> None:
        """Start each ``name: (target, args)``, in a thread if ``name`` is in ``threads``."""
        self.stop_event.clear()
        for name, (target, args) in children.items():
            self._spawn(Child(name, target, args, thread=name in threads))

    def _spawn(self, child: Child) -> None:
        child.queue, child.last_error = self.context.Queue(maxsize=QUEUE_SIZE), ""
        kind = ChildThread if child.thread else self.context.Process
        child.process = kind(target=child.target, args=(*child.args, self.stop_event, child.queue),
                             name=f"a3c {child.name}", daemon=True)
        child.process.start()
        if not child.thread:
            # The child holds the queue's only write end now: if it dies in the middle of a record, reading
            # the rest ends in EOFError instead of waiting forever for bytes that will never come.
            child.queue._writer.close()
        self._children[child.name] = child

    def sync(self) -> None:
        """Nothing to copy: the trainer's model and optimizer *are* the shared ones the children update.
        (The Ray backend's :meth:`~a3c_core.ray_backend.RayGroup.sync` copies its server's state.)"""

    def pids(self) -> dict[str, int]:
        """PIDs of the live child processes, by name (threads have none)."""
        return {name: c.process.pid for name, c in self._children.items() if not c.thread and c.process.is_alive()}

    def read(self, timeout: float) -> list[dict[str, Any]]:
        """The records waiting in the children's queues; waits up to ``timeout`` seconds for one
        (asleep until a queue has data: a kernel that polled would spend a few % of a core on it)."""
        records = [record for child in list(self._children.values()) for record in child.take()]
        if records:
            return records
        readers = [child.queue._reader for child in self._children.values()]
        if readers:
            wait_for_data(readers, timeout)
        else:
            time.sleep(timeout)
        return [record for child in list(self._children.values()) for record in child.take()]

    def check(self) -> tuple[list[dict[str, Any]], str | None]:
        """Look after children that exited: their last records, one error record per crash, restarts.

        Returns ``(records, failure)``; ``failure`` is a sentence when the run cannot go on: it
        diverged, or a child crashed :data:`MAX_CRASHES` times within :data:`CRASH_WINDOW` seconds.
        """
        records: list[dict[str, Any]] = []
        failure = None
        for child in list(self._children.values()):
            if child.process.is_alive() or self.stop_event.is_set():
                continue
            records += child.take(limit=QUEUE_SIZE)
            code = child.process.exitcode
            del self._children[child.name]
            if code == 0:  # finished its work (max_steps)
                continue
            if not child.last_error:
                records.append({"kind": "error", "source": child.name, "time": time.time(),
                                "error": f"{child.name} exited with code {code}"})
            now = time.monotonic()
            child.crashes = [t for t in child.crashes if now - t < CRASH_WINDOW] + [now]
            if code == DIVERGED_EXIT_CODE:
                failure = child.last_error or f"{child.name} found a loss that is not a number: the run diverged"
            elif len(child.crashes) >= MAX_CRASHES:
                failure = (f"{child.name} crashed {len(child.crashes)} times within {CRASH_WINDOW / 60:.0f} minutes "
                           f"(exit code {code}): a crash that keeps happening is an error, see the traceback above")
            elif self.restart_crashed:
                self._spawn(child)
                self.restarts += 1
                self.say(f"{child.name} crashed (exit code {code}) and was restarted")
            else:
                self.say(f"{child.name} crashed (exit code {code}); training goes on without it")
        return records, failure

    def stop(self, timeout: float) -> tuple[list[dict[str, Any]], list[str]]:
        """Ask every child to stop, keep reading their reports until they exit (a child can only exit
        once its queued records have left), terminate those still alive after ``timeout`` seconds.

        Returns the records read and the names of the children that had to be terminated.
        """
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        records: list[dict[str, Any]] = []
        while any(c.process.is_alive() for c in self._children.values()) and time.monotonic() < deadline:
            records += self.read(0.05)
        stuck = [name for name, c in self._children.items() if c.process.is_alive() and not c.thread]
        for name in stuck:
            self._children[name].process.terminate()
        for name in [name for name, c in self._children.items() if c.process.is_alive() and c.thread]:
            self.say(f"{name} did not stop within {timeout:.0f} s; a thread cannot be terminated: it ends after its next step")
        for child in self._children.values():
            child.process.join(5)
            records += child.take(limit=QUEUE_SIZE)  # whole records only: a terminated child's half record ends in EOF
            child.queue.close()
        self._children.clear()
        return records, stuck

