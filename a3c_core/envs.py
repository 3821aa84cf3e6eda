"""Build a game as the agent sees it: Gymnasium + ale-py, wrapped in small composable wrappers.

``make_env(config)`` stacks, from the inside out::

    ALE/Pong-v5 (or SpaceInvaders, or the Catch pixel game)   raw (210, 160, 3) uint8 frames
    MaxAndSkipObservation      Space Invaders by default: the max of the last two of frame_skip frames
    TimeLimit                  only if config.max_episode_steps > 0
    RecordEpisodeStatistics    info["episode"] = the game's own score and length at episode end
    ShapedInvadersReward       Space Invaders only, on by default: +0.1 per alien hit, -1 per life lost
    PreprocessObservation      crop the game's rows (GAME_CROPS), 0..1 float32, resize, channels first -> (C, H, W)
    FrameStackObservation      4-frame variant only: the latest 4 states, oldest first ...
    ReshapeObservation         ... concatenated along channels -> (4C, H, W)

The ROMs ship with ale-py: nothing is downloaded.
"""

from __future__ import annotations

from typing import Any

import ale_py
import gymnasium as gym
import numpy as np
from gymnasium.wrappers import (FrameStackObservation, MaxAndSkipObservation, RecordEpisodeStatistics,
                                ReshapeObservation, TimeLimit)

from . import games  # noqa: F401  (registers A3CLab/Catch-v0)
from .config import A3CConfig
from .preprocess import PreprocessObservation

gym.register_envs(ale_py)
# ALE prints its banner ("A.L.E: Arcade Learning Environment ... [Powered by Stella]") on stderr each
# time a game is made: once per process, a pink box in every notebook. Only its errors are worth reading.
ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)

#: Shaped reward for each step in which the game gave points (a hit alien or the mothership).
ALIEN_REWARD = 0.1
#: Shaped reward for each life lost.
LIFE_PENALTY = -1.0


class ShapedInvadersReward(gym.Wrapper):
    """Space Invaders reward shaping of the write-up: +0.1 per alien destroyed, -1 per life lost.

    The game's own points (5 to 30 per alien, 200 for the mothership) vary by row; the shaped reward
    only says "you hit one" or "you died". The player has one shot on screen at a time, so a step
    with points is one alien hit. The unshaped points stay available in ``info["raw_reward"]``.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.lives = 0

    def reset(self, **kwargs: Any):
        observation, info = self.env.reset(**kwargs)
        self.lives = int(info["lives"])
        return observation, info

    def step(self, action: Any):
        observation, reward, terminated, truncated, info = self.env.step(action)
        lives = int(info["lives"])
        shaped = ALIEN_REWARD * (float(reward) > 0) + LIFE_PENALTY * max(0, self.lives - lives)
        self.lives = lives
        info["raw_reward"] = float(reward)
        return observation, shaped, terminated, truncated, info


def make_env(config: A3CConfig, render_mode: str | None = None) -> gym.Env:
    """The game of ``config`` with preprocessing (and shaping, stacking) applied.

    Observations are ``config.state_shape`` = ``(C, H, W)`` float32 in 0..1; seed it with the first
    ``env.reset(seed=...)``. ``render_mode="rgb_array"`` lets ``env.render()`` return the raw frame.
    ``frame_skip`` and ``sticky_action_prob`` apply to the Atari games; Catch has neither.
    The crop is the config's :attr:`~A3CConfig.crop_rows`: the game's ``GAME_CROPS`` entry unless the
    config names rows (agents saved before crops were per game keep the rows 35..194 they were trained on).
    """
    if config.game == "catch":
        env = gym.make(config.env_id, render_mode=render_mode)
    else:
        # With max-pooling the emulator steps one frame at a time (sticky actions still decide at every
        # frame, as inside ALE's own frame skip) and the wrapper repeats the action and keeps the max.
        env = gym.make(
            config.env_id,
            frameskip=1 if config.use_max_pool else config.frame_skip,
            repeat_action_probability=config.sticky_action_prob,
            full_action_space=False,
            render_mode=render_mode,
        )
        if config.use_max_pool:
            env = MaxAndSkipObservation(env, skip=config.frame_skip)
    if config.max_episode_steps:
        env = TimeLimit(env, config.max_episode_steps)
    env = RecordEpisodeStatistics(env)
    if config.use_shaped_rewards:
        env = ShapedInvadersReward(env)
    env = PreprocessObservation(env, config.height, config.width, config.grayscale, config.crop_rows)
    if config.frame_stack > 1:
        env = FrameStackObservation(env, config.frame_stack, padding_type="reset")
        env = ReshapeObservation(env, config.state_shape)
    return env


def action_names(env: gym.Env) -> list[str]:
    """Human names of the actions (``["NOOP", "FIRE", "RIGHT", ...]`` for Pong)."""
    return list(env.unwrapped.get_action_meanings())


def episode_score(info: dict[str, Any]) -> float | None:
    """The game's own (unshaped) score of the episode that just ended, else ``None``."""
    episode = info.get("episode")
    return None if episode is None else float(np.asarray(episode["r"]))
