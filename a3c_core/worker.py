"""One training process of A3C (notebooks 04 and 05): rollout -> loss -> shared update -> resync.

The trainer starts ``config.workers`` of these (forkserver on Linux, spawn elsewhere). Each one plays its
own copies of the game (``games_per_worker``, 1 by default) with its own seeds and its own local model,
and every ``rollout_steps`` steps of each game (or at the end of an episode) turns what it saw into a
gradient for the one shared model. Several games share each forward pass (one batch of K states) and
each update (the sum of their losses), which spreads the per-call cost of the model over K steps.
:func:`train_loop` is that algorithm, top to bottom; :class:`Reporter` keeps its bookkeeping. The
loop reaches the shared model through a *link* with two methods, ``pull`` and ``push``: shared memory
here (:class:`~a3c_core.shared.SharedMemoryLink`), a parameter server in the Ray backend (notebook 09).

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
from .loss import LossTerms, a3c_loss
from .model import ActorCritic
from .processes import DIVERGED_EXIT_CODE, release_queue_if_orphaned, send, setup_child_process
from .shared import SharedAdam, SharedMemoryLink

#: Loss terms are averaged over this many updates before one "losses" record is sent.
LOSS_REPORT_EVERY = 20
#: Workers run at a lower CPU priority, so the kernel, the dashboard and the paced evaluator stay
#: responsive however many workers share the cores (an idle machine still gives them every cycle).
WORKER_NICENESS = 5
#: Seeds of workers that start in the middle of a run begin here: above the evaluator's games during
#: training (``10,000 + seed + steps``) and a final evaluation's (from 1,000,000,000).
RESTART_SEED = 2_000_000_000


@dataclass
class Rollout:
    """Up to ``rollout_steps`` steps of one game. The tensors keep their graph, for the loss."""

    states: list[np.ndarray] = field(default_factory=list)           # (C, H, W) each, as the model saw them
    actions: list[int] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)         # V(s_t), () each
    log_probs: list[torch.Tensor] = field(default_factory=list)      # log pi(a_t | s_t), () each
    entropies: list[torch.Tensor] = field(default_factory=list)      # H(pi(. | s_t)), () each
    next_obs: np.ndarray | None = None                               # s_T, where the next rollout starts
    hidden: torch.Tensor | None = None                               # GRU state after the last step (1, hidden_size)
    terminated: bool = False                                         # the game ended at the last step
    truncated: bool = False                                          # a time limit cut the episode at the last step
    info: dict[str, Any] = field(default_factory=dict)               # env info of the last step

    @property
    def episode_over(self) -> bool:
        """The episode ended at the last step, either way: the next rollout starts a new one."""
        return self.terminated or self.truncated


def collect_rollouts(model: ActorCritic, envs: list[Any], obs: list[np.ndarray], hidden: torch.Tensor,
                     steps: int) -> list[Rollout]:
    """Play up to ``steps`` steps in each of the K games ``envs`` at once, from ``obs`` (K states
    ``(C, H, W)``) and ``hidden`` (``(K, hidden_size)``): one batched ``model.act`` per step (softmax +
    multinomial) for the games still playing. A game stops at the end of its episode, so a rollout
    never mixes two games. One rollout per game, in the order of ``envs``."""
    rollouts, obs = [Rollout() for _ in envs], list(obs)
    memory = list(hidden.split(1))                                   # (1, hidden_size) per game
    playing = list(range(len(envs)))
    for _ in range(steps):
        states = torch.from_numpy(np.stack([obs[k] for k in playing]))                  # (playing, C, H, W)
        step = model.act(states, torch.cat([memory[k] for k in playing]))             # one batch, every game
        for i, k in enumerate(playing):
            rollout, action = rollouts[k], int(step.action[i])
            rollout.states.append(obs[k])
            obs[k], reward, rollout.terminated, rollout.truncated, rollout.info = envs[k].step(action)
            rollout.actions.append(action)
            rollout.rewards.append(float(reward))
            rollout.values.append(step.value[i])
            rollout.log_probs.append(step.log_prob[i])
            rollout.entropies.append(step.entropy[i])
            memory[k] = step.hidden[i:i + 1]
        playing = [k for k in playing if not rollouts[k].episode_over]
        if not playing:
            break
    for k, rollout in enumerate(rollouts):
        rollout.next_obs, rollout.hidden = obs[k], memory[k]
    return rollouts


def bootstrap_value(model: ActorCritic, rollout: Rollout) -> float:
    """V(s_T) of the state after the rollout, where its n-step returns start.

    0 only if the game *terminated* (nothing follows the end of a game). A *truncated* episode (a time
    limit) could have gone on, so its last state is worth V(s_T) like any other.
    """
    if rollout.terminated:
        return 0.0
    with torch.no_grad():
        _, value, _ = model(torch.from_numpy(rollout.next_obs).unsqueeze(0), rollout.hidden)
    return float(value)


def rollout_loss(model: ActorCritic, rollout: Rollout, config: A3CConfig) -> LossTerms:
    """The A3C loss (notebook 04) of ``rollout``, bootstrapped from V(s_T)."""
    return a3c_loss(rollout.rewards, torch.stack(rollout.values), torch.stack(rollout.log_probs),
                    torch.stack(rollout.entropies), bootstrap_value(model, rollout), config.gamma,
                    config.gae_lambda, config.value_coef, config.entropy_coef)


def rollouts_loss(model: ActorCritic, rollouts: list[Rollout], config: A3CConfig) -> LossTerms:
    """The sum of each game's :func:`rollout_loss`: one gradient for all the steps of one update."""
    return LossTerms(*(sum(parts) for parts in zip(*(rollout_loss(model, r, config) for r in rollouts))))


