"""The agents shipped in data/ play as well as their JSON says."""

import dataclasses
import statistics
import time
from pathlib import Path

import pytest

from a3c_core import make_env
from a3c_core.checkpoint import load_model, read_record
from a3c_core.evaluator import play_episode

DATA = Path(__file__).resolve().parents[1] / "data"


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


@pytest.mark.slow  # plays whole games
@pytest.mark.parametrize("name", ["pong-fast", "pong-fast-seed1"])
def test_pretrained_pong_agents_win(name):
    model, config, names = load_model(DATA / f"{name}.pt")
    summary = read_record(DATA / f"{name}.pt")
    assert summary["game"] == config.game == "pong" and names[:2] == ["NOOP", "FIRE"]
    env = make_env(config)
    start = time.monotonic()
    scores = [play_episode(model, env, seed=seed, max_steps=5000)["score"] for seed in range(3)]
    assert time.monotonic() - start < 240
    assert sum(scores) / 3 >= 15, scores
    assert summary["steps"] <= 1_000_000


@pytest.mark.slow  # plays whole games
@pytest.mark.parametrize("name", ["space-invaders-fast", "space-invaders-seed"])
def test_pretrained_space_invaders_agents_beat_random_play_at_the_games_own_score(name):
    # Sticky actions (ALE v5's 0.25) make each seed a different game for both players; the seeds are
    # fixed, so the result is the same on every run.
    model, config, _ = load_model(DATA / f"{name}.pt")
    summary = read_record(DATA / f"{name}.pt")
    assert config.game == "space_invaders" and config.use_shaped_rewards
    env = make_env(dataclasses.replace(config, sticky_action_prob=0.25))
    start = time.monotonic()
    agent = [play_episode(model, env, seed=seed, max_steps=10_000)["score"] for seed in range(10)]
    random = [play_episode(None, env, seed=seed, max_steps=10_000)["score"] for seed in range(10)]
    assert time.monotonic() - start < 300
    assert statistics.fmean(agent) >= 1.5 * statistics.fmean(random), (agent, random)
    assert summary["vs_random"]["agent_mean"] == pytest.approx(statistics.fmean(agent))


AGENTS = sorted(path.stem for path in DATA.glob("*.pt"))
#: Agents trained and judged under the field's protocol (sticky actions in training and evaluation).
PROTOCOL_AGENTS = [name for name in AGENTS
                   if read_record(DATA / f"{name}.pt")["config"].get("eval_sticky_action_prob") == 0.25]
#: Notebook 08's 1-frame seed-preset agent, shipped for its comparison with pong-seed4-sticky (the same
#: preset, seed and budget): it wins every game, by less than the +15 the other Pong agents are held to.
TWIN = "pong-seed-sticky"
#: Seeds of the games played here: fresh (the record's final evaluation starts at FINAL_SEED = 10^9).
TEST_SEED = 2_000_000_000


def protocol_record(name: str) -> dict:
    """``name``'s record, its final evaluation checked to be the protocol's (the README's last column):
    30 sticky-action games on the seeds from FINAL_SEED, with the mean inside its confidence interval."""
    from a3c_core.evaluator import FINAL_SEED

    summary = read_record(DATA / f"{name}.pt")
    record = summary["evaluation"]
    assert record["episodes"] == 30 and record["sticky_action_prob"] == 0.25 and record["seeds"][0] == FINAL_SEED
    assert record["agent"]["ci95"][0] <= record["agent"]["mean"] <= record["agent"]["ci95"][1]
    return summary


def fresh_games(name: str, games: int) -> dict:
    """``final_evaluation`` of ``name`` on ``games`` sticky-action games from TEST_SEED, within 5 minutes."""
    from a3c_core.evaluator import final_evaluation

    model, config, _ = load_model(DATA / f"{name}.pt")
    start = time.monotonic()
    result = final_evaluation(model, config, episodes=games, first_seed=TEST_SEED, progress=False)
    assert time.monotonic() - start < 300
    return result


