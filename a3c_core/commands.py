"""What each command of ``python -m a3c_core`` does, once :mod:`a3c_core.__main__` has read its options:
train (with a progress bar, stopped cleanly by a signal), play, evaluate, export and editions."""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from .checkpoint import export_agent, load_model, read_record, record_path, write_record
from .config import A3CConfig
from .course import course_root
from .curves import WINDOW, moving_average
from .editions import build_course
from .envs import make_env
from .evaluator import FINAL_SEED, evaluation_config, final_evaluation, play_episode
from .files import check_writable
from .plots import save_gif
from .resources import core_limits, default_workers
from .trainer import Trainer


#: Pong counts as solved at a mean of at least +18 over the final evaluation's games.
SOLVED_PONG = 18.0


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields set on the command line (unset options are ``None`` and left out)."""
    names = {f.name for f in dataclasses.fields(A3CConfig)}
    return {name: value for name, value in vars(args).items() if name in names and value is not None}


def _stop_on_signal(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _already_stopping(signum: int, frame: Any) -> None:
    print(f"[a3c] {signal.Signals(signum).name}: already stopping, the final checkpoint is being written",
          file=sys.stderr)


def catch_stop_signals(stopping: bool = False) -> None:
    """Before a run: SIGTERM and SIGHUP (``kill``, ``timeout``, a closed terminal) stop it as Ctrl-C does,
    with a ``KeyboardInterrupt``, so that it ends cleanly with a final checkpoint. Once it is stopping
    (``stopping=True``): Ctrl-C, SIGTERM and SIGHUP only say so, and cannot cut that checkpoint short."""
    handler, names = ((_already_stopping, ("SIGINT", "SIGTERM", "SIGHUP")) if stopping
                      else (_stop_on_signal, ("SIGTERM", "SIGHUP")))
    for name in names:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), handler)


def train(args: argparse.Namespace) -> int:
    catch_stop_signals()
    overrides = config_overrides(args)
    if args.resume:
        trainer = Trainer.from_checkpoint(args.resume, **overrides)
        config = trainer.config
    else:
        if "workers" not in overrides:  # the preset's, but no more than the cores this process may use
            workers = overrides["workers"] = default_workers(A3CConfig.preset(args.preset).workers)
            print(f"[a3c] {workers} worker{'s' if workers > 1 else ''}: this process may use "
                  f"{core_limits().describe()} (--workers N to choose)", file=sys.stderr)
        config = A3CConfig.preset(args.preset, **overrides)
    if overrides.get("ray_address") and config.backend != "ray":  # before a new run's folder is made
        raise ValueError(f"--ray-address is for the Ray backend (this run's is {config.backend!r}): add --backend ray")
    if not args.resume:
        trainer = Trainer(config, run_dir=Path(config.run_dir) / args.name if args.name else None)
    trainer.say = lambda message: print(message, file=sys.stderr)  # stdout keeps the results alone
    trainer.start()  # before the progress bar: a run that cannot start says why in one line
    catch_stop_signals()  # again: joining Ray installs Ray's own SIGTERM handler, which aborts the process
    bar = tqdm(total=config.max_steps or None, initial=trainer.steps, unit="step", dynamic_ncols=True,
               desc=config.game)
    trainer.say = lambda message: bar.write(message, file=sys.stderr)  # above the bar, never across it
    try:
        try:
            while not trainer.wait(timeout=1.0):
                bar.set_postfix_str(progress_line(trainer.status(), config), refresh=False)
                bar.update(trainer.status()["steps"] - bar.n)
        except KeyboardInterrupt as interrupt:
            catch_stop_signals(stopping=True)
            bar.write(f"{str(interrupt) or 'Ctrl-C'}: stopping the workers and saving a checkpoint ...", file=sys.stderr)
        finally:
            trainer.close()  # stops the run, or waits for the stop at max_steps / max_minutes and its save
    finally:
        bar.close()
    print(f"run folder: {trainer.run_dir} (metrics.jsonl, checkpoints/); last checkpoint: {trainer.last_checkpoint}")
    if trainer.history.evals and not trainer.failure:
        print(learning_summary(trainer))
    if trainer.failure:
        print(f"error: the run failed: {trainer.failure}", file=sys.stderr)
    if trainer.save_error:  # the run's work since its last checkpoint is not on disk: not a success
        print(f"error: the final checkpoint could not be written ({trainer.save_error}); the last one written is "
              f"{trainer.last_checkpoint or 'none: this run has no checkpoint'}", file=sys.stderr)
    return 1 if trainer.failure or trainer.save_error else 0


def progress_line(status: dict[str, Any], config: A3CConfig) -> str:
    """What the progress bar shows beside the steps: state, frames, speed, the evaluator, time left."""
    if status["state"] == "starting":
        return "starting the workers ..."
    evaluation = "-" if status["eval_mean10"] is None else f"{status['eval_mean10']:+.1f}"
    line = (f"frames {status['frames']:,} | {status['frames_per_second']:,.0f} frames/s | "
            f"eval mean10 {evaluation} ({status['eval_episodes']} games)")
    if config.max_minutes:
        line += f" | {max(0.0, config.max_minutes - status['elapsed'] / 60):.1f} min left"
    return line


def learning_summary(trainer: Trainer, games: int = 10) -> str:
    """One line: did the run learn? The evaluator's best and last mean of 10 against random play
    (``games`` games on the final evaluation's seeds, with the evaluator's sticky actions)."""
    torch.set_num_threads(1)
    means = moving_average([e["score"] for e in trainer.history.evals], WINDOW)
    best = int(means.argmax())
    env = make_env(evaluation_config(trainer.config))
    random = [play_episode(None, env, seed=FINAL_SEED + i)["score"] for i in range(games)]
    random_mean = sum(random) / games
    verdict = "learned" if means[-1] > random_mean + 1 else "not learned yet"
    return (f"{trainer.config.game}: {verdict}: evaluator mean of the last 10 games {means[-1]:+.1f} (best "
            f"{means[best]:+.1f} at {trainer.history.evals[best]['steps']:,} steps), random play {random_mean:+.1f} "
            f"over {games} games")


def play(args: argparse.Namespace) -> int:
    # One state at a time gains nothing from more torch threads, and beside a training run they
    # wait for each other: 600 greedy steps took 83 s with 2 threads, 0.5 s with one
    # (benchmarks/README.md, archived scripts: play_threads.py).
    torch.set_num_threads(1)
    for option, value, least in (("--episodes", args.episodes, 1), ("--seed", args.seed, 0)):
        if value < least:
            raise ValueError(f"{option} must be >= {least}, got {value}")
    if args.gif:
        check_writable(args.gif, "--gif")  # now, not after the game
    model, config, _ = load_model(args.checkpoint)
    config = config.replace(sticky_action_prob=config.eval_sticky_action_prob if args.sticky_action_prob is None
                            else args.sticky_action_prob)
    env = make_env(config, render_mode="rgb_array")
    players = {"agent": model, "random": None} if args.vs_random else {"agent": model}
    means = {}
    for name, player in players.items():
        scores = []
        for episode in range(args.episodes):
            record = bool(args.gif) and episode == 0 and player is model
            result = play_episode(player, env, seed=args.seed + episode, record=record)
            scores.append(result["score"])
            print(f"{name} episode {episode + 1}: score {result['score']:+g}, reward {result['reward']:+.1f}, "
                  f"{result['length']} steps")
            if result["frames"]:
                save_gif(args.gif, result["frames"][::2], fps=30)  # every 2nd step: twice the game's own speed
                print(f"saved {args.gif}")
        means[name] = sum(scores) / len(scores)
        print(f"{name}: mean score over {len(scores)} episodes: {means[name]:+.2f} "
              f"(min {min(scores):+g}, max {max(scores):+g})")
    if args.vs_random:
        print(f"agent - random: {means['agent'] - means['random']:+.2f} points per episode "
              f"({config.game}, sticky actions {config.sticky_action_prob:g})")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)  # as in play: one state at a time
    if args.episodes < 2:
        raise ValueError(f"--episodes must be >= 2 (a confidence interval needs two games), got {args.episodes}")
    if args.first_seed < 0:
        raise ValueError(f"--first-seed must be >= 0, got {args.first_seed}")
    if not 0.0 <= args.sticky_action_prob <= 1.0:
        raise ValueError(f"--sticky-action-prob must be between 0 and 1, got {args.sticky_action_prob}")
    record = read_record(args.checkpoint) if args.save_record else None  # refused before the games, not after
    model, config, _ = load_model(args.checkpoint)
    result = final_evaluation(model, config, args.episodes, args.first_seed, args.sticky_action_prob)
    seeds = result["seeds"]
    print(f"{config.game}: {args.episodes} greedy games with sticky actions {args.sticky_action_prob:g}, "
          f"seeds {seeds[0]}-{seeds[1]}, the game's own score")
    print(f"{'':8}{'mean':>8}{'std':>7}   {'95% CI of the mean':<20}{'min':>6}{'max':>6}")
    for name in ("agent", "random"):
        r = result[name]
        ci = f"[{r['ci95'][0]:+.1f}, {r['ci95'][1]:+.1f}]"
        print(f"{name:8}{r['mean']:>+8.2f}{r['std']:>7.2f}   {ci:<20}{r['min']:>+6g}{r['max']:>+6g}")
    if config.game == "pong":
        verdict = "yes" if result["agent"]["mean"] >= SOLVED_PONG else "no"
        print(f"solved (a mean of at least +{SOLVED_PONG:g}): {verdict}")
    if args.save_record:
        command = f"python -m a3c_core evaluate {args.checkpoint} --episodes {args.episodes}"
        command += "" if args.first_seed == FINAL_SEED else f" --first-seed {args.first_seed}"
        command += "" if args.sticky_action_prob == 0.25 else f" --sticky-action-prob {args.sticky_action_prob:g}"
        record["evaluation"] = {**result, "command": command, "date": time.strftime("%Y-%m-%d")}
        write_record(args.checkpoint, record)
        print(f"saved the evaluation in {record_path(args.checkpoint)} under 'evaluation'")
    return 0


def export(args: argparse.Namespace) -> int:
    extra = {"machine": f"{os.cpu_count()} cores, {platform.machine()}, {platform.system()}",
             "command": args.command, "exported": time.strftime("%Y-%m-%d")}
    summary = export_agent(args.checkpoint, args.output, extra, float32=args.float32)
    size = Path(args.output).stat().st_size / 1e6
    print(f"wrote {args.output} ({size:.1f} MB, {summary['weights']} weights) and its .json: {summary['game']}, "
          f"{summary['steps']:,} steps, {summary['minutes']} min, last evaluator scores "
          f"{summary['final_evaluator_scores']}")
    return 0


def editions(args: argparse.Namespace) -> int:
    root = course_root()
    if root is None:
        raise FileNotFoundError("the notebooks are not installed with the package: install it from the repository")
    course = Path(args.course).resolve()
    released = build_course(course, root / "notebooks", args.course_id,
                            Path(args.exchange) if args.exchange else None, force=args.force)
    print(f"instructor edition (solutions, graded checks): {course / 'source'}")
    print(f"student edition (skeletons, the same checks):  {course / 'release'}")
    print(f"assignments: {', '.join(released)}; next, in {course}: nbgrader release_assignment NAME, then "
          "collect, autograde and export (README: Running a class)")
    return 0
