"""The greedy evaluator process: how good is the shared model right now?

It plays its own copy of the game with ``argmax`` actions (no exploration), reloads the shared
weights at the end of each episode, and reports every episode (``kind="eval"``: shaped reward, the
game's own score, length) and, every ``eval_frame_every`` steps, the raw RGB frame it sees
(``kind="frame"``, ``(210, 160, 3)`` uint8: an Atari frame is only 100 kB) for the dashboard.

It plays at ``eval_steps_per_second`` (30 by default: about twice the game's real speed with frame
skip 4), so that on a 2-core laptop it leaves the cores to the workers and stays watchable.
"""

from __future__ import annotations

import time
import traceback
from typing import Any

import torch

from .config import A3CConfig
from .envs import episode_score, make_env
from .model import ActorCritic, policy_step
from .worker import parent_alive, send, setup_child_process

#: The evaluator's game is seeded apart from every worker's.
EVAL_SEED_OFFSET = 10_000


def run_evaluator(config: A3CConfig, shared_model: ActorCritic, steps: Any, stop_event: Any, queue: Any) -> None:
    """Play greedy episodes with the latest shared weights until ``stop_event`` is set or the parent dies."""
    setup_child_process()
    try:
        env = make_env(config, render_mode="rgb_array")
        model = ActorCritic.from_config(config, env.action_space.n)
        model.eval()
        obs, _ = env.reset(seed=config.seed + EVAL_SEED_OFFSET)
        episode = 0
        pace = 1.0 / config.eval_steps_per_second if config.eval_steps_per_second else 0.0
        while not stop_event.is_set() and parent_alive():
            model.load_state_dict(shared_model.state_dict())
            hidden = model.initial_state()
            reward_sum, length, done, next_step = 0.0, 0, False, time.monotonic()
            while not done and not stop_event.is_set():
                with torch.no_grad():
                    action, _, _, _, hidden = policy_step(model, torch.from_numpy(obs).unsqueeze(0), hidden,
                                                          greedy=True)
                obs, reward, terminated, truncated, info = env.step(action)
                reward_sum += float(reward)
                length += 1
                done = terminated or truncated
                if config.eval_frame_every and length % config.eval_frame_every == 0:
                    send(queue, {"kind": "frame", "source": "evaluator", "steps": steps.value, "time": time.time(),
                                 "episode": episode, "t": length, "frame": env.render(), "action": action})
                if pace:  # sleep to keep the pace; never try to catch up after a slow step
                    next_step = max(next_step + pace, time.monotonic())
                    time.sleep(next_step - time.monotonic())
                if length % 500 == 0 and not parent_alive():
                    return
            if done:
                score = episode_score(info)
                send(queue, {"kind": "eval", "source": "evaluator", "steps": steps.value, "time": time.time(),
                             "episode": episode, "reward": reward_sum,
                             "score": reward_sum if score is None else score, "length": length})
                episode += 1
                obs, _ = env.reset()
        env.close()
    except Exception:
        send(queue, {"kind": "error", "source": "evaluator", "time": time.time(), "error": traceback.format_exc()})
        raise
