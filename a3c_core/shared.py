"""One model, many processes: shared weights and a shared Adam (notebook 03).

The trainer builds one :class:`~a3c_core.model.ActorCritic` and calls ``share_memory()`` on it: its
parameters now live in shared memory, and every worker process that receives the model sees the
same bytes. A worker trains a *local* copy, then:

1. :func:`copy_gradients` makes the local gradients the shared parameters' gradients;
2. ``SharedAdam.step()`` updates the shared weights in place (every process sees the change);
3. ``local.load_state_dict(shared.state_dict())`` reloads the new weights.

:class:`SharedMemoryLink` is these steps as the worker's loop uses them: ``pull`` (3) before a rollout,
``push`` (1 and 2) after it. The Ray backend has a link with the same two methods that talks to a
parameter server instead (:class:`~a3c_core.ray_actors.ServerLink`); the loop is the same.

Adam keeps a step count and two running moments per parameter. If each worker kept its own, the
moments would describe one worker's gradients only; :class:`SharedAdam` puts them in shared memory
too, so all workers update one Adam. The update rule itself is ``torch.optim.Adam``'s own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from .config import A3CConfig
from .processes import parent_alive


class SharedAdam(torch.optim.Adam):
    """``torch.optim.Adam`` whose state (step, exp_avg, exp_avg_sq) lives in shared memory.

    The state is created eagerly here (Adam would create it lazily at the first step, in whichever
    process stepped first, in private memory) and moved to shared memory. ``step()`` is Adam's own.
    Pass the optimizer to worker processes together with the shared model.
    """

    # torch wraps step, add_param_group, state_dict and load_state_dict for torch.compile; the wrapper
    # imports torch's compiler (about 800 modules, 70-90 MB of memory) in each process at its first
    # call, only to keep the compiler out. SharedAdam is never compiled: it calls torch's own methods
    # past the wrapper, so neither the kernel (which builds, saves and loads it) nor a worker (which
    # steps it) pays for the compiler.
    @torch.no_grad()
    def step(self, closure: None = None) -> None:
        """Adam's own update (``torch.optim.Adam.step``). ``closure``: not used."""
        torch.optim.Adam.step.__wrapped__(self, closure)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        torch.optim.Optimizer.add_param_group.__wrapped__(self, param_group)

    def state_dict(self) -> dict[str, Any]:
        return torch.optim.Optimizer.state_dict.__wrapped__(self)

    def __init__(self, params: Iterable[nn.Parameter], lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        # foreach=False: the plain per-parameter update, the same on every platform.
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=False)
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = torch.zeros((), dtype=torch.float32).share_memory_()
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format).share_memory_()
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format).share_memory_()

    def load_state_dict(self, state_dict: dict) -> None:
        """Adam's own loading (it makes new state tensors), then those tensors go to shared memory.

        Call it before the worker processes start, as the trainer does when it resumes.
        """
        torch.optim.Optimizer.load_state_dict.__wrapped__(self, state_dict)
        for state in self.state.values():
            for value in state.values():
                if torch.is_tensor(value):
                    value.share_memory_()


def copy_gradients(local_model: nn.Module, shared_model: nn.Module) -> None:
    """Make the local model's gradients the shared model's gradients (no copy of the data).

    ``.grad`` is an attribute of this process's view of a shared parameter, so setting it is private
    to the worker; the optimizer then reads it when it updates the shared weights.
    """
    for local, shared in zip(local_model.parameters(), shared_model.parameters()):
        shared.grad = local.grad



def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Make ``lr`` the rate of ``optimizer``'s next step (a worker's own view of the shared Adam)."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def count_steps(steps: Any, n: int) -> int:
    """Add ``n`` agent steps to the shared counter ``steps`` (under its lock); the new total."""
    with steps.get_lock():
        steps.value += n
        return steps.value


class SharedMemoryLink:
    """How a worker on this machine reaches the one model: through shared memory.

    Args:
        config: the run's settings (``max_steps``; ``lr_at``, the learning rate of a step count).
        shared_model: the model in shared memory (``share_memory()`` was called).
        optimizer: the :class:`SharedAdam` over ``shared_model``'s parameters.
        steps: a shared ``multiprocessing.Value`` counting agent steps of all workers.
        stop_event: the group's :class:`~a3c_core.processes.StopFlag`; set means stop.
    """

    def __init__(self, config: A3CConfig, shared_model: nn.Module, optimizer: SharedAdam, steps: Any, stop_event: Any):
        self.config, self.shared_model, self.optimizer = config, shared_model, optimizer
        self.counter, self.stop_event = steps, stop_event

    @property
    def steps(self) -> int:
        """Agent steps of all workers so far."""
        return self.counter.value

    def pull(self, model: nn.Module) -> bool:
        """Load the shared weights into ``model``; False instead once training is over (stop was
        asked, ``max_steps`` reached, or the process that started this one died)."""
        if self.stop_event.is_set() or not parent_alive() or 0 < self.config.max_steps <= self.counter.value:
            return False
        model.load_state_dict(self.shared_model.state_dict())
        return True

    def push(self, model: nn.Module, n_steps: int) -> None:
        """Count ``n_steps`` agent steps, make ``model``'s gradients the shared model's and take one
        step of the shared Adam (at the learning rate of the step count reached)."""
        step = count_steps(self.counter, n_steps)
        copy_gradients(model, self.shared_model)
        set_learning_rate(self.optimizer, self.config.lr_at(step))
        self.optimizer.step()
