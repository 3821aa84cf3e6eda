"""Learning speed: train until the greedy evaluator reaches a target score, and say how fast.

    .venv/bin/python benchmarks/time_to_score.py --game pong --preset fast --workers 2 --max-minutes 30
    .venv/bin/python benchmarks/time_to_score.py --game catch --preset fast --workers 2 --lr 1e-3 \\
        --target 5 --milestones -3 0 3 5 --max-minutes 5

It stops when the mean of the evaluator's last 10 episodes reaches ``--target`` (Pong: +18,
"solved"), at ``--max-minutes`` / ``--max-steps`` (counted from the run's start), after ``--for-minutes``
more (a session's share of a long run), or on Ctrl-C, SIGTERM or SIGHUP; then it writes the curve
(CSV: evaluator episodes against agent steps, frames and wall time) and a plot into ``--out``; and
prints the steps and minutes at which the mean of 10 first reached each milestone, with a markdown
row for ``benchmarks/README.md``. The
evaluator plays with sticky actions 0.25 (the config's ``eval_sticky_action_prob``), so the mean of 10
is a mean over ten different games; `python -m a3c_core evaluate` then gives the finished agent its
final 30-game evaluation on fresh seeds.

Before training it measures the single-process ceiling (``throughput.py``'s: the worker's own loop
alone in one process, ``--ceiling-seconds``) and at the end reports the run's throughput as a share of
min(workers, cores) x that ceiling, so that runs on machines of different speed and load compare.
Every training setting is an option (see ``--help``); the evaluator plays faster here than on the
dashboard (``--eval-steps-per-second 120`` by default), so that the curve has points enough while
the evaluator still leaves most of the cores to the workers.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

from throughput import single_process_ceiling  # the same measurement as the throughput table (this folder)

from a3c_core import A3CConfig, Trainer
from a3c_core.__main__ import add_config_options
from a3c_core.commands import catch_stop_signals, config_overrides
from a3c_core.config import PRESETS
from a3c_core.curves import WINDOW, curve_from_evals, first_reach, write_curve
from a3c_core.plots import curves_figure
from a3c_core.resources import usable_cores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="fast")
    parser.add_argument("--target", type=float, default=18.0, help=f"stop when the mean of {WINDOW} reaches this")
    parser.add_argument("--milestones", type=float, nargs="+", default=[-10.0, 0.0, 10.0, 18.0])
    parser.add_argument("--out", default="benchmarks/results", help="folder for the CSV and the plot")
    parser.add_argument("--ceiling-seconds", type=float, default=15.0,
                        help="seconds of the single-process ceiling measured before training (0: skip it)")
    parser.add_argument("--resume", metavar="CHECKPOINT",
                        help="continue a run of this script from one of its checkpoints (in another session, with "
                             "new limits: --max-steps, --max-minutes, both counted from the run's start, so "
                             "--max-minutes 0 lifts the 30-minute default); the curve and milestones cover the whole "
                             "run")
    parser.add_argument("--for-minutes", type=float, metavar="M",
                        help="train M more minutes, then stop with a checkpoint (a session's share of a long run; "
                             "unlike --max-minutes, counted from now)")
    add_config_options(parser)
    args = parser.parse_args()
    if args.for_minutes is not None and not args.for_minutes > 0:
        parser.error(f"--for-minutes must be a positive number of minutes, got {args.for_minutes:g}")
    catch_stop_signals()  # SIGTERM and SIGHUP end the run as Ctrl-C does: curve, plot and checkpoint written
    if args.resume:
        trainer = Trainer.from_checkpoint(args.resume, **config_overrides(args))
        config, name = trainer.config, trainer.run_dir.name.removeprefix("bench-").rsplit("-", 2)[0]
    else:
        overrides = {"eval_steps_per_second": 120.0, "max_minutes": 30.0, **config_overrides(args)}
        config = A3CConfig.preset(args.preset, **overrides)
        frames = f"-stack{config.frame_stack}" if config.frame_stack > 1 else ""
        name = f"{config.game}-{args.preset}{frames}-w{config.workers}-seed{config.seed}"
        trainer = Trainer(config, run_dir=Path(config.run_dir) / f"bench-{name}-{time.strftime('%Y%m%d-%H%M%S')}")
    if args.for_minutes is not None:
        trainer.config = trainer.config.replace(max_minutes=trainer.elapsed / 60 + args.for_minutes)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    ceiling = single_process_ceiling(config, args.ceiling_seconds) if args.ceiling_seconds > 0 else None
    with trainer:
        try:
            while trainer.running and first_reach(curve_from_evals(trainer.history.evals, 1), args.target) is None:
                time.sleep(2.0)
                status = trainer.status()
                mean = "-" if status["eval_mean10"] is None else f"{status['eval_mean10']:+.1f}"
                print(f"\r{status['elapsed'] / 60:5.1f} min  {status['steps']:>10,} steps  "
                      f"{status['steps_per_second']:6.0f} steps/s  eval mean10 {mean}", end="", flush=True)
        except KeyboardInterrupt:
            catch_stop_signals(stopping=True)
            print("\ninterrupted: writing what was measured so far")
    print()
    curve = curve_from_evals(trainer.history.evals, config.frames_per_step)
    write_curve(out / f"{name}.csv", curve)
    fig = curves_figure({name: curve}, x="steps", title=f"{name}: greedy evaluator")
    low, high = fig.axes[0].get_ylim()
    # the target line, unless it lies far above the curve (a target set out of reach, to run to the
    # limits, would flatten the curve into the x-axis)
    if low <= args.target <= high + (high - low) / 2:
        fig.axes[0].axhline(args.target, color="gray", ls="--", lw=1)
    fig.savefig(out / f"{name}.png", dpi=110)

    print(f"\n{name}: {trainer.steps:,} steps in {trainer.elapsed / 60:.1f} min, {len(curve['score'])} evaluator episodes")
    if ceiling:
        overall, ideal = trainer.steps / trainer.elapsed, min(config.workers, usable_cores()) * ceiling
        print(f"throughput: {overall:,.0f} steps/s overall = {overall / ideal:.0%} of min(workers, cores) x the "
              f"single-process ceiling ({ceiling:,.0f} steps/s, measured just before the run); load average "
              f"now {os.getloadavg()[0]:.1f}")
    print(f"| milestone (mean of {WINDOW}) | agent steps | minutes |\n|---:|---:|---:|")
    cells = []
    for milestone in args.milestones:
        hit = first_reach(curve, milestone)
        steps, minutes = ("-", "-") if hit is None else (f"{curve['steps'][hit]:,.0f}", f"{curve['minutes'][hit]:.1f}")
        print(f"| {milestone:+g} | {steps} | {minutes} |")
        cells.append(f"{steps} / {minutes}")
    machine = f"{usable_cores()} cores, {platform.machine()}"
    command = "python benchmarks/time_to_score.py " + " ".join(sys.argv[1:])
    print("\nrow for benchmarks/README.md (steps / minutes at each milestone):")
    print(f"| {time.strftime('%Y-%m-%d')} | {config.game} | {name.split('-')[1]} | {config.seed} | {machine} | "
          + " | ".join(cells) + f" | `{command}` |")
    print(f"curve: {out / (name + '.csv')}, plot: {out / (name + '.png')}")


if __name__ == "__main__":
    main()
