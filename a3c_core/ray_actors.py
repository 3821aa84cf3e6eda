"""What runs on the cluster in the Ray backend (notebook 09): the parameter server, the worker and
evaluator actors, and the mailbox their reports go through.

Shared memory ends at the edge of one machine. Here the one shared model and its Adam live in a
:class:`ParameterServer` actor, and only the transport changes:

* a worker actor runs the local backend's own loop (:func:`~a3c_core.worker.train_loop`) with a
  :class:`ServerLink` in place of shared memory: it sends each gradient to the server and continues
  from the weights the server sends back;
* the server applies each gradient as it arrives, one at a time, without waiting for the other
  workers: A3C's asynchrony, with a queue of messages where the local backend had Hogwild writes;
* the evaluator actor runs :func:`~a3c_core.evaluator.evaluation_loop`, pulling weights from the server;
* reports travel through a :class:`Mailbox` actor in the local backend's record format.

Weights and gradients travel as one flat ``float32`` vector ``(P,)``: 4 bytes per parameter each way.
The kernel's side (connecting, starting, watching and stopping these actors) is
:mod:`a3c_core.ray_backend`.
"""

from __future__ import annotations

import os
import time
from collections import deque
from typing import Any

import numpy as np
import ray
import torch

from .config import A3CConfig
from .evaluator import evaluation_loop
from .model import ActorCritic
from .processes import QUEUE_SIZE
from .shared import set_learning_rate
from .worker import WORKER_NICENESS, train


def flat_parameters(model: torch.nn.Module) -> np.ndarray:
    """Every parameter of ``model`` in one float32 vector ``(P,)``: what travels as "the weights"."""
    return torch.nn.utils.parameters_to_vector(model.parameters()).detach().numpy()


def flat_gradient(model: torch.nn.Module) -> np.ndarray:
    """Every parameter's gradient in one float32 vector ``(P,)`` (zeros where a parameter got none)."""
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                      for p in model.parameters()]).numpy()


def load_flat(model: torch.nn.Module, vector: np.ndarray, into: str = "data") -> None:
    """Write ``vector`` ``(P,)`` into ``model``'s parameters (``into="data"``) or their gradients (``"grad"``)."""
    start = 0
    for p in model.parameters():
        part = torch.from_numpy(np.array(vector[start:start + p.numel()])).view_as(p)
        if into == "grad":
            p.grad = part
        else:
            p.data.copy_(part)
        start += p.numel()


