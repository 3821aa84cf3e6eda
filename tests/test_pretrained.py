"""The agents shipped in data/ play as well as their JSON says."""

import json
import time
from pathlib import Path

import pytest

from a3c_core import make_env
from a3c_core.checkpoint import load_model
from a3c_core.evaluator import play_episode

DATA = Path(__file__).resolve().parents[1] / "data"


def test_pretrained_pong_fast_agent_wins():
    model, config, names = load_model(DATA / "pong-fast.pt")
    summary = json.loads((DATA / "pong-fast.json").read_text())
    assert summary["game"] == config.game == "pong" and names[:2] == ["NOOP", "FIRE"]
    env = make_env(config)
    start = time.monotonic()
    scores = [play_episode(model, env, seed=seed, max_steps=5000)["score"] for seed in range(3)]
    assert time.monotonic() - start < 240
    assert sum(scores) / 3 >= 15, scores
    assert summary["steps"] <= 1_000_000


@pytest.mark.parametrize("name", ["pong-fast"])
def test_every_agent_has_its_record(name):
    summary = json.loads((DATA / f"{name}.json").read_text())
    for key in ("game", "steps", "minutes", "final_evaluator_scores", "config", "command", "machine"):
        assert key in summary
    assert (DATA / f"{name}-curve.csv").read_text().startswith("episode,steps,frames,minutes,score")


def test_an_exported_agent_cannot_be_resumed_and_says_why():
    from a3c_core import Trainer
    from a3c_core.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="play-only export"):
        Trainer.from_checkpoint(DATA / "pong-fast.pt")
