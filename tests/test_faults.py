"""Runs that survive faults and bad input: each test injects one fault and checks that nothing is lost.

Concurrent runs, signals, a changed learning rate on resume, bad checkpoints and run folders, a full
disk, divergence, crash loops, kills in the middle of a record, two saves at one step, and resuming
from an older checkpoint. Every wait is bounded; every process started here is stopped here.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from a3c_core import A3CConfig, Trainer
from a3c_core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from a3c_core.run_folder import RunFolder
from a3c_core.processes import MAX_CRASHES, ProcessGroup, process_context, send

from conftest import cli
from test_trainer import alive, assert_all_gone, catch_config, wait_for

CLI = [sys.executable, "-m", "a3c_core"]
ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return cli(*args, cwd=ROOT)


def one_sentence(result: subprocess.CompletedProcess, *words: str) -> None:
    """Exit code 2, no traceback, and the last line of stderr names what went wrong."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and all(word in last for word in words), last


# ------------------------------------------------------------------------------------ concurrent runs
def test_runs_started_in_the_same_second_get_their_own_folders(tmp_path: Path) -> None:
    folders = {RunFolder.new(tmp_path, "pong").path for _ in range(5)}
    assert len(folders) == 5 and all(folder.is_dir() for folder in folders)


def test_a_second_live_run_in_the_same_folder_is_refused(tmp_path: Path) -> None:
    first = Trainer(catch_config(tmp_path), run_dir=tmp_path / "run", verbose=False)
    second = Trainer(catch_config(tmp_path), run_dir=tmp_path / "run", verbose=False)
    metrics = tmp_path / "run" / "metrics.jsonl"
    with first:
        # A record of the first run in metrics.jsonl, so that a second writer would show in it.
        wait_for(lambda: metrics.exists() and metrics.read_text(), 120, "the first run's first record")
        with pytest.raises(ValueError, match="is in use by another run"):
            second.start()
        assert not second.running and second.process_ids() == {}
        result = run_cli("train", "--preset", "catch", "--run-dir", str(tmp_path), "--name", "run", "--max-steps", "10")
        one_sentence(result, "in use by another run", f"process {os.getpid()}")
    second.start()  # the folder is free once the first run stopped
    second.stop(save=False)
    lines = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert {record["source"] for record in lines} <= {"worker 0", "evaluator"}


