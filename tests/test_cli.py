"""The command line: help, bad input, a short training run, Ctrl-C, and play.

Most commands run inside the test's process (`conftest.cli`); the entry point itself (`python -m
a3c_core`) and Ctrl-C run as a real command."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from a3c_core import A3CConfig
from conftest import cli

CLI = [sys.executable, "-m", "a3c_core"]
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_help_lists_every_config_field():
    out = subprocess.run(CLI + ["train", "--help"], capture_output=True, text=True, check=True).stdout
    for f in dataclasses.fields(A3CConfig):
        assert "--" + f.name.replace("_", "-") in out


@pytest.mark.parametrize("args, message", [(["--workers", "-2"], "workers"), (["--rollout-steps", "0"], "rollout_steps"),
                                           (["--game", "tetris"], "pong, space_invaders, catch")])
def test_bad_values_exit_with_a_message_naming_the_field(args, message):
    result = cli("train", *args)
    assert result.returncode == 2 and message in result.stderr


def test_train_writes_metrics_and_a_checkpoint_then_play_replays_it(tmp_path):
    result = cli("train", "--preset", "fast", "--game", "catch", "--workers", "1", "--max-steps", "1500",
                 "--run-dir", str(tmp_path), "--name", "cli")
    assert result.returncode == 0, result.stderr
    assert "frames/s" in result.stderr  # the progress bar
    lines = result.stderr.replace("\r", "\n").splitlines()
    assert any(line.startswith("[a3c] started 1 worker and") for line in lines)  # on its own line, not across the bar
    summary = result.stdout.strip().splitlines()[-1]  # did it learn? the evaluator against random play
    assert summary.startswith("catch: ") and "evaluator mean of the last 10 games" in summary and "random play" in summary
    run = tmp_path / "cli"
    checkpoints = sorted((run / "checkpoints").glob("step-*.pt"))
    assert len(checkpoints) == 1 and int(checkpoints[0].stem.split("-")[1]) >= 1500
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(r["kind"] == "episode" and r["length"] == 45 for r in records)
    assert json.loads((run / "config.json").read_text())["workers"] == 1

    gif = tmp_path / "catch.gif"
    result = cli("play", str(checkpoints[0]), "--episodes", "2", "--gif", str(gif))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("episode ") == 2 and "mean score over 2 episodes" in result.stdout
    assert gif.stat().st_size > 1000

    result = cli("play", str(checkpoints[0]), "--episodes", "2", "--vs-random", "--sticky-action-prob", "0.25")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("random episode ") == 2 and "random: mean score over 2 episodes" in result.stdout
    assert "agent - random:" in result.stdout and "sticky actions 0.25" in result.stdout
    result = cli("play", str(checkpoints[0]), "--sticky-action-prob", "1.5")
    assert result.returncode == 2 and "sticky_action_prob must be between 0 and 1" in result.stderr

    # --resume with the run folder: its newest checkpoint
    result = cli("train", "--resume", str(run), "--max-steps", "1800")
    assert result.returncode == 0, result.stderr
    newest = max(int(p.stem.split("-")[1]) for p in (run / "checkpoints").glob("step-*.pt"))
    assert newest >= 1800 and "catch: " in result.stdout


@pytest.mark.parametrize("args, message", [(["--seed", "-1"], "--seed must be >= 0, got -1"),
                                           (["--episodes", "0"], "--episodes must be >= 1"),
                                           (["--gif", "{tmp}/missing/pong.gif"], "the folder {tmp}/missing does not exist"),
                                           (["--gif", "{tmp}"], "--gif {tmp} is a folder")])
def test_play_refuses_bad_options_in_one_sentence_before_it_plays(args, message, tmp_path):
    args = [arg.format(tmp=tmp_path) for arg in args]
    result = cli("play", "data/pong-fast.pt", *args, cwd=REPO)
    assert result.returncode == 2 and "Traceback" not in result.stderr and result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1  # one sentence
    assert message.format(tmp=tmp_path) in result.stderr
    assert not (tmp_path / "missing").exists()  # nothing made on the way


def test_export_never_writes_over_the_checkpoint_it_reads(tmp_path):
    import shutil
    checkpoint = tmp_path / "agent.pt"
    shutil.copy(os.path.join(REPO, "data", "pong-fast.pt"), checkpoint)
    before = checkpoint.read_bytes()
    for output, message in ((checkpoint, "is the checkpoint itself"), (tmp_path / "agent.json", "as a .pt file")):
        result = cli("export", str(checkpoint), str(output))
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert checkpoint.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["agent.pt"]


def test_a_ray_address_without_the_ray_backend_is_one_sentence_and_makes_no_run_folder(tmp_path):
    result = cli("train", "--preset", "catch", "--ray-address", "127.0.0.1:6379", "--run-dir", str(tmp_path / "runs"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == ("error: --ray-address is for the Ray backend (this run's is "
                                                      "'local'): add --backend ray")
    assert not (tmp_path / "runs").exists()



def test_evaluate_plays_fresh_sticky_games_against_random_and_stores_them_in_the_agents_record(tmp_path):
    from a3c_core.evaluator import FINAL_SEED
    run = tmp_path / "run"
    assert cli("train", "--preset", "catch", "--workers", "1", "--max-steps", "300", "--run-dir", str(tmp_path),
               "--name", "run").returncode == 0
    checkpoint = next((run / "checkpoints").glob("step-*.pt"))
    result = cli("evaluate", str(checkpoint), "--episodes", "4", "--save-record")
    assert result.returncode == 2 and "export the checkpoint first" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    agent = tmp_path / "agent.pt"
    assert cli("export", str(checkpoint), str(agent)).returncode == 0
    result = cli("evaluate", str(agent), "--episodes", "4", "--save-record")
    assert result.returncode == 0, result.stderr
    record = json.loads(agent.with_suffix(".json").read_text())["evaluation"]
    assert record["episodes"] == 4 and record["seeds"] == [FINAL_SEED, FINAL_SEED + 3]
    assert record["sticky_action_prob"] == 0.25 and record["command"] == f"python -m a3c_core evaluate {agent} --episodes 4"
    for player in ("agent", "random"):
        summary = record[player]
        assert len(summary["scores"]) == 4 and summary["mean"] == pytest.approx(sum(summary["scores"]) / 4)
        assert summary["ci95"][0] <= summary["mean"] <= summary["ci95"][1]
        line = next(line for line in result.stdout.splitlines() if line.startswith(player))
        assert f"{summary['mean']:+.2f}" in line  # what it printed is what it stored
    # the same seeds give the same games
    again = cli("evaluate", str(agent), "--episodes", "4")
    assert again.stdout.splitlines()[-2:] == result.stdout.splitlines()[-3:-1]


@pytest.mark.parametrize("args, message", [(["--episodes", "1"], "--episodes must be >= 2"),
                                           (["--first-seed", "-1"], "--first-seed must be >= 0"),
                                           (["--sticky-action-prob", "2"], "--sticky-action-prob must be between 0 and 1")])
def test_evaluate_refuses_bad_options_in_one_sentence(args, message):
    result = cli("evaluate", "data/pong-fast.pt", *args, cwd=REPO)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


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
