"""One training process of A3C (notebook 05): rollout -> loss -> shared update -> resync.

The trainer starts ``config.workers`` of these with the ``spawn`` start method. Each one plays its
own copy of the game with its own seed and its own local model, and every ``rollout_steps`` steps
(or at the end of an episode) turns what it saw into a gradient for the one shared model.

Workers talk to the kernel only through a queue of small dicts (``kind`` = ``"episode"``,
``"losses"`` or ``"error"``). A full queue drops the record: a report never blocks training.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .config import A3CConfig
from .envs import episode_score, make_env
from .loss import a3c_loss
from .model import ActorCritic, policy_step
from .processes import DIVERGED_EXIT_CODE, parent_alive, release_queue_if_orphaned, send, setup_child_process
from .shared import SharedAdam, copy_gradients

#: Loss terms are averaged over this many updates before one "losses" record is sent.
LOSS_REPORT_EVERY = 20
#: Workers run at a lower CPU priority, so the kernel, the dashboard and the paced evaluator stay
#: responsive however many workers share the cores (an idle machine still gives them every cycle).
WORKER_NICENESS = 5


@dataclass
class Rollout:
    """Up to ``rollout_steps`` steps of one worker. The tensors keep their graph, for the loss."""

    states: list[np.ndarray] = field(default_factory=list)           # (C, H, W) each, as the model saw them
    actions: list[int] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)         # V(s_t), () each
    log_probs: list[torch.Tensor] = field(default_factory=list)      # log pi(a_t | s_t), () each
    entropies: list[torch.Tensor] = field(default_factory=list)      # H(pi(. | s_t)), () each
    next_obs: np.ndarray | None = None                               # s_T, where the next rollout starts
    hidden: torch.Tensor | None = None                               # GRU state after the last step
    done: bool = False                                               # the episode ended at the last step
    info: dict[str, Any] = field(default_factory=dict)               # env info of the last step


def collect_rollout(model: ActorCritic, env: Any, obs: np.ndarray, hidden: torch.Tensor, steps: int) -> Rollout:
    """Play up to ``steps`` steps from ``obs`` (``(C, H, W)``) and ``hidden`` (``(1, hidden_size)``),
    sampling actions with softmax + multinomial; stop early at the end of an episode."""
    rollout = Rollout()
    for _ in range(steps):
        action, log_prob, entropy, value, hidden = policy_step(model, torch.from_numpy(obs).unsqueeze(0), hidden)
        rollout.states.append(obs)
        obs, reward, terminated, truncated, rollout.info = env.step(action)
        rollout.actions.append(action)
        rollout.rewards.append(float(reward))
        rollout.values.append(value)
        rollout.log_probs.append(log_prob)
        rollout.entropies.append(entropy)
        rollout.done = terminated or truncated
        if rollout.done:
            break
    rollout.next_obs, rollout.hidden = obs, hidden
    return rollout


def bootstrap_value(model: ActorCritic, rollout: Rollout) -> float:
    """V(s_T) of the state after the rollout, the start of its n-step returns; 0 if the episode ended."""
    if rollout.done:
        return 0.0
    with torch.no_grad():
        _, value, _ = model(torch.from_numpy(rollout.next_obs).unsqueeze(0), rollout.hidden)
    return float(value)


def run_worker(rank: int, config: A3CConfig, shared_model: ActorCritic, optimizer: SharedAdam,
               steps: Any, stop_event: Any, queue: Any) -> None:
    """Entry point of a worker process: :func:`train_loop` with child set-up and error reporting."""
    setup_child_process()
    if hasattr(os, "nice"):  # not on Windows
        os.nice(WORKER_NICENESS)
    try:
        train_loop(rank, config, shared_model, optimizer, steps, stop_event, queue)
    except FloatingPointError as error:  # the run diverged: restarting would not help, the trainer stops it
        send(queue, {"kind": "error", "source": f"worker {rank}", "rank": rank, "time": time.time(),
                     "diverged": True, "error": f"worker {rank}: {error}"})
        sys.exit(DIVERGED_EXIT_CODE)
    except Exception:  # reported to the kernel, which shows it and may restart the worker
        send(queue, {"kind": "error", "source": f"worker {rank}", "rank": rank, "time": time.time(),
                     "error": traceback.format_exc()})
        raise
    finally:
        release_queue_if_orphaned(queue)


def train_loop(rank: int, config: A3CConfig, shared_model: ActorCritic, optimizer: SharedAdam,
               steps: Any, stop_event: Any, queue: Any) -> None:
    """Train until ``stop_event`` is set, ``config.max_steps`` is reached or the parent dies.

    Args:
        rank: worker number; the game is seeded with ``config.seed + rank``.
        shared_model: the model in shared memory (``share_memory()`` was called).
        optimizer: the :class:`SharedAdam` over ``shared_model``'s parameters.
        steps: a shared ``multiprocessing.Value`` counting agent steps of all workers.
        stop_event: a ``multiprocessing.Event``; set means stop.
        queue: a ``multiprocessing.Queue`` for reports to the kernel.
    """
    source = f"worker {rank}"
    torch.manual_seed(config.seed + rank)
    env = make_env(config)
    model = ActorCritic.from_config(config, env.action_space.n)
    model.load_state_dict(shared_model.state_dict())
    obs, _ = env.reset(seed=config.seed + rank)
    hidden = model.initial_state()
    episode_reward, episode_length, loss_sums, updates = 0.0, 0, np.zeros(3), 0
    while not stop_event.is_set() and parent_alive():
        if config.max_steps and steps.value >= config.max_steps:
            break
        model.load_state_dict(shared_model.state_dict())
        rollout = collect_rollout(model, env, obs, hidden.detach(), config.rollout_steps)
        obs, hidden = rollout.next_obs, rollout.hidden
        with steps.get_lock():
            steps.value += len(rollout.rewards)

        terms = a3c_loss(rollout.rewards, torch.stack(rollout.values), torch.stack(rollout.log_probs),
                         torch.stack(rollout.entropies), bootstrap_value(model, rollout), config.gamma,
                         config.gae_lambda, config.value_coef, config.entropy_coef)
        if not torch.isfinite(terms.total):
            raise FloatingPointError(f"the loss is {terms.total.item()} at step {steps.value:,}: the run diverged")
        model.zero_grad(set_to_none=True)
        terms.total.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        if not torch.isfinite(norm):
            raise FloatingPointError(f"the gradient's norm is {norm.item()} at step {steps.value:,}: the run diverged")
        copy_gradients(model, shared_model)
        optimizer.step()

        loss_sums += [terms.policy.item(), terms.value.item(), terms.entropy.item() / len(rollout.rewards)]
        updates += 1
        if updates % LOSS_REPORT_EVERY == 0:
            policy, value, entropy = (loss_sums / LOSS_REPORT_EVERY).tolist()
            send(queue, {"kind": "losses", "source": source, "rank": rank, "steps": steps.value,
                         "time": time.time(), "policy_loss": policy, "value_loss": value, "entropy": entropy})
            loss_sums[:] = 0.0

        episode_reward += sum(rollout.rewards)
        episode_length += len(rollout.rewards)
        if rollout.done:
            score = episode_score(rollout.info)
            send(queue, {"kind": "episode", "source": source, "rank": rank, "steps": steps.value,
                         "time": time.time(), "reward": episode_reward,
                         "score": episode_reward if score is None else score, "length": episode_length})
            obs, _ = env.reset()
            hidden = model.initial_state()
            episode_reward, episode_length = 0.0, 0
    env.close()
