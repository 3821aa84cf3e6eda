"""Config validation, the games make_env builds, and Space Invaders' reward shaping."""

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from a3c_core import A3CConfig, make_env
from a3c_core.envs import ALIEN_REWARD, LIFE_PENALTY, ShapedInvadersReward


@pytest.mark.parametrize("field, value, message", [
    ("game", "breakout", "pong, space_invaders, catch"),
    ("lr", float("nan"), "lr must be a finite number"),
    ("lr", float("inf"), "lr must be a finite number"),
    ("lr", "0.001", "lr must be a finite number, got '0.001'"),
    ("entropy_coef", float("nan"), "entropy_coef"),
    ("value_coef", float("-inf"), "value_coef"),
    ("max_grad_norm", float("nan"), "max_grad_norm"),
    ("max_minutes", float("inf"), "max_minutes"),
    ("seed", -1, "seed must be >= 0"),
    ("seed", 1.5, "seed must be a whole number"),
    ("workers", 2.0, "workers must be a whole number"),
    ("max_steps", 1e6, "max_steps must be a whole number"),
    ("workers", True, "workers must be a whole number"),
    ("wandb", "yes", "wandb must be True or False"),
    ("grayscale", "false", "grayscale must be True or False"),
    ("shaped_rewards", 1, "shaped_rewards must be True or False"),
    ("workers", 1_000_000, "workers must be between 1 and 256"),
    ("height", 100_000, "height must be between 16 and 1,024"),
    ("hidden_size", 10**9, "hidden_size"),
    ("run_dir", None, "run_dir must be a str"),
    ("workers", -1, "workers"),
    ("workers", 0, "workers"),
    ("rollout_steps", 0, "rollout_steps"),
    ("frame_stack", 2, "frame_stack"),
    ("gamma", 1.5, "gamma"),
    ("lr", 0.0, "lr"),
    ("lr_anneal_steps", -1, "lr_anneal_steps must be >= 0"),
    ("lr_anneal_steps", 2.5e6, "lr_anneal_steps must be a whole number"),
    ("sticky_action_prob", -0.1, "sticky_action_prob"),
    ("backend", "cluster", "backend='cluster' is not supported; choose one of: local, ray"),
    ("ray_address", "my-cluster", "ray_address must be HOST:PORT"),
    ("ray_address", "10.0.0.5:http", "ray_address must be HOST:PORT"),
    ("ray_address", ":6379", "ray_address must be HOST:PORT"),
    ("ray_address", "10.0.0.5:70000", "ray_address must be HOST:PORT"),
])
def test_bad_config_values_name_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        A3CConfig(**{field: value})


def test_every_number_field_says_which_values_it_may_take():
    import dataclasses
    import typing
    kinds = typing.get_type_hints(A3CConfig)
    unbounded = [f.name for f in dataclasses.fields(A3CConfig) if kinds[f.name] in (int, float)
                 and not (f.metadata["within"] or f.metadata["above"] is not None or f.metadata["choices"])]
    assert unbounded == []


def test_the_learning_rate_is_constant_or_falls_linearly_to_zero():
    assert A3CConfig(lr=3e-4).lr_at(10**9) == 3e-4
    annealed = A3CConfig(lr=3e-4, lr_anneal_steps=2_000_000)
    assert [annealed.lr_at(s) for s in (0, 500_000, 1_000_000, 2_000_000, 3_000_000)] == pytest.approx(
        [3e-4, 2.25e-4, 1.5e-4, 0.0, 0.0])


def test_a_config_changed_after_construction_is_checked_again():
    config = A3CConfig()
    config.workers = 0
    with pytest.raises(ValueError, match="workers"):
        config.validate()


def test_unknown_presets_and_fields_are_refused():
    with pytest.raises(ValueError, match="seed, fast"):
        A3CConfig.preset("turbo")
    with pytest.raises(ValueError, match="wokers"):
        A3CConfig.from_dict({**A3CConfig().to_dict(), "wokers": 3})


def test_presets():
    seed, fast = A3CConfig.preset("seed"), A3CConfig.preset("fast", game="catch")
    assert seed == A3CConfig()
    assert (seed.state_shape, seed.workers, seed.rollout_steps, seed.frame_skip) == ((3, 160, 160), 8, 30, 4)
    assert fast.state_shape == (1, 80, 80) and fast.game == "catch"
    assert A3CConfig(frame_stack=4).state_shape == (12, 160, 160)
    assert A3CConfig.from_dict(fast.to_dict()) == fast
    assert seed.center_input and fast.center_input and fast.workers == 2


def test_training_and_evaluation_follow_ale_v5_sticky_actions_unless_a_config_says_otherwise():
    config = A3CConfig()
    assert config.sticky_action_prob == 0.25 and config.eval_sticky_action_prob == 0.25
    with pytest.raises(ValueError, match="eval_sticky_action_prob"):
        A3CConfig(eval_sticky_action_prob=1.5)