# ------------------------------------------------------------------------------------ signals
@pytest.mark.slow  # each trains on the real command line until its signal, then saves
@pytest.mark.parametrize("signals", [["SIGTERM"], ["SIGHUP"], ["SIGINT", "SIGINT"]], ids=["term", "hup", "double-ctrl-c"])
def test_signals_stop_the_cli_with_a_final_checkpoint(tmp_path: Path, signals: list[str]) -> None:
    process = subprocess.Popen(CLI + ["train", "--preset", "catch", "--workers", "1", "--run-dir", str(tmp_path),
                                      "--name", "sig"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    metrics = tmp_path / "sig" / "metrics.jsonl"
    try:
        wait_for(lambda: metrics.exists() and '"kind": "episode"' in metrics.read_text(), 120, "a training episode")
        for name in signals:  # to the command alone, as timeout, docker stop or a scheduler sends it
            os.kill(process.pid, getattr(signal, name))
            time.sleep(0.05)  # a second signal comes while the first one's stop is under way
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, err
    said = "Ctrl-C" if signals[0] == "SIGINT" else signals[0]
    assert "Traceback" not in err and f"{said}: stopping the workers" in err
    if len(signals) > 1:
        assert "already stopping" in err
    checkpoints = list((tmp_path / "sig" / "checkpoints").glob("step-*.pt"))
    assert len(checkpoints) == 1 and load_checkpoint(checkpoints[0])["counters"]["steps"] > 0
    wait_for(lambda: not any(alive(int(pid)) for pid in subprocess.run(
        ["pgrep", "-s", str(process.pid)], capture_output=True, text=True).stdout.split()), 20, "the children to exit")


# ------------------------------------------------------------------------------------ resume
def saved_run(tmp_path: Path, **overrides) -> tuple[Trainer, Path]:
    trainer = Trainer(catch_config(tmp_path, **overrides), run_dir=tmp_path / "run", verbose=False)
    return trainer, trainer.save()


def test_resume_applies_a_new_learning_rate_and_refuses_a_new_game_or_model_shape(tmp_path: Path) -> None:
    _, checkpoint = saved_run(tmp_path)
    resumed = Trainer.from_checkpoint(checkpoint, verbose=False, lr=1e-5, workers=2)
    assert resumed.config.lr == 1e-5 and resumed.config.workers == 2
    resumed.config.hidden_size = 64  # a change after construction is checked at start, before any process
    with pytest.raises(ValueError, match="hidden_size cannot change"):
        resumed.start()
    resumed.config.hidden_size = 256
    resumed.start()
    try:  # the children train with the optimizer's rate: the one given on resume, not the one saved
        assert [group["lr"] for group in resumed.optimizer.param_groups] == [1e-5]
    finally:
        resumed.stop(save=False)
    for field, value in [("game", "pong"), ("hidden_size", 64), ("grayscale", False), ("frame_stack", 4)]:
        with pytest.raises(ValueError, match=f"{field} cannot change when a run resumes"):
            Trainer.from_checkpoint(checkpoint, verbose=False, **{field: value})
    one_sentence(run_cli("train", "--resume", str(checkpoint), "--game", "pong"), "game cannot change")
    one_sentence(run_cli("train", "--resume", str(checkpoint), "--lr", "nan"), "lr must be a finite number")


def test_resume_drops_the_metrics_written_after_its_checkpoint(tmp_path: Path) -> None:
    trainer = Trainer(catch_config(tmp_path, eval_steps_per_second=0), run_dir=tmp_path / "run", verbose=False)
    with trainer:
        wait_for(lambda: len(trainer.history.evals) >= 2, 60, "two evaluator episodes")
        early = trainer.save()
        count = len(load_checkpoint(early)["history"]["evals"])
        wait_for(lambda: len(trainer.history.evals) >= count + 3, 60, "more episodes after the checkpoint")
    resumed = Trainer.from_checkpoint(early, verbose=False)
    resumed.start()
    try:
        lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
        assert sum(1 for r in lines if r["kind"] == "eval") <= count + 2  # at most what came in since the start
        steps = [r["steps"] for r in lines if r["kind"] == "episode"]
        assert steps == sorted(steps)  # the step counts never go backwards
    finally:
        resumed.stop(save=False)


# ------------------------------------------------------------------------------------ bad files and folders
def test_bad_checkpoints_end_in_one_sentence_on_every_command(tmp_path: Path) -> None:
    _, good = saved_run(tmp_path)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:5000])
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    payload = load_checkpoint(good)
    other_game = tmp_path / "other-game.pt"  # a Catch model's weights under a Pong config
    save_checkpoint(other_game, {**payload, "config": {**payload["config"], "game": "pong", "grayscale": False}})
    bad_config = tmp_path / "bad-config.pt"
    save_checkpoint(bad_config, {**payload, "config": {**payload["config"], "lr": float("nan")}})
    commands = [lambda path: ["play", str(path)], lambda path: ["evaluate", str(path), "--episodes", "2"],
                lambda path: ["train", "--resume", str(path)], lambda path: ["export", str(path), str(tmp_path / "out.pt")]]
    for command in commands:  # every command that reads a checkpoint ...
        one_sentence(run_cli(*command(truncated)), "truncated.pt", "truncated, corrupt")
    for i, (path, words) in enumerate([  # ... and every kind of bad file, each through one of them
            (foreign, ["foreign.pt", "not an a3c-lab"]), (tensor, ["tensor.pt", "not an a3c-lab"]),
            (other_game, ["other-game.pt", "do not fit"]), (bad_config, ["bad-config.pt", "lr must be a finite number"]),
            (tmp_path / "missing.pt", ["no checkpoint at", "missing.pt"]), (other_game, ["other-game.pt", "do not fit"])]):
        one_sentence(run_cli(*commands[i % len(commands)](path)), *words)
    assert not (tmp_path / "out.pt").exists()


