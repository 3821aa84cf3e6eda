"""The greedy evaluator: how good is the shared model right now?

It plays its own copy of the game with ``argmax`` actions (no exploration), reloads the shared
weights before each episode, and reports every episode (``kind="eval"``: shaped reward, the game's
own score, length, and the agent steps and time at which it *loaded* the weights it played with) and,
every ``eval_frame_every`` steps, the raw RGB frame it sees (``kind="frame"``, ``(210, 160, 3)``
uint8: an Atari frame is only 100 kB) for the dashboard.

It plays under the field's protocol (Machado et al. 2018): sticky actions with probability
``eval_sticky_action_prob`` (0.25), so that every episode is a different game and a score measures a
policy, not one memorised line of play. With 0 a greedy agent replays the same game each time.

It plays at ``eval_steps_per_second`` (30 by default: about twice the game's real speed with frame
skip 4), so that on a 2-core laptop it leaves the cores to the workers and stays watchable, and it
takes at most one step for every :data:`WORKER_STEPS_PER_EVAL_STEP` steps of the workers: where they
get little CPU (a class sharing one server) it waits for them instead of taking what they need.
"""

from __future__ import annotations

import statistics
import time
import traceback
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .config import A3CConfig
from .envs import make_env
from .model import ActorCritic
from .processes import send

#: The evaluator's games are seeded apart from every worker's (workers use ``seed + rank``, or from
#: ``worker.RESTART_SEED`` on when they start in the middle of a run).
EVAL_SEED_OFFSET = 10_000
#: The evaluator's steps are at most the workers' (counted from the evaluator's start) divided by this.
WORKER_STEPS_PER_EVAL_STEP = 4
#: First seed of a final evaluation's games, far above every seed a training run uses (workers
#: ``seed + rank`` or from 2,000,000,000 on, the evaluator ``10,000 + seed + steps``): those games were never
#: played in training.
FINAL_SEED = 1_000_000_000


def play_episode(model: ActorCritic | None, env: Any, seed: int | None = None, greedy: bool = True,
                 record: bool = False, on_step: Callable[[int, int], bool] | None = None,
                 max_steps: int = 100_000, memory: bool = True, trace: bool = False) -> dict[str, Any]:
    """Play one episode with ``model`` from a fresh ``env.reset(seed=seed)``.

    ``memory=False`` wipes the GRU's hidden state before every step, so that the model only ever
    sees its current input (notebook 08's test of what the memory is for).

    ``trace=True`` also returns ``trace``, what the model saw and said at each step t (T steps):
    ``states`` ``(T, C, H, W)``, ``hiddens`` ``(T, hidden_size)`` (the hidden state carried *into*
    step t), ``actions`` ``(T,)``, ``values`` ``(T,)`` (V(s_t)), ``probs`` ``(T, n_actions)``
    (pi(a | s_t)) and ``rewards`` ``(T,)``: numpy arrays, except ``hiddens``, a tensor to feed back
    into the model (notebook 06).

    ``model=None`` plays uniformly random actions instead (``env.action_space.sample()``, seeded
    with ``seed`` too): the baseline a trained agent must beat.

    ``on_step(t, action)`` is called after each step t = 1, 2, ...; returning False ends the episode
    early. ``env`` must come from ``make_env(config, render_mode="rgb_array")`` when ``record`` is true.

    Returns ``reward`` (shaped, as trained), ``score`` (the game's own points: ``info["raw_reward"]``
    where the reward is shaped; a game cut short counts the points it made), ``length``, ``finished``
    (the game ended, rather than ``on_step`` or ``max_steps``) and ``frames``: if ``record``, the raw
    ``(210, 160, 3)`` uint8 frames from the first to the last.
    """
    if trace and model is None:
        raise ValueError("trace=True needs a model: a random player has no values or probabilities to trace")
    obs, _ = env.reset(seed=seed)
    if model is None:
        env.action_space.seed(seed)
    else:
        hidden = model.initial_state()
    frames = [env.render()] if record else []
    steps: dict[str, list] = {key: [] for key in ("states", "hiddens", "actions", "values", "probs", "rewards")}
    reward_sum, score, length, finished = 0.0, 0.0, 0, False
    while not finished and length < max_steps:
        if model is None:
            action = int(env.action_space.sample())
        else:
            if not memory:
                hidden = model.initial_state()
            with torch.no_grad():
                step = model.act(torch.from_numpy(obs).unsqueeze(0), hidden, greedy)
            action = int(step.action)
            if trace:
                for key, item in (("states", obs), ("hiddens", hidden[0]), ("values", float(step.value)),
                                  ("probs", step.probs[0].numpy()), ("actions", action)):
                    steps[key].append(item)
            hidden = step.hidden
        obs, reward, terminated, truncated, info = env.step(action)
        if trace:
            steps["rewards"].append(float(reward))
        reward_sum += float(reward)
        score += float(info.get("raw_reward", reward))
        length += 1
        finished = terminated or truncated
        if record:
            frames.append(env.render())
        if on_step is not None and on_step(length, action) is False:
            break
    result = {"reward": reward_sum, "score": score, "length": length,
              "finished": finished, "frames": frames}
    if trace:
        result["trace"] = {key: np.array(values) for key, values in steps.items() if key != "hiddens"}
        result["trace"]["hiddens"] = torch.stack(steps["hiddens"])
    return result