@pytest.mark.slow  # plays whole games
@pytest.mark.parametrize("name", [name for name in PROTOCOL_AGENTS if name != TWIN])
def test_protocol_agents_win_fresh_sticky_action_games_and_their_record_holds_the_final_evaluation(name):
    summary = protocol_record(name)
    game, record = summary["game"], summary["evaluation"]
    games = 5 if game == "pong" else 10
    result = fresh_games(name, games)
    if game == "pong":
        assert result["agent"]["mean"] >= 15, result["agent"]["scores"]
        assert record["agent"]["mean"] >= 15
    else:  # clearly above random play, by a margin the recorded confidence intervals support
        assert record["agent"]["ci95"][0] > record["random"]["ci95"][1]
        agent, random = result["agent"], result["random"]
        spread = ((agent["std"] ** 2 + random["std"] ** 2) / games) ** 0.5  # of the difference of the two means
        assert agent["mean"] - random["mean"] > 2 * spread, (agent["scores"], random["scores"])


@pytest.mark.slow  # plays whole games
def test_notebook_08s_one_frame_agent_wins_every_game_by_less_than_its_four_frame_twin():
    # README and notebook 08: +13.8 over its 30 games, every one won; its 4-frame twin +17.6
    record, twin = protocol_record(TWIN)["evaluation"], protocol_record("pong-seed4-sticky")["evaluation"]
    assert min(record["agent"]["scores"]) > 0 and round(record["agent"]["mean"], 1) == 13.8
    assert record["agent"]["ci95"][1] < twin["agent"]["mean"]
    assert min(fresh_games(TWIN, 5)["agent"]["scores"]) > 0


@pytest.mark.slow  # plays whole games
def test_the_agent_trained_on_one_game_wins_it_and_loses_its_edge_on_sticky_games():
    # Notebook 06, section 5: pong-fast (trained without sticky actions) "wins its one game as clearly as
    # the other agent, and far less often once each game is different"; the sticky-trained agent "keeps
    # winning" (its fresh sticky games: the protocol test above). Seeds 0..4, as the notebook plays them.
    memoriser, config, _ = load_model(DATA / "pong-fast.pt")
    sticky_agent, sticky_config, _ = load_model(DATA / "pong-fast-sticky.pt")
    assert config.sticky_action_prob == 0 and sticky_config.sticky_action_prob == 0.25
    one_game = play_episode(memoriser, make_env(config), seed=0, max_steps=5000)["score"]
    its_other = play_episode(sticky_agent, make_env(sticky_config.replace(sticky_action_prob=0)), seed=0,
                             max_steps=5000)["score"]
    sticky_env = make_env(config.replace(sticky_action_prob=0.25))
    sticky = [play_episode(memoriser, sticky_env, seed=seed, max_steps=5000)["score"] for seed in range(5)]
    assert one_game >= 18 and its_other >= 18
    assert statistics.fmean(sticky) <= one_game - 10, sticky


def test_the_shipped_agents_are_all_there():
    assert {"pong-fast", "pong-fast-seed1", "pong-fast4", "pong-fast-sticky", "pong-seed-sticky",
            "pong-seed4-sticky", "space-invaders-fast", "space-invaders-fast-sticky",
            "space-invaders-seed"} <= set(AGENTS)
    assert {"pong-fast-sticky", TWIN, "pong-seed4-sticky", "space-invaders-fast-sticky"} <= set(PROTOCOL_AGENTS)


@pytest.mark.parametrize("name", AGENTS)
def test_every_agent_has_its_record(name):
    summary = protocol_record(name)
    for key in ("game", "steps", "minutes", "final_evaluator_scores", "config", "command", "machine"):
        assert key in summary
    assert (DATA / f"{name}-curve.csv").read_text().startswith("episode,steps,frames,minutes,score")


def test_an_exported_agent_cannot_be_resumed_and_says_why():
    from a3c_core import Trainer
    from a3c_core.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="play-only export"):
        Trainer.from_checkpoint(DATA / "pong-fast.pt")


def test_the_seed_preset_pong_agents_were_trained_as_the_design_says_to_the_same_budget():
    # Notebook 08's pair: the design's preset (160x160 colour, 8 workers), 1 frame and 4, same seed, same
    # number of agent steps, both under the protocol (sticky actions 0.25 in training and evaluation)
    steps = {}
    for name, frames in (("pong-seed-sticky", 1), ("pong-seed4-sticky", 4)):
        _, config, _ = load_model(DATA / f"{name}.pt")
        summary = read_record(DATA / f"{name}.pt")
        assert (config.height, config.width, config.grayscale, config.workers, config.frame_stack) == (160, 160, False, 8, frames)
        assert config.center_input and config.seed == 0
        assert config.sticky_action_prob == config.eval_sticky_action_prob == 0.25
        steps[frames] = summary["steps"]
    assert steps[1] == pytest.approx(steps[4], abs=1_000) and steps[1] >= 3_814_104