def test_a_run_folder_that_cannot_be_used_is_one_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    one_sentence(run_cli("train", "--preset", "catch", "--run-dir", str(blocker)), "a-file", "Not a directory")
    one_sentence(run_cli("train", "--preset", "catch", "--run-dir", str(tmp_path), "--name", "a-file"),
                 "cannot use", "a-file")
    one_sentence(run_cli("train", "--preset", "catch", "--run-dir", "/proc/a3c-lab"), "/proc")


def test_a_full_disk_is_one_sentence_and_the_earlier_checkpoint_stays(tmp_path: Path, monkeypatch) -> None:
    trainer, first = saved_run(tmp_path)
    before = first.read_bytes()

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("a3c_core.checkpoint.os.fsync", no_space)
    trainer.shared_steps.value = 500
    with pytest.raises(CheckpointError, match="no space left on the device; the earlier checkpoints are untouched"):
        trainer.save()
    assert first.read_bytes() == before
    assert sorted(p.name for p in first.parent.iterdir()) == [first.name]  # no half-written file, no .tmp


def test_a_final_checkpoint_that_cannot_be_written_ends_the_cli_with_exit_code_1(tmp_path: Path, monkeypatch) -> None:
    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("a3c_core.checkpoint.os.fsync", no_space)
    result = run_cli("train", "--preset", "catch", "--workers", "1", "--max-steps", "300", "--run-dir", str(tmp_path),
                     "--name", "full")
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the final checkpoint could not be written") and "no space left" in last, last
    assert "Traceback" not in result.stderr
    assert not list((tmp_path / "full" / "checkpoints").glob("*"))  # nothing half-written