def score_summary(scores: Sequence[float], resamples: int = 10_000) -> dict[str, Any]:
    """Mean, sample standard deviation, min, max and a 95 % bootstrap confidence interval of the mean
    (percentiles 2.5 and 97.5 of ``resamples`` resampled means, a fixed random stream so that the same
    scores always give the same interval) of ``scores`` ``(N,)``."""
    values = np.asarray(scores, dtype=np.float64)
    means = np.random.default_rng(0).choice(values, size=(resamples, values.size)).mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"scores": values.tolist(), "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
            "min": float(values.min()), "max": float(values.max()), "ci95": [float(low), float(high)]}


def final_evaluation(model: ActorCritic, config: A3CConfig, episodes: int = 30, first_seed: int = FINAL_SEED,
                     sticky_action_prob: float = 0.25, progress: bool = True) -> dict[str, Any]:
    """The field's final evaluation of a finished agent: ``episodes`` greedy games with sticky actions
    on seeds ``first_seed ...`` never used in training, and uniformly random play on the same seeds.

    Returns the protocol (``episodes``, ``seeds`` ``[first, last]``, ``sticky_action_prob``) and, for
    ``agent`` and ``random``, :func:`score_summary` of the game's own scores.
    """
    env = make_env(config.replace(sticky_action_prob=sticky_action_prob))
    seeds = range(first_seed, first_seed + episodes)
    result: dict[str, Any] = {"episodes": episodes, "seeds": [seeds[0], seeds[-1]],
                              "sticky_action_prob": sticky_action_prob}
    for name, player in (("agent", model), ("random", None)):
        scores: list[float] = []
        games = tqdm(seeds, desc=f"{name} ({config.game})", unit="game", disable=not progress, leave=False)
        for seed in games:
            scores.append(play_episode(player, env, seed=seed)["score"])
            games.set_postfix_str(f"mean {statistics.fmean(scores):+.2f}")
        result[name] = score_summary(scores)
    env.close()
    return result


def evaluation_config(config: A3CConfig) -> A3CConfig:
    """The config of the evaluator's games: the training game with ``eval_sticky_action_prob``."""
    return config.replace(sticky_action_prob=config.eval_sticky_action_prob)


def run_evaluator(config: A3CConfig, shared_model: ActorCritic, steps: Any, stop_event: Any, queue: Any) -> None:
    """Entry point of the evaluator of the local backend, a thread of the trainer's process (the
    kernel, or the command line): :func:`evaluation_loop` on the shared model's weights, which live in
    this very process. It computes with one torch thread (this thread's setting, and that of threads
    started after it): its forward passes are one small state each, and more threads would only
    compete with the workers for the cores."""
    torch.set_num_threads(1)
    count = steps.get_obj()  # the steps counter past its lock, which a killed worker might hold for ever

    def load_latest(model: ActorCritic) -> int:
        model.load_state_dict(shared_model.state_dict())
        return count.value

    evaluation_loop(config, load_latest, lambda: count.value, lambda: not stop_event.is_set(), queue)


def evaluation_loop(config: A3CConfig, load_latest: Callable[[ActorCritic], int], steps_now: Callable[[], int],
                    go_on: Callable[[], bool], queue: Any) -> None:
    """Play greedy episodes with the latest weights until ``go_on`` says no.

    How the weights arrive is the caller's: ``load_latest(model)`` loads the newest weights into
    ``model`` and returns the agent steps they were trained for; ``steps_now()`` is the step count
    of the moment; ``go_on()`` is asked before each episode, after every step and while the evaluator
    waits for the workers (it must stay cheap). Reports go to ``queue`` (anything with ``put_nowait``).
    """
    try:
        env = make_env(evaluation_config(config), render_mode="rgb_array")
        model = ActorCritic.from_config(config, env.action_space.n).eval()
        pace = 1.0 / config.eval_steps_per_second if config.eval_steps_per_second else 0.0
        episode, next_step, played, first_step = 0, time.monotonic(), 0, steps_now()

        def on_step(t: int, action: int) -> bool:
            nonlocal next_step, played
            if config.eval_frame_every and t % config.eval_frame_every == 0:
                send(queue, {"kind": "frame", "source": "evaluator", "steps": steps_now(), "time": time.time(),
                             "episode": episode, "t": t, "frame": env.render(), "action": action})
            if pace:  # sleep to keep the pace; never try to catch up after a slow step
                next_step = max(next_step + pace, time.monotonic())
                time.sleep(max(0.0, next_step - time.monotonic()))
            played += 1
            while played * WORKER_STEPS_PER_EVAL_STEP > steps_now() - first_step:  # the workers are slower
                if not go_on():
                    return False
                time.sleep(pace or 0.01)
            return go_on()

        # The first game's seed depends on the step count, so a resumed run plays new games; later
        # games go on from the environment's own random state.
        seed: int | None = config.seed + EVAL_SEED_OFFSET + steps_now()
        while go_on():
            loaded_time = time.time()
            loaded_steps = load_latest(model)
            result = play_episode(model, env, seed=seed, greedy=True, on_step=on_step)
            seed = None
            if result["finished"]:
                send(queue, {"kind": "eval", "source": "evaluator", "steps": loaded_steps, "time": loaded_time,
                             "end_steps": steps_now(), "episode": episode, "reward": result["reward"],
                             "score": result["score"], "length": result["length"]})
                episode += 1
        env.close()
    except Exception:
        send(queue, {"kind": "error", "source": "evaluator", "time": time.time(), "error": traceback.format_exc()})
        raise
