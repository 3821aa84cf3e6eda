"""A3C beyond one machine (notebook 09): the same workers and evaluator as Ray actors around a
parameter server.

Shared memory ends at the edge of one machine. Here the one shared model and its Adam live in a
:class:`ParameterServer` actor, and only the transport changes:

* a worker actor rolls out and computes its gradient with the local backend's own functions
  (:func:`~a3c_core.worker.collect_rollout`, :func:`~a3c_core.worker.rollout_loss`), sends the
  gradient to the server, and continues from the weights the server sends back
  (:func:`remote_train_loop`);
* the server applies each gradient as it arrives, one at a time, without waiting for the other
  workers: A3C's asynchrony, with a queue of messages where the local backend had Hogwild writes;
* the evaluator actor runs :func:`~a3c_core.evaluator.evaluation_loop`, pulling weights from the server;
* reports travel through a :class:`Mailbox` actor in the local backend's record format.

:class:`RayGroup` is the process group of this backend: the trainer starts, reads, checks and stops
it as it does :class:`~a3c_core.processes.ProcessGroup`, and :meth:`RayGroup.sync` copies the
server's weights and Adam state back into the trainer's model before every checkpoint, so that
checkpoints, resume (from either backend to either), the dashboard and ``status()`` are unchanged.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any, Callable

import numpy as np
import ray
import torch
from ray.exceptions import RayActorError, RayError

from .config import A3CConfig
from .envs import make_env
from .evaluator import evaluation_loop
from .model import ActorCritic
from .processes import CRASH_WINDOW, MAX_CRASHES, QUEUE_SIZE
from .worker import WORKER_NICENESS, Reporter, collect_rollout, ensure_finite, rollout_loss


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
        self.optimizer.step()
        self.steps += steps
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


class StepCount:
    """The step count a worker last heard from the server (``.value``, like the local shared counter)."""

    value = 0


def remote_train_loop(rank: int, config: A3CConfig, server: Any, queue: MailboxQueue) -> None:
    """:func:`~a3c_core.worker.train_loop` with the parameter server in place of shared memory: the
    lines that differ are the ones that move weights and gradients (notebook 09 shows the diff).

    Args:
        rank: worker number; the game is seeded with ``config.seed + rank``.
        server: the :class:`ParameterServer`'s handle.
        queue: where reports go (:class:`MailboxQueue`).
    """
    torch.manual_seed(config.seed + rank)
    env = make_env(config)
    model = ActorCritic.from_config(config, env.action_space.n)       # the worker's private copy
    obs, _ = env.reset(seed=config.seed + rank)
    hidden = model.initial_state()                                    # an episode starts with h = 0
    steps = StepCount()                                               # the count the server last sent
    reporter = Reporter(rank, steps, queue)
    weights, steps.value, go_on = ray.get(server.pull.remote())
    while go_on:
        load_flat(model, weights)                                     # start from the server's weights
        # 02 + 04: play up to rollout_steps; detach: gradients stop at the rollout's start
        rollout = collect_rollout(model, env, obs, hidden.detach(), config.rollout_steps)
        obs, hidden = rollout.next_obs, rollout.hidden
        step = steps.value + len(rollout.rewards)
        terms = rollout_loss(model, rollout, config)                  # 04: returns from V(s_T), the loss
        ensure_finite(terms.total, "the loss", step)
        model.zero_grad(set_to_none=True)
        terms.total.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)   # 04: clip
        ensure_finite(norm, "the gradient's norm", step)
        # the server applies the gradient (one Adam step) and answers with the new weights
        weights, steps.value, go_on = ray.get(server.push.remote(flat_gradient(model), len(rollout.rewards)))
        reporter.update(rollout, terms)
        if rollout.episode_over:                                      # a new game, with an empty memory
            obs, _ = env.reset()
            hidden = model.initial_state()
    env.close()


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
    """One A3C worker: its own game and local model; :meth:`train` runs :func:`remote_train_loop`."""

    def __init__(self, rank: int, config: A3CConfig, server: str, mailbox: str):
        self.rank, self.config, self.server = rank, config, ray.get_actor(server)
        self.queue = MailboxQueue(ray.get_actor(mailbox))
        _actor_setup(f"worker {rank}", self.queue, WORKER_NICENESS)

    def train(self) -> str:
        """Train until the server says stop: "done", or "diverged" when the loss stopped being a number."""
        try:
            remote_train_loop(self.rank, self.config, self.server, self.queue)
        except FloatingPointError as error:
            self.queue.put_nowait({"kind": "error", "source": f"worker {self.rank}", "rank": self.rank,
                                   "time": time.time(), "diverged": True, "error": f"worker {self.rank}: {error}"})
            return "diverged"
        return "done"

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

    def _go_on(self, t: int) -> bool:
        if time.monotonic() - self.asked > 0.5:  # the server is asked twice a second at most
            self.steps, self.going = ray.get(self.server.progress.remote())
            self.asked = time.monotonic()
        return self.going

    def evaluate(self) -> str:
        evaluation_loop(self.config, self._load, lambda: self.steps, self._go_on, self.queue)
        return "done"

    def place(self) -> tuple[int, str]:
        return _place()


def connect(address: str, workers: int) -> bool:
    """Join the Ray cluster at ``address`` (``HOST:PORT``), or start a private Ray on this machine when
    it is empty; False if this process was connected already (then it is left as it was).

    A cluster gets this package's code with the run (``py_modules``), so its nodes need only the
    dependencies (torch, gymnasium, ale-py). Raises ``ConnectionError`` in one sentence if the
    cluster cannot be reached.
    """
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"log_to_driver": False, "logging_level": "ERROR"}  # errors come as reports
    runtime_env: dict[str, Any] = {"env_vars": {"OMP_NUM_THREADS": "1"}}
    if address:
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
            ray.init(address=address, runtime_env={**runtime_env, "py_modules": [str(Path(__file__).parent)]},
                     **options)
        except (OSError, ValueError, RayError, RuntimeError) as error:
            raise ConnectionError(f"cannot reach the Ray cluster at ray_address={address!r} ({error}): start one "
                                  f"with `ray start --head`, or leave ray_address empty for a private Ray") from error
    else:  # "local": a new Ray for this run, even if another one runs on this machine
        ray.init(address="local", num_cpus=max(os.cpu_count() or 1, workers), include_dashboard=False,
                 object_store_memory=256 * 2**20, runtime_env=runtime_env, **options)
    return True


class RayGroup:
    """The actors of one run on Ray, with :class:`~a3c_core.processes.ProcessGroup`'s seam (``read``,
    ``check``, ``stop``, ``pids``, ``restarts``) plus :meth:`sync`.

    Crashed actors are brought back by Ray (``max_restarts``, ``max_task_retries``: the restarted
    actor picks up its ``train()`` call again); each comes back saying so, and a child that crashes
    :data:`~a3c_core.processes.MAX_CRASHES` times within ``CRASH_WINDOW`` seconds fails the run, as locally.
    """

    def __init__(self, config: A3CConfig, say: Callable[[str], None] = print):
        self.config, self.say, self.restarts = config, say, 0
        self._actors: dict[str, Any] = {}
        self._runs: dict[str, Any] = {}          # name -> the actor's running train() / evaluate() call
        self._crashes: dict[str, list[float]] = {}
        self._failure: str | None = None
        self._started_ray = self._stopped = False

    def start(self, model: ActorCritic, optimizer: torch.optim.Optimizer, steps: Any) -> None:
        """Connect (:func:`connect`), then start the server from ``model`` and ``optimizer``'s state and
        ``steps.value``, the workers (spread over the nodes) and the evaluator. ``model``, ``optimizer``
        and ``steps`` are kept: :meth:`check` and :meth:`sync` write the server's state back into them."""
        config = self.config
        self.say(f"joining the Ray cluster at {config.ray_address} ..." if config.ray_address
                 else "starting a private Ray on this machine ...")
        self._started_ray = connect(config.ray_address, config.workers)
        self.model, self.optimizer, self.steps = model, optimizer, steps
        # The actors find the server and the mailbox by name (also when Ray restarts one of them).
        run = uuid.uuid4().hex[:12]
        server, mailbox = f"a3c-server-{run}", f"a3c-mailbox-{run}"
        self.server = ParameterServer.options(name=server).remote(config, model.policy.out_features, model.state_dict(),
                                                                  optimizer.state_dict(), steps.value)
        self.mailbox = Mailbox.options(name=mailbox).remote()
        restart = {"max_restarts": -1, "max_task_retries": -1} if config.restart_crashed else {}
        for rank in range(config.workers):
            self._actors[f"worker {rank}"] = WorkerActor.options(
                scheduling_strategy="SPREAD", max_concurrency=2, **restart).remote(rank, config, server, mailbox)
        self._actors["evaluator"] = EvaluatorActor.options(max_concurrency=2, **restart).remote(config, server, mailbox)
        for name, actor in self._actors.items():
            self._runs[name] = actor.evaluate.remote() if name == "evaluator" else actor.train.remote()

    def _places(self) -> dict[str, tuple[int, str]]:
        """``(pid, node id)`` of each actor that answers within 10 s (one still starting does not)."""
        if self._stopped:
            return {}
        asked = {name: actor.place.remote() for name, actor in self._actors.items()}
        ready, _ = ray.wait(list(asked.values()), num_returns=len(asked), timeout=10)
        places = {}
        for name, answer in asked.items():
            try:
                places[name] = ray.get(answer) if answer in ready else None
            except RayError:  # an actor that died meanwhile
                places[name] = None
        return {name: place for name, place in places.items() if place is not None}

    def pids(self) -> dict[str, int]:
        """PIDs of the live actors' processes, by name (on whichever node they run)."""
        return {name: pid for name, (pid, _) in self._places().items()}

    def nodes(self) -> dict[str, str]:
        """The id of the node each actor runs on, by name."""
        return {name: node for name, (_, node) in self._places().items()}

    def read(self, timeout: float) -> list[dict[str, Any]]:
        """The reports waiting in the mailbox; waits up to ``timeout`` seconds for one."""
        deadline = time.monotonic() + timeout
        while True:
            records = ray.get(self.mailbox.take.remote())
            for record in records:
                if record.get("restarted"):
                    self._crashed(record["source"], "its process died")
            if records or time.monotonic() >= deadline:
                return records
            time.sleep(0.05)

    def _crashed(self, name: str, how: str) -> None:
        now = time.monotonic()
        crashes = self._crashes[name] = [t for t in self._crashes.get(name, []) if now - t < CRASH_WINDOW] + [now]
        if len(crashes) >= MAX_CRASHES:
            self._failure = (f"{name} crashed {len(crashes)} times within {CRASH_WINDOW / 60:.0f} minutes ({how}): "
                             f"a crash that keeps happening is an error")
        else:
            self.restarts += 1
            self.say(f"{name} crashed ({how}) and was restarted")

    def check(self) -> tuple[list[dict[str, Any]], str | None]:
        """Bring the server's weights and step count to the trainer; look after finished calls: a
        Python exception is reported and the call restarted, a divergence or an actor Ray could not
        bring back fails the run. Returns ``(records, failure)``."""
        weights, self.steps.value, _ = ray.get(self.server.pull.remote())
        load_flat(self.model, weights)
        records: list[dict[str, Any]] = []
        done, _ = ray.wait(list(self._runs.values()), num_returns=len(self._runs), timeout=0)
        for name, run in [(name, run) for name, run in self._runs.items() if run in done]:
            del self._runs[name]
            try:
                if ray.get(run) == "diverged":
                    self._failure = self._failure or f"{name} found a loss that is not a number: the run diverged"
            except RayActorError as error:
                records.append({"kind": "error", "source": name, "time": time.time(), "error": str(error)})
                self._failure = self._failure or f"{name}'s actor died and Ray could not bring it back"
            except RayError as error:  # a Python exception in the actor: its traceback, then the call again
                records.append({"kind": "error", "source": name, "time": time.time(), "error": str(error)})
                self._crashed(name, "an exception")
                if self.config.restart_crashed and not self._failure:
                    actor = self._actors[name]
                    self._runs[name] = actor.evaluate.remote() if name == "evaluator" else actor.train.remote()
        return records, self._failure

    def sync(self) -> None:
        """Copy the server's weights, Adam state and step count into the trainer's model, optimizer and
        counter (before a checkpoint). Nothing to do once stopped: :meth:`stop` synced last."""
        if self._stopped:
            return
        state = ray.get(self.server.state.remote())
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.steps.value = state["steps"]

    def stop(self, timeout: float) -> tuple[list[dict[str, Any]], list[str]]:
        """Tell the server to stop (every actor hears it at its next message), wait up to ``timeout``
        seconds for the calls to end, :meth:`sync`, then kill every actor of the run and leave Ray
        (shutting down the private Ray this group started). Returns the last records and the names
        of the actors still busy at the deadline."""
        self.server.stop.remote()
        runs = list(self._runs.values())
        _, busy = ray.wait(runs, num_returns=len(runs), timeout=timeout) if runs else ([], [])
        stuck = [name for name, run in self._runs.items() if run in busy]
        try:
            self.sync()
            records = ray.get(self.mailbox.take.remote())
        finally:
            self._stopped = True
            for actor in [*self._actors.values(), self.server, self.mailbox]:
                ray.kill(actor)
            if self._started_ray:
                ray.shutdown()
        return records, stuck
