"""The local process group: the child processes of one run, how they start, report, crash and stop.

This is the one seam a second backend (a cluster engine) implements. Each child gets its own
report queue, made fresh every time the child is (re)started: a child killed in the middle of a
write can leave half a message in its queue, and that queue is then dropped instead of read.

The child-side helpers (:func:`setup_child_process`, :func:`parent_alive`, :func:`send`,
:func:`release_queue_if_orphaned`) are what every child entry point (``worker.run_worker``,
``evaluator.run_evaluator``) calls.
"""

from __future__ import annotations

import os
import queue as queue_module
import signal
import time
from multiprocessing import parent_process
from typing import Any, Callable

import torch

#: Reports waiting in one child's queue at most; beyond that the child drops them (frames first in practice).
QUEUE_SIZE = 1000
#: Exit code of a worker that stopped because its loss or gradient was not finite (the run diverged).
DIVERGED_EXIT_CODE = 3
#: A child that crashes this many times within CRASH_WINDOW seconds is not restarted again: the run fails.
MAX_CRASHES = 3
CRASH_WINDOW = 300.0


def setup_child_process() -> None:
    """First thing in every child: one torch thread, so that N processes share N cores without
    oversubscription (and without the OpenMP hang of forked children). Ctrl-C in a terminal and a
    closed terminal (SIGHUP) reach the whole process group: children ignore both and let the parent
    stop them cooperatively, with a final checkpoint."""
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