def test_a_checkpoint_of_format_1_loads_as_it_was_trained():
    from a3c_core.checkpoint import FORMAT, MIGRATIONS
    old = A3CConfig(sticky_action_prob=0.0).to_dict()
    del old["center_input"], old["eval_sticky_action_prob"]  # fields that format 1 did not have
    payload = MIGRATIONS["a3c-lab/1"]({"format": "a3c-lab/1", "config": old})
    assert payload["format"] == FORMAT
    config = A3CConfig.from_dict(payload["config"])
    assert config.center_input is False and config.eval_sticky_action_prob == 0.0 == config.sticky_action_prob


def test_frame_skip_and_sticky_actions_reach_the_emulator():
    env = make_env(A3CConfig(game="pong", frame_skip=3, sticky_action_prob=0.25))
    assert env.unwrapped._frameskip == 3
    assert env.unwrapped.ale.getFloat("repeat_action_probability") == pytest.approx(0.25)
    default = make_env(A3CConfig(game="pong")).unwrapped
    assert default._frameskip == 4 and default.ale.getFloat("repeat_action_probability") == pytest.approx(0.25)
    deterministic = make_env(A3CConfig(game="pong", sticky_action_prob=0.0)).unwrapped
    assert deterministic.ale.getFloat("repeat_action_probability") == 0.0


def test_shaping_is_on_for_space_invaders_only_by_default():
    assert A3CConfig(game="space_invaders").use_shaped_rewards
    assert not A3CConfig(game="space_invaders", shaped_rewards=False).use_shaped_rewards
    assert not A3CConfig(game="pong").use_shaped_rewards


class ScriptedGame(gym.Env):
    """Plays back a script of (points, lives) per step."""

    observation_space = gym.spaces.Box(0, 255, (1,), np.uint8)
    action_space = gym.spaces.Discrete(1)

    def __init__(self, script):
        self.script = script

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return np.zeros(1, np.uint8), {"lives": 3}

    def step(self, action):
        points, lives = self.script[self.t]
        self.t += 1
        return np.zeros(1, np.uint8), points, self.t == len(self.script), False, {"lives": lives}


def test_shaping_rewards_alien_hits_and_life_losses_exactly():
    script = [(0, 3), (5, 3), (0, 3), (30, 2), (0, 2), (200, 2), (0, 1), (10, 0)]
    env = ShapedInvadersReward(ScriptedGame(script))
    env.reset()
    shaped = [env.step(0)[1] for _ in script]
    assert shaped == pytest.approx([0, 0.1, 0, 0.1 - 1, 0, 0.1, -1, 0.1 - 1])
    assert (ALIEN_REWARD, LIFE_PENALTY) == (0.1, -1.0)


def test_shaping_on_the_real_space_invaders():
    env = make_env(A3CConfig(game="space_invaders", height=32, width=32, grayscale=True))
    env.reset(seed=1)
    env.action_space.seed(1)
    lives, hits, deaths, terminated = 3, 0, 0, False
    while not terminated:
        _, shaped, terminated, truncated, info = env.step(env.action_space.sample())
        hit, died = info["raw_reward"] > 0, lives - info["lives"]
        assert shaped == pytest.approx(0.1 * hit - 1.0 * died)
        hits, deaths, lives = hits + hit, deaths + died, info["lives"]
        terminated = terminated or truncated
    assert hits >= 1 and deaths == 3
    assert info["episode"]["r"] > 0  # the game's own score is still recorded, unshaped


def test_space_invaders_sees_the_max_of_the_last_two_frames_of_each_step():
    invaders = make_env(A3CConfig(game="space_invaders", sticky_action_prob=0.25))
    assert invaders.unwrapped._frameskip == 1  # the wrapper skips, so that it can keep the max
    assert invaders.unwrapped.ale.getFloat("repeat_action_probability") == pytest.approx(0.25)
    skip = invaders
    while not isinstance(skip, gym.wrappers.MaxAndSkipObservation):
        skip = skip.env
    assert skip._skip == 4
    pong = make_env(A3CConfig(game="pong")).unwrapped
    assert pong._frameskip == 4  # Pong draws every object on every frame: one frame is enough
    assert not A3CConfig(game="catch", max_pool_frames=True).use_max_pool
    # agents trained before max-pooling existed keep seeing single frames
    from a3c_core.checkpoint import MIGRATIONS
    old = A3CConfig(game="space_invaders").to_dict()
    del old["max_pool_frames"]
    migrated = MIGRATIONS["a3c-lab/1"]({"format": "a3c-lab/1", "config": old})["config"]
    assert not A3CConfig.from_dict(migrated).use_max_pool


def test_the_crop_is_the_games_unless_the_config_names_rows_and_old_agents_keep_theirs():
    from a3c_core.checkpoint import load_model
    from a3c_core.preprocess import GAME_CROPS
    assert A3CConfig(game="space_invaders").crop_rows == GAME_CROPS["space_invaders"] == (20, 195)
    assert A3CConfig(crop_top=30, crop_bottom=190).crop_rows == (30, 190)
    for bad, message in [({"crop_top": 30}, "set together"), ({"crop_top": 100, "crop_bottom": 90}, "crop rows must")]:
        with pytest.raises(ValueError, match=message):
            A3CConfig(**bad)
    _, config, _ = load_model(Path(__file__).resolve().parents[1] / "data" / "space-invaders-fast.pt")  # trained on rows 35..194 before crops were per game
    assert config.crop_rows == (35, 195)