@ray.remote(num_cpus=0)
class ParameterServer:
    """Owns the model, Adam's state and the step count; applies each worker's gradient as it arrives."""

    def __init__(self, config: A3CConfig, n_actions: int, weights: dict, optimizer_state: dict, steps: int):
        torch.set_num_threads(1)
        self.config, self.steps, self.updates, self.stopping = config, steps, 0, False
        self.model = ActorCritic.from_config(config, n_actions)
        self.model.load_state_dict(weights)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, foreach=False)
        self.optimizer.load_state_dict(optimizer_state)

    def progress(self) -> tuple[int, bool]:
        """The step count, and whether training goes on (not stopped, ``max_steps`` not reached)."""
        return self.steps, not self.stopping and not 0 < self.config.max_steps <= self.steps

    def pull(self) -> tuple[np.ndarray, int, bool]:
        """The weights ``(P,)`` and :meth:`progress`."""
        return (flat_parameters(self.model), *self.progress())

    def push(self, gradient: np.ndarray, steps: int) -> tuple[np.ndarray, int, bool]:
        """One worker's gradient ``(P,)`` for ``steps`` agent steps: one Adam step, then :meth:`pull`."""
        load_flat(self.model, gradient, into="grad")
        self.steps += steps
        set_learning_rate(self.optimizer, self.config.lr_at(self.steps))  # as a local worker does
        self.optimizer.step()
        self.updates += 1
        return self.pull()

    def state(self) -> dict[str, Any]:
        """What a checkpoint needs: the model's and Adam's state dicts, steps and updates."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "steps": self.steps,
                "updates": self.updates}

    def stop(self) -> None:
        self.stopping = True


@ray.remote(num_cpus=0)
class Mailbox:
    """The reports of every actor, until the kernel takes them; beyond ``QUEUE_SIZE`` the oldest go."""

    def __init__(self) -> None:
        self.records: deque[dict[str, Any]] = deque(maxlen=QUEUE_SIZE)

    def put(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def take(self) -> list[dict[str, Any]]:
        records, self.records = list(self.records), deque(maxlen=QUEUE_SIZE)
        return records


class MailboxQueue:
    """The queue interface the workers and the evaluator report through: ``put_nowait`` never waits."""

    def __init__(self, mailbox: Any):
        self.mailbox = mailbox

    def put_nowait(self, record: dict[str, Any]) -> None:
        self.mailbox.put.remote(record)


class ServerLink:
    """How a Ray worker reaches the one model: the parameter server. The same two methods as the
    local backend's :class:`~a3c_core.shared.SharedMemoryLink`, so :func:`~a3c_core.worker.train_loop`
    runs unchanged; a push brings the new weights back, so each update costs one round trip.

    Args:
        server: the :class:`ParameterServer`'s handle.
    """

    def __init__(self, server: Any):
        self.server = server
        self.weights, self.steps, self.going = ray.get(server.pull.remote())  # steps: what the server last said

    def pull(self, model: torch.nn.Module) -> bool:
        """Load the weights the server sent last into ``model``; False once training is over."""
        if self.going:
            load_flat(model, self.weights)
        return self.going

    def push(self, model: torch.nn.Module, n_steps: int) -> None:
        """Send ``model``'s gradient ``(P,)`` for ``n_steps`` agent steps; the server takes one Adam step
        and answers with the new weights, the step count and whether to go on."""
        self.weights, self.steps, self.going = ray.get(self.server.push.remote(flat_gradient(model), n_steps))


def _actor_setup(name: str, queue: MailboxQueue, nice: int = 0) -> None:
    """One torch thread (as every local child); report a restart if Ray brought this actor back."""
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    if nice and hasattr(os, "nice"):
        os.nice(nice)
    if ray.get_runtime_context().was_current_actor_reconstructed:
        queue.put_nowait({"kind": "error", "source": name, "time": time.time(), "restarted": True,
                          "error": f"{name}'s process died and Ray restarted it"})


def _place() -> tuple[int, str]:
    """This actor's process id and the id of the node it runs on."""
    return os.getpid(), ray.get_runtime_context().get_node_id()


@ray.remote(num_cpus=1)
class WorkerActor:
    """One A3C worker: its own game and local model; :meth:`train` runs the local backend's
    :func:`~a3c_core.worker.train` through a :class:`ServerLink`."""

    def __init__(self, rank: int, config: A3CConfig, server: str, mailbox: str):
        self.rank, self.config, self.server = rank, config, ray.get_actor(server)
        self.queue = MailboxQueue(ray.get_actor(mailbox))
        _actor_setup(f"worker {rank}", self.queue, WORKER_NICENESS)

    def train(self) -> str:
        """Train until the server says stop: "done", or "diverged" when the loss stopped being a number."""
        return train(self.rank, self.config, ServerLink(self.server), self.queue)

    def place(self) -> tuple[int, str]:
        return _place()


@ray.remote(num_cpus=0)
class EvaluatorActor:
    """The greedy evaluator: :func:`~a3c_core.evaluator.evaluation_loop` on the server's weights."""

    def __init__(self, config: A3CConfig, server: str, mailbox: str):
        self.config, self.server, self.queue = config, ray.get_actor(server), MailboxQueue(ray.get_actor(mailbox))
        self.steps, self.going, self.asked = 0, True, 0.0
        _actor_setup("evaluator", self.queue)

    def _load(self, model: ActorCritic) -> int:
        weights, self.steps, self.going = ray.get(self.server.pull.remote())
        load_flat(model, weights)
        return self.steps

    def _go_on(self) -> bool:
        if time.monotonic() - self.asked > 0.5:  # the server is asked twice a second at most
            self.steps, self.going = ray.get(self.server.progress.remote())
            self.asked = time.monotonic()
        return self.going

    def evaluate(self) -> str:
        evaluation_loop(self.config, self._load, lambda: self.steps, self._go_on, self.queue)
        return "done"

    def place(self) -> tuple[int, str]:
        return _place()
