"""The command line, for servers and scripts.

::

    python -m a3c_core train --game pong --workers 8              # the seed preset
    python -m a3c_core train --preset catch --max-minutes 2
    python -m a3c_core train --resume runs/pong-.../checkpoints/step-000001234567.pt
    python -m a3c_core play runs/pong-.../checkpoints/step-000001234567.pt --episodes 3 --gif pong.gif
    python -m a3c_core play data/space-invaders-fast-sticky.pt --episodes 10 --vs-random  # sticky, as trained
    python -m a3c_core evaluate data/pong-fast.pt --save-record     # 30 sticky-action games on fresh seeds
    python -m a3c_core export runs/pong-.../checkpoints/step-000001234567.pt data/pong-fast.pt
    python -m a3c_core editions course/    # the instructor's kit: student and instructor editions, for nbgrader

Every field of :class:`~a3c_core.config.A3CConfig` is an option (``--help`` lists them). Ctrl-C,
SIGTERM (``timeout``, ``docker stop``, a batch scheduler) and SIGHUP (a closed terminal) stop
training cleanly and write a final checkpoint; a second signal during that stop is ignored. A bad
input ends in one sentence on stderr and exit code 2; a run that failed (diverged, a crash that
keeps happening) or whose final checkpoint could not be written exits with code 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from typing import Sequence

from .checkpoint import CheckpointError
from .commands import editions, evaluate, export, play, train
from .config import PRESETS, A3CConfig
from .course import open_lab
from .editions import KitError
from .evaluator import FINAL_SEED


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """One ``--field-name`` option per config field; unset options keep the preset's value."""
    group = parser.add_argument_group("training settings (default: the preset's value)")
    defaults = A3CConfig()
    for f in dataclasses.fields(A3CConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = typing.get_type_hints(A3CConfig)[f.name]
        help_text = f"{f.metadata.get('help', '')} (seed preset: {getattr(defaults, f.name)!r})"
        if kind in (bool, bool | None):
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            kind = int if kind == (int | None) else kind  # "not given" is the option's own None
            group.add_argument(flag, dest=f.name, type=kind, default=None, metavar=kind.__name__.upper(), help=help_text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m a3c_core", description="A3C on Atari Pong and Space Invaders.")
    commands = parser.add_subparsers(dest="subcommand", required=True)

    train = commands.add_parser("train", help="train in background processes, with a progress bar")
    train.add_argument("--preset", choices=sorted(PRESETS), default="seed",
                       help="starting values: 'seed' (default) is the write-up's design, 'fast' is grayscale 80x80")
    train.add_argument("--resume", metavar="CHECKPOINT", help="continue a run from its checkpoint")
    train.add_argument("--name", help="run folder name under --run-dir (default: <game>-<date>-<time>)")
    add_config_options(train)

    play = commands.add_parser("play", help="play greedy episodes with a checkpoint's model")
    play.add_argument("checkpoint", help="a run's checkpoint or an exported agent (.pt)")
    play.add_argument("--episodes", type=int, default=1, help="how many games to play (default 1)")
    play.add_argument("--seed", type=int, default=0,
                      help="seed of the first game; game i uses seed + i (default 0)")
    play.add_argument("--gif", help="save the first episode as a GIF at this path")
    play.add_argument("--sticky-action-prob", type=float, metavar="P",
                      help="sticky-action probability of the games (default: the evaluator's of the checkpoint's "
                           "run, 0.25 under the field's protocol; 0 replays one deterministic game for every seed)")
    play.add_argument("--vs-random", action="store_true",
                      help="also play as many episodes with uniformly random actions, and compare")

    evaluate = commands.add_parser(
        "evaluate", help="the field's final evaluation: greedy games with sticky actions on seeds never used in "
                         "training, against random play on the same seeds, with a 95%% confidence interval")
    evaluate.add_argument("checkpoint", help="a run's checkpoint or an exported agent (.pt)")
    evaluate.add_argument("--episodes", type=int, default=30, help="games per player (default 30)")
    evaluate.add_argument("--first-seed", type=int, default=FINAL_SEED,
                          help=f"seed of the first game; game i uses first seed + i (default {FINAL_SEED:,}, "
                               "far from every seed training uses)")
    evaluate.add_argument("--sticky-action-prob", type=float, default=0.25, metavar="P",
                          help="sticky-action probability of the games (default 0.25, ALE v5's and the field's)")
    evaluate.add_argument("--save-record", action="store_true",
                          help="store the result under 'evaluation' in the agent's .json record (the one "
                               "`export` wrote beside the .pt)")

    export = commands.add_parser("export", help="write a small play-only copy of a checkpoint (e.g. for data/)")
    export.add_argument("checkpoint")
    export.add_argument("output", help="the .pt file to write; a .json summary is written beside it")
    export.add_argument("--command", default="", help="the command that trained the checkpoint, for the record")
    export.add_argument("--float32", action="store_true",
                        help="keep the weights as trained (twice the size); by default they are rounded to float16")
    kit = commands.add_parser("editions", help="the instructor's kit: an nbgrader course folder with the student "
                                               "edition and the instructor edition of notebooks 01-04")
    kit.add_argument("course", help="the course folder to write (nbgrader's course directory)")
    kit.add_argument("--course-id", default="a3c-lab", help="nbgrader's course id (default a3c-lab)")
    kit.add_argument("--exchange", help="nbgrader's exchange folder (default COURSE/exchange; on a hub, one that "
                                        "every student's server shares, such as /srv/nbgrader/exchange)")
    kit.add_argument("--force", action="store_true", help="overwrite instructor editions edited by hand")
    lab = commands.add_parser("lab", help="open the notebook series in JupyterLab (what `make lab` does, without make)")
    lab.add_argument("--dir", help="where to put a copy of the notebooks and data/ when this package was installed "
                                   "without a clone (default ./a3c-lab; a clone's own notebooks open in place)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.subcommand != "lab":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.subcommand == "lab":  # options it does not know go to JupyterLab (--port 8899, --no-browser)
            return open_lab(args.dir, extra)
        return {"train": train, "play": play, "evaluate": evaluate, "export": export,
                "editions": editions}[args.subcommand](args)
    except (ValueError, FileNotFoundError, CheckpointError, ImportError, KitError) as error:
        parser.exit(2, f"error: {error}\n")
    except OSError as error:  # a file or folder the system refuses: its own words, and which one
        parser.exit(2, f"error: {error.strerror or error}{f': {error.filename}' if error.filename else ''}\n")
    except KeyboardInterrupt:  # before training started or after it ended: nothing to save
        parser.exit(130, "interrupted\n")


if __name__ == "__main__":
    sys.exit(main())
