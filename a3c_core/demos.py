"""Small demonstrations that notebook 03 runs in child processes (not part of the algorithm).

A process started with ``spawn`` finds the function it runs by importing it by name, so functions
that a notebook runs in child processes must live in a module: these are notebook 03's.
"""

from __future__ import annotations

from typing import Any

import torch


def fill_in_child(data: Any, value: float) -> None:
    """In a child process: write ``value`` into every element of ``data`` (a tensor or a numpy array).

    A tensor sent to a child lives in shared memory, so the parent sees the change; a numpy array is
    pickled, so the child changes its own copy and the parent sees nothing.
    """
    torch.as_tensor(data).fill_(value)


def count_up(counter: torch.Tensor, times: int, start: Any, lock: Any = None) -> None:
    """In a child process: add 1 to the shared ``counter[0]`` ``times`` times, as read, add, write.

    ``counter`` is a shared ``(2,)`` tensor; ``start`` (a ``multiprocessing.Barrier``) lets several
    processes begin together. Without a ``lock`` their reads and writes interleave and updates get
    lost (the hogwild race, exaggerated). With a ``multiprocessing.Lock`` around each read-add-write
    none are, but a process that finds the lock taken must wait for its turn: ``counter[1]`` counts
    those waits, the lock's cost.
    """
    start.wait()
    for _ in range(times):
        waited = lock is not None and not lock.acquire(block=False)
        if waited:
            lock.acquire()  # the other process is inside: wait for our turn
        value = counter[0].item()
        counter[0] = value + 1
        counter[1] += int(waited)
        if lock is not None:
            lock.release()