def test_a_gif_or_metrics_file_whose_write_fails_midway_stays_as_it_was(tmp_path: Path, monkeypatch) -> None:
    import numpy as np

    from a3c_core.listeners import History, MetricsFile
    from a3c_core.plots import save_gif

    gif = save_gif(tmp_path / "episode.gif", [np.zeros((8, 8, 3), np.uint8)] * 2, fps=10)
    metrics = MetricsFile(tmp_path / "metrics.jsonl")
    metrics({"kind": "eval", "steps": 1, "elapsed": 1.0, "score": 1.0})
    before = {path: path.read_bytes() for path in (gif, metrics.path)}
    history = History()
    history({"kind": "eval", "steps": 2, "elapsed": 2.0, "score": 2.0})

    def no_space(*args, **kwargs) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", no_space)  # the last step of a write
    with pytest.raises(OSError, match="No space left"):
        save_gif(gif, [np.full((8, 8, 3), 255, np.uint8)] * 2, fps=10)
    with pytest.raises(OSError, match="No space left"):
        metrics.rewrite(history)
    assert {path: path.read_bytes() for path in (gif, metrics.path)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["episode.gif", "metrics.jsonl"]  # no temporary file left


def test_stale_temporary_files_of_killed_writes_are_cleaned_up(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run")
    folder.checkpoint_dir.mkdir(parents=True)
    (folder.path / "gifs").mkdir()
    stale = [folder.checkpoint_dir / "step-000000000100.pt.x8y2.tmp", folder.path / "metrics.jsonl.k3j_.tmp",
             folder.path / "gifs" / "eval-000000001234.gif.a1b2.tmp"]
    for path in stale:
        path.write_bytes(b"half a file")
    folder.open(A3CConfig.preset("catch"))
    try:
        assert not any(path.exists() for path in stale)
    finally:
        folder.unlock()


def test_a_config_file_that_cannot_be_written_is_one_sentence_and_releases_the_lock(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run")
    (folder.path / "config.json").mkdir(parents=True)  # in the way of the file
    with pytest.raises(ValueError, match=r"cannot write .*config.json: Is a directory"):
        folder.open(A3CConfig.preset("catch"))
    (folder.path / "config.json").rmdir()
    other = RunFolder(folder.path)
    other.open(A3CConfig.preset("catch"))  # not "in use by another run"
    other.unlock()


# ------------------------------------------------------------------------------------ divergence and crashes
def test_a_diverged_run_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    trainer, good = saved_run(tmp_path, restart_crashed=True)
    with torch.no_grad():  # what a too-large step does to the shared weights
        trainer.model.value.weight.fill_(float("inf"))
    trainer.start()
    assert trainer.wait(timeout=120), "a diverged run must stop by itself"
    assert trainer.failure and "the run diverged" in trainer.failure
    assert trainer.restarts == 0 and len(trainer.history.errors) == 1  # reported once, not restarted in a loop
    assert [p.name for p in (tmp_path / "run" / "checkpoints").glob("*.pt")] == [good.name]
    assert trainer.last_checkpoint == good and trainer.status()["state"] == "stopped"


def test_the_cli_exits_non_zero_when_the_run_diverges(tmp_path: Path) -> None:
    trainer, good = saved_run(tmp_path)
    with torch.no_grad():
        trainer.model.value.weight.fill_(float("inf"))
    payload = load_checkpoint(good)
    poisoned = save_checkpoint(tmp_path / "run" / "checkpoints" / "step-000000000001.pt",
                               {**payload, "model": trainer.model.state_dict()})
    result = run_cli("train", "--resume", str(poisoned))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr.split("reported an error")[0]
    assert "error: the run failed" in result.stderr and "diverged" in result.stderr.strip().splitlines()[-1]


def crashing_child(stop_event, queue) -> None:
    """A child that always fails at once (exit code 1), reporting its error first as the real ones do."""
    send(queue, {"kind": "error", "source": "a child", "time": time.time(), "error": "this child always crashes"})
    sys.exit(1)


def idle_child(stop_event, queue) -> None:
    deadline = time.monotonic() + 60
    while not stop_event.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.parametrize("crashing, other, threads", [("worker 0", "evaluator", ()),  # a process
                                                    ("evaluator", "worker 0", ("evaluator",))],  # a thread
                         ids=["process", "thread"])
def test_a_child_that_keeps_crashing_fails_the_run_after_a_few_restarts_each_reported_once(
        crashing: str, other: str, threads: tuple[str, ...]) -> None:
    messages: list[str] = []
    group = ProcessGroup(restart_crashed=True, say=messages.append)
    group.start({crashing: (crashing_child, ()), other: (idle_child, ())}, threads=threads)
    if threads:
        assert crashing not in group.pids()  # a thread has no process of its own
    records, failure = [], None
    deadline = time.monotonic() + 120
    while failure is None and time.monotonic() < deadline:
        records += group.read(0.2)
        new, failure = group.check()
        records += new
    try:
        assert failure and f"{crashing} crashed {MAX_CRASHES} times" in failure
        errors = [r for r in records if r["kind"] == "error"]
        assert len(errors) == MAX_CRASHES and all("this child always crashes" in e["error"] for e in errors)
        assert group.restarts == MAX_CRASHES - 1 and len(messages) == MAX_CRASHES - 1
    finally:
        _, stuck = group.stop(10)
    assert stuck == []


def framing_child(stop_event, queue) -> None:
    """A child that sends 100 kB frames as fast as it can (as an evaluator with eval_frame_every=1 would)."""
    frame = {"kind": "frame", "source": "worker 0", "pid": os.getpid(), "frame": bytes(210 * 160 * 3)}
    while not stop_event.is_set():
        send(queue, {**frame, "time": time.time()})


def test_killing_a_child_in_the_middle_of_a_record_never_freezes_the_reader() -> None:
    # A 100 kB record after another: a SIGKILL almost always lands in the middle of one.
    group = ProcessGroup(restart_crashed=True, say=lambda message: None)
    group.start({"worker 0": (framing_child, ())})
    killed: list[int] = []

    def frame_from_a_new_child() -> bool:
        records = group.read(0.1) + group.check()[0]
        return any(r["kind"] == "frame" and r["pid"] not in killed for r in records)

    def restarted(times: int) -> bool:
        group.read(0.1)
        group.check()
        return group.restarts == times

    try:
        for kill in range(MAX_CRASHES - 1):
            wait_for(frame_from_a_new_child, 60, "frames from a live child")
            killed.append(group.pids()["worker 0"])
            os.kill(killed[-1], signal.SIGKILL)
            wait_for(lambda: restarted(kill + 1), 30, "the restart")
        wait_for(frame_from_a_new_child, 60, "frames from the restarted child")  # the reader reads on
    finally:
        _, stuck = group.stop(10)
    assert stuck == []
    assert_all_gone(killed)


def die_holding_the_step_counters_lock(steps) -> None:
    steps.get_lock().acquire()
    os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.slow  # the stop waits STOP_TIMEOUT for the worker that waits for the lock
def test_a_process_killed_while_it_holds_the_step_counters_lock_never_stops_the_trainer(tmp_path: Path) -> None:
    trainer = Trainer(catch_config(tmp_path), run_dir=tmp_path / "run", verbose=False)
    with trainer:
        wait_for(lambda: trainer.steps > 0 and trainer.latest_frame is not None, 60, "steps and the evaluator's frames")
        dying = process_context().Process(target=die_holding_the_step_counters_lock, args=(trainer.shared_steps,))
        dying.start()
        dying.join(30)
        assert dying.exitcode == -signal.SIGKILL
        answers: list = []
        look = threading.Thread(target=lambda: answers.append((trainer.steps, trainer.status())), daemon=True)
        look.start()
        look.join(30)
        assert answers, "the trainer waited for a lock that a dead process holds"
        pids = list(trainer.process_ids().values())
    # the worker now waits for the lock for ever: the stop terminates it, and the run is saved
    assert not trainer.running and trainer.last_checkpoint.exists()
    assert_all_gone(pids)


# ------------------------------------------------------------------------------------ checkpoint names
def test_a_resumed_run_never_rotates_away_the_checkpoint_it_came_from(tmp_path: Path) -> None:
    """Notebook 05 keeps the path it resumed from; re-running its resume cell must find the file."""
    _, origin = saved_run(tmp_path, keep_checkpoints=1)
    resumed = Trainer.from_checkpoint(origin, verbose=False)
    for steps in (10, 20, 30):
        resumed.shared_steps.value = steps
        newest = resumed.save()
    assert origin.exists() and newest.exists()
    assert [p.name for p in resumed.folder.checkpoints()] == [origin.name, newest.name]  # the rest rotated
    again = Trainer.from_checkpoint(origin, verbose=False)  # the cell, run a second time
    assert again.steps == 0


def test_two_saves_at_the_same_step_keep_both_and_names_match_their_steps(tmp_path: Path) -> None:
    trainer, first = saved_run(tmp_path, keep_checkpoints=5)
    assert trainer.save() == first and len(trainer.folder.checkpoints()) == 1  # nothing changed: no copy
    trainer.history.evals.append({"steps": 0, "elapsed": 0.0, "score": 1.0, "reward": 1.0, "length": 45})
    second = trainer.save()  # the same step, something new: a second file beside the first
    assert first != second and first.exists() and second.exists()
    trainer.shared_steps.value = 42
    third = trainer.save()
    assert [p.name for p in trainer.folder.checkpoints()] == [first.name, second.name, third.name]
    for path in (first, second, third):
        steps = int(path.stem.split("-")[1])
        assert load_checkpoint(path)["counters"]["steps"] == steps
    resumed = Trainer.from_checkpoint(third, verbose=False)
    assert resumed.steps == 42 and resumed.last_checkpoint == third


# ------------------------------------------------------------------------------------ listeners
def test_a_listener_that_raises_is_reported_once_and_removed_and_the_run_goes_on(tmp_path: Path) -> None:
    trainer = Trainer(catch_config(tmp_path), run_dir=tmp_path / "run", verbose=False)
    calls = []

    def broken(record: dict) -> None:
        calls.append(record["kind"])
        raise RuntimeError("this listener always fails")

    kept: list[dict] = []
    trainer.listeners.extend([broken, kept.append])
    with trainer:
        wait_for(lambda: len(trainer.history.episodes) >= 3, 120, "three episodes after the listener failed")
    assert len(calls) == 1 and broken not in trainer.listeners  # called once, then out of the run
    (error,) = [e for e in trainer.history.errors]
    assert error["source"] == "listener broken" and "this listener always fails" in error["error"]
    assert sum(1 for record in kept if record["kind"] == "episode") >= 3  # the listeners after it still hear
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert sum(1 for record in metrics if record["kind"] == "error") == 1