def ensure_finite(value: torch.Tensor, what: str, step: int) -> None:
    """Raise ``FloatingPointError`` if ``value`` (one number) is NaN or infinite: the run diverged, and
    stepping the optimizer would put that number into the shared weights."""
    if not torch.isfinite(value):
        raise FloatingPointError(f"{what} is {value.item()} at step {step:,}: the run diverged")


class Reporter:
    """The worker's bookkeeping, kept out of the loop: the running episode's reward and length, the
    loss terms of the last updates, and the records they become on ``queue``.

    Records: ``"episode"`` (rank, steps, time, reward, score, length) when an episode ends, and
    ``"losses"`` (rank, steps, time, policy_loss, value_loss, entropy per step, grad_norm: the
    gradient's norm before clipping), averaged over ``LOSS_REPORT_EVERY`` updates.
    """

    def __init__(self, rank: int, link: Any, queue: Any, games: int = 1):
        self.rank, self.link, self.queue, self.source = rank, link, queue, f"worker {rank}"
        self.episode_rewards, self.episode_lengths = [0.0] * games, [0] * games   # each game's running episode
        self.loss_sums, self.updates = np.zeros(4), 0

    def record(self, kind: str, **values: Any) -> None:
        """Send one record of ``kind`` with ``values``, stamped with the rank, step count and time."""
        send(self.queue, {"kind": kind, "source": self.source, "rank": self.rank, "steps": self.link.steps,
                          "time": time.time(), **values})

    def update(self, rollouts: list[Rollout], terms: LossTerms, grad_norm: torch.Tensor) -> None:
        """Count one update of ``rollouts``' steps (one rollout per game; their loss ``terms``, the gradient's
        norm before clipping); report each episode that ended, and the losses every ``LOSS_REPORT_EVERY`` updates."""
        steps = sum(len(rollout.rewards) for rollout in rollouts)
        self.loss_sums += [terms.policy.item(), terms.value.item(), terms.entropy.item() / steps, grad_norm.item()]
        self.updates += 1
        if self.updates % LOSS_REPORT_EVERY == 0:
            policy, value, entropy, norm = (self.loss_sums / LOSS_REPORT_EVERY).tolist()
            self.record("losses", policy_loss=policy, value_loss=value, entropy=entropy, grad_norm=norm)
            self.loss_sums[:] = 0.0
        for game, rollout in enumerate(rollouts):
            self.episode_rewards[game] += sum(rollout.rewards)
            self.episode_lengths[game] += len(rollout.rewards)
            if rollout.episode_over:
                score, reward = episode_score(rollout.info), self.episode_rewards[game]
                self.record("episode", reward=reward, length=self.episode_lengths[game],
                            score=reward if score is None else score)
                self.episode_rewards[game], self.episode_lengths[game] = 0.0, 0


def game_seeds(config: A3CConfig, rank: int, steps: int) -> list[int]:
    """The seeds of worker ``rank``'s ``config.games_per_worker`` games when it starts at ``steps``; the
    first also seeds its action sampling.

    ``config.seed + rank`` for the first game of a fresh run, ``+ workers * k`` for game k. A worker
    restarted after a crash, or a resumed run, starts at ``steps > 0`` and plays other games than it
    played before: ``RESTART_SEED + config.seed + rank + workers * (games * steps + k)``, distinct for
    every rank, game and starting step, and above every seed the evaluator uses."""
    games = range(config.games_per_worker)
    if steps == 0:
        return [config.seed + rank + config.workers * k for k in games]
    return [RESTART_SEED + config.seed + rank + config.workers * (len(games) * steps + k) for k in games]


