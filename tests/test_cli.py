"""The command line: help, bad input, a short training run, Ctrl-C, and play."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from a3c_core import A3CConfig

CLI = [sys.executable, "-m", "a3c_core"]


def test_help_lists_every_config_field():
    out = subprocess.run(CLI + ["train", "--help"], capture_output=True, text=True, check=True).stdout
    for f in dataclasses.fields(A3CConfig):
        assert "--" + f.name.replace("_", "-") in out


@pytest.mark.parametrize("args, message", [(["--workers", "-2"], "workers"), (["--rollout-steps", "0"], "rollout_steps"),
                                           (["--game", "tetris"], "pong, space_invaders, catch")])
def test_bad_values_exit_with_a_message_naming_the_field(args, message):
    result = subprocess.run(CLI + ["train"] + args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and message in result.stderr


def test_train_writes_metrics_and_a_checkpoint_then_play_replays_it(tmp_path):
    result = subprocess.run(CLI + ["train", "--preset", "fast", "--game", "catch", "--workers", "1", "--max-steps",
                                   "1500", "--run-dir", str(tmp_path), "--name", "cli"],
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    assert "frames/s" in result.stderr  # the progress bar
    run = tmp_path / "cli"
    checkpoints = sorted((run / "checkpoints").glob("step-*.pt"))
    assert len(checkpoints) == 1 and int(checkpoints[0].stem.split("-")[1]) >= 1500
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(r["kind"] == "episode" and r["length"] == 45 for r in records)
    assert json.loads((run / "config.json").read_text())["workers"] == 1

    gif = tmp_path / "catch.gif"
    result = subprocess.run(CLI + ["play", str(checkpoints[0]), "--episodes", "2", "--gif", str(gif)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("episode ") == 2 and "mean score over 2 episodes" in result.stdout
    assert gif.stat().st_size > 1000

    result = subprocess.run(CLI + ["play", str(checkpoints[0]), "--episodes", "2", "--vs-random",
                                   "--sticky-action-prob", "0.25"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("random episode ") == 2 and "random: mean score over 2 episodes" in result.stdout
    assert "agent - random:" in result.stdout and "sticky actions 0.25" in result.stdout
    result = subprocess.run(CLI + ["play", str(checkpoints[0]), "--sticky-action-prob", "1.5"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "sticky_action_prob must be between 0 and 1" in result.stderr

    # --save-record stores the comparison it printed in the agent's JSON, with the command that repeats it.
    result = subprocess.run(CLI + ["play", str(checkpoints[0]), "--vs-random", "--save-record"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "export" in result.stderr, "a run checkpoint has no record to write into"
    agent = tmp_path / "agent.pt"
    assert subprocess.run(CLI + ["export", str(checkpoints[0]), str(agent)], timeout=120).returncode == 0
    result = subprocess.run(CLI + ["play", str(agent), "--episodes", "3", "--seed", "5", "--vs-random",
                                   "--sticky-action-prob", "0.25", "--save-record"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    printed = {who: [float(line.split("score ")[1].split(",")[0]) for line in result.stdout.splitlines()
                     if line.startswith(f"{who} episode ")] for who in ("agent", "random")}
    record = json.loads(agent.with_suffix(".json").read_text())["vs_random"]
    assert record["agent_scores"] == printed["agent"] and record["random_scores"] == printed["random"]
    assert record["agent_mean"] == sum(printed["agent"]) / 3 and record["seeds"] == "5-7"
    assert record["command"] == f"python -m a3c_core play {agent} --episodes 3 --seed 5 --sticky-action-prob 0.25 --vs-random"


def test_ctrl_c_stops_cleanly_with_a_final_checkpoint_and_no_process_left(tmp_path):
    # A terminal's foreground command has SIGINT live even where this test runs in the background (a
    # non-interactive shell starts background jobs with SIGINT ignored, and children inherit that).
    process = subprocess.Popen(CLI + ["train", "--preset", "fast", "--game", "catch", "--workers", "2",
                                      "--run-dir", str(tmp_path), "--name", "ctrlc"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    metrics = tmp_path / "ctrlc" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and metrics.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert metrics.exists(), "training never reported an episode"
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "Ctrl-C" in err
    assert list((tmp_path / "ctrlc" / "checkpoints").glob("step-*.pt"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)  # is any process of the group still there?
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        pytest.fail("worker processes outlived the command")
