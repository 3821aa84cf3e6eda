"""The Ray backend's kernel side (notebook 09): join or start a Ray, start the run's actors
(:mod:`a3c_core.ray_actors`), read their reports, look after crashes, stop them.

:class:`RayGroup` is the process group of this backend: the trainer starts, reads, checks and stops
it as it does :class:`~a3c_core.processes.ProcessGroup`, and :meth:`RayGroup.sync` copies the
server's weights and Adam state back into the trainer's model before every checkpoint, so that
checkpoints, resume (from either backend to either), the dashboard and ``status()`` are unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import ray
import torch
from ray.exceptions import RayActorError, RayError, RayTaskError

from .checkpoint import CheckpointError
from .config import A3CConfig
from .model import ActorCritic
from .processes import CRASH_WINDOW, MAX_CRASHES
from .ray_actors import EvaluatorActor, Mailbox, ParameterServer, WorkerActor
from .resources import usable_cores


#: Why a run whose parameter server died has nothing newer than its last checkpoint to save.
SERVER_LOST = ("the parameter server died: the weights and Adam state it learned since the run's last checkpoint "
               "are lost with it, and that checkpoint is where the run can resume")


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
        send_token_if_any()
        host, _, port = address.rpartition(":")
        try:
            if not answers_like_ray(host, int(port)):  # Ray itself would wait for it forever
                raise ConnectionError("something listens there, but it does not answer as Ray's GCS does: is it "
                                      "the port that `ray start --head` printed (6379 by default)?")
            ray.init(address=address, runtime_env={**runtime_env, "py_modules": [str(Path(__file__).parent)]},
                     **options)
        except (OSError, ValueError, RayError, RuntimeError) as error:
            raise ConnectionError(f"cannot reach the Ray cluster at ray_address={address!r} ({error}): start one "
                                  f"with `ray start --head`, or leave ray_address empty for a private Ray (a cluster "
                                  f"with token authentication also needs its token on this machine: "
                                  f"`ray get-auth-token` on the head node prints it)") from error
    else:  # "local": a new Ray for this run, even if another one runs on this machine
        # Ray starts its worker processes at niceness 15: beside any other work on the machine they
        # would starve (and take minutes to start). At 0, the workers nice themselves to
        # WORKER_NICENESS, as the local backend's do. The raylet reads this when it starts.
        os.environ.setdefault("RAY_worker_niceness", "0")
        ray.init(address="local", num_cpus=max(usable_cores(), workers), include_dashboard=False,
                 object_store_memory=256 * 2**20, runtime_env=runtime_env, **options)
    return True


#: A client's HTTP/2 connection preface and an empty SETTINGS frame (RFC 9113, 3.4 and 6.5).
HTTP2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def answers_like_ray(host: str, port: int, timeout: float = 5.0) -> bool:
    """Whether ``host:port`` answers as the head of a Ray cluster does. Its GCS is a gRPC (HTTP/2) server,
    which replies to a client's preface with a SETTINGS frame (frame type 4, the fourth byte); a web server,
    a database or a silent program does not. Raises ``OSError`` if nothing listens there."""
    reply, deadline = b"", time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(HTTP2_HELLO)
        while len(reply) < 4 and (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                chunk = sock.recv(9)
            except OSError:  # the timeout, or a reset
                break
            if not chunk:
                break
            reply += chunk
    return len(reply) >= 4 and reply[3] == 4


def send_token_if_any() -> None:
    """Join with Ray's authentication token when this machine has one (``~/.ray/auth_token``, or
    ``RAY_AUTH_TOKEN``/``RAY_AUTH_TOKEN_PATH``), as Ray itself does for a cluster it finds on its own.

    Since Ray 2.59 ``ray start --head`` turns token authentication on where that file exists (any
    private Ray writes it), and the cluster then refuses a client that sends no token; a cluster
    without authentication ignores it. ``RAY_AUTH_MODE``, when set, decides as usual. This is Ray's
    own helper for that, not public API (``tests/test_ray_backend.py`` joins such a cluster through
    the CLI). Ray before 2.52 has no tokens: nothing to do."""
    try:
        from ray._private.authentication import authentication_token_setup as token_setup
    except ImportError:
        return
    notices = logging.getLogger(token_setup.__name__)  # "token authentication is enabled ...": not news here
    level = notices.level
    notices.setLevel(logging.ERROR)
    try:
        token_setup.maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
    finally:
        notices.setLevel(level)


class RayGroup:
    """The actors of one run on Ray, with :class:`~a3c_core.processes.ProcessGroup`'s seam (``read``,
    ``check``, ``stop``, ``pids``, ``restarts``) plus :meth:`sync`.

    Crashed actors are brought back by Ray (``max_restarts``, ``max_task_retries``: the restarted
    actor picks up its ``train()`` call again); each comes back saying so, and a child that crashes
    :data:`~a3c_core.processes.MAX_CRASHES` times within ``CRASH_WINDOW`` seconds fails the run, as locally.
    """

    def __init__(self, config: A3CConfig, say: Callable[[str], None] = print, warn: Callable[[str], None] = print):
        self.config, self.say, self.warn, self.restarts = config, say, warn, 0
        self._actors: dict[str, Any] = {}
        self._runs: dict[str, Any] = {}          # name -> the actor's running train() / evaluate() call
        self._crashes: dict[str, list[float]] = {}
        self._failure: str | None = None
        self._lost: str | None = None  # why the server's state cannot be had any more
        self._started_ray = self._stopped = False
        self._known: dict[str, tuple[int, str]] = {}  # each actor's (pid, node id), once it answered
        self._asked: dict[str, Any] = {}              # the answers still awaited
        self._asked_at = 0.0

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
        """``(pid, node id)`` of each actor that has answered. An actor's place changes only when Ray
        restarts it, which it reports: so each actor is asked once (again after a restart), and one
        still starting is asked again at most once a second, without waiting for its answer."""
        if self._stopped:
            return {}
        now = time.monotonic()
        for name, answer in list(self._asked.items()):
            ready, _ = ray.wait([answer], timeout=0)
            if ready:
                del self._asked[name]
                try:
                    self._known[name] = ray.get(answer)
                except RayError:  # an actor that died meanwhile: asked again later
                    pass
        if now - self._asked_at >= 1.0:
            self._asked_at = now
            for name, actor in self._actors.items():
                if name not in self._known and name not in self._asked:
                    self._asked[name] = actor.place.remote()
        return dict(self._known)

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
            try:
                records = ray.get(self.mailbox.take.remote())
            except RayActorError:  # no restarts for it: every report from now on would be lost
                self._failure = self._failure or "the run's mailbox actor died (Ray could not bring it back)"
                return []
            for record in records:
                if record.get("restarted"):
                    self._crashed(record["source"], "its process died")
                    self._known.pop(record["source"], None)  # a new process, perhaps on another node
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
            self.warn(f"{name} crashed ({how}) and was restarted")

    def check(self) -> tuple[list[dict[str, Any]], str | None]:
        """Bring the server's step count to the trainer; look after finished calls: a
        Python exception is reported and the call restarted, a divergence or an actor Ray could not
        bring back fails the run. Returns ``(records, failure)``."""
        try:
            self.steps.value, _ = ray.get(self.server.progress.remote())  # the weights come at sync()
        except RayActorError:  # its weights and Adam state went with it: nothing for the workers to do
            self._lost = self._lost or SERVER_LOST
            self._failure = self._failure or "the parameter server died (Ray could not bring it back)"
            return [], self._failure
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
            except RayError as error:  # an exception in the call: reported, then the call again
                if not isinstance(error, RayTaskError):  # the actor's own code reported its traceback itself
                    records.append({"kind": "error", "source": name, "time": time.time(), "error": str(error)})
                self._crashed(name, "an exception")
                if self.config.restart_crashed and not self._failure:
                    actor = self._actors[name]
                    self._runs[name] = actor.evaluate.remote() if name == "evaluator" else actor.train.remote()
        return records, self._failure

    def sync(self) -> None:
        """Copy the server's weights, Adam state and step count into the trainer's model, optimizer and
        counter (before a checkpoint). Nothing to do once stopped: :meth:`stop` synced last. Raises
        ``CheckpointError`` once the server has died: what it held is lost (:data:`SERVER_LOST`)."""
        if self._lost:
            raise CheckpointError(self._lost)
        if self._stopped:
            return
        try:
            state = ray.get(self.server.state.remote())
        except RayActorError as error:
            self._lost = SERVER_LOST
            raise CheckpointError(self._lost) from error
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
        records: list[dict[str, Any]] = []
        try:
            with contextlib.suppress(CheckpointError):  # the server is gone: said at the final save
                self.sync()
            with contextlib.suppress(RayActorError):  # the mailbox is gone, with what it held
                records = ray.get(self.mailbox.take.remote())
        finally:
            self._stopped = True
            for actor in [*self._actors.values(), self.server, self.mailbox]:
                ray.kill(actor)
            if self._started_ray:
                ray.shutdown()
        return records, stuck