def next_starts(model: ActorCritic, envs: list[Any], rollouts: list[Rollout]) -> tuple[list[np.ndarray], torch.Tensor]:
    """Where each game's next rollout starts: its last state and memory, or, where the episode ended,
    a new game with an empty memory (h = 0). The states, and the memories ``(K, hidden_size)``."""
    obs, memory = [], []
    for env, rollout in zip(envs, rollouts):
        if rollout.episode_over:
            obs.append(env.reset()[0])
            memory.append(model.initial_state())
        else:
            obs.append(rollout.next_obs)
            memory.append(rollout.hidden)
    return obs, torch.cat(memory)


def run_worker(rank: int, config: A3CConfig, shared_model: ActorCritic, optimizer: SharedAdam,
               steps: Any, stop_event: Any, queue: Any) -> None:
    """Entry point of a worker process of the local backend: :func:`train` through shared memory.

    Args:
        rank: worker number; its games are seeded by :func:`game_seeds`.
        shared_model, optimizer, steps, stop_event: what :class:`~a3c_core.shared.SharedMemoryLink` needs.
        queue: a ``multiprocessing.Queue`` for reports to the kernel.
    """
    setup_child_process()
    if hasattr(os, "nice"):  # not on Windows
        os.nice(WORKER_NICENESS)
    try:
        if train(rank, config, SharedMemoryLink(config, shared_model, optimizer, steps, stop_event), queue) == "diverged":
            sys.exit(DIVERGED_EXIT_CODE)  # restarting would not help: the trainer stops the run
    finally:
        release_queue_if_orphaned(queue)


def train(rank: int, config: A3CConfig, link: Any, queue: Any) -> str:
    """:func:`train_loop`, and how it ended: "done", or "diverged" (reported) when a loss or gradient
    stopped being a number. Any other error is reported with its traceback, then raised: the backend
    sees the worker crash and may restart it. Both backends' workers run this."""
    try:
        train_loop(rank, config, link, queue)
    except FloatingPointError as error:
        send(queue, {"kind": "error", "source": f"worker {rank}", "rank": rank, "time": time.time(),
                     "diverged": True, "error": f"worker {rank}: {error}"})
        return "diverged"
    except Exception:
        send(queue, {"kind": "error", "source": f"worker {rank}", "rank": rank, "time": time.time(),
                     "error": traceback.format_exc()})
        raise
    return "done"


def train_loop(rank: int, config: A3CConfig, link: Any, queue: Any) -> None:
    """A3C's worker: play, learn, share; until ``link.pull`` says the training is over.

    Args:
        rank: worker number; its games are seeded by :func:`game_seeds`.
        link: the way to the one shared model: ``link.pull(model)`` loads its weights into ``model``
            (False once training is over), ``link.push(model, n)`` applies ``model``'s gradients to it
            for ``n`` agent steps, ``link.steps`` is the step count of all workers. Shared memory on
            one machine (:class:`~a3c_core.shared.SharedMemoryLink`), a parameter server on Ray
            (:class:`~a3c_core.ray_actors.ServerLink`).
        queue: where reports go (anything with ``put_nowait``).
    """
    seeds = game_seeds(config, rank, link.steps)
    torch.manual_seed(seeds[0])
    envs = [make_env(config) for _ in seeds]                          # this worker's games
    model = ActorCritic.from_config(config, envs[0].action_space.n)   # the worker's private copy
    obs = [env.reset(seed=seed)[0] for env, seed in zip(envs, seeds)]
    hidden = model.initial_state(len(envs))                           # an episode starts with h = 0
    reporter = Reporter(rank, link, queue, len(envs))
    while link.pull(model):                                           # 03: start from the shared weights
        # 02 + 04: play up to rollout_steps in every game; detach: gradients stop at the rollout's start
        rollouts = collect_rollouts(model, envs, obs, hidden.detach(), config.rollout_steps)
        steps = sum(len(rollout.rewards) for rollout in rollouts)
        terms = rollouts_loss(model, rollouts, config)                # 04: returns from V(s_T), the loss
        ensure_finite(terms.total, "the loss", link.steps + steps)
        model.zero_grad(set_to_none=True)
        terms.total.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)   # 04: clip
        ensure_finite(norm, "the gradient's norm", link.steps + steps)
        link.push(model, steps)                                       # 03: one step of the shared Adam
        reporter.update(rollouts, terms, norm)
        obs, hidden = next_starts(model, envs, rollouts)              # go on, or a new game with h = 0
    for env in envs:
        env.close()
