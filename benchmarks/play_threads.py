"""Greedy play beside a training run: torch's default intra-op threads against one thread.

    .venv/bin/python benchmarks/play_threads.py data/pong-seed-sticky.pt --steps 600 --repeats 3

An agent plays one state at a time, so more torch threads have little to share; when the cores are
busy (a training run next to it), they mostly wait for each other. The two settings alternate
(default, 1, default, 1, ...) on the same game, and the medians are compared. This is why
``python -m a3c_core play``, the evaluator and the notebooks use one thread.

Recorded on 2026-11-26, 2 cores, beside an 8-worker Space Invaders training run::

    threads 2 (torch's default): median 82.77 s for 600 steps   [82.6, 82.8, 82.8]
    threads 1:                   median 0.50 s for 600 steps    [0.50, 0.51, 0.50]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from a3c_core import make_env
from a3c_core.checkpoint import load_model
from a3c_core.evaluator import play_episode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("agent", help="an agent exported by `python -m a3c_core export` (data/*.pt)")
    parser.add_argument("--steps", type=int, default=600, help="agent steps per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    default = torch.get_num_threads()
    model, config, _ = load_model(args.agent)
    env = make_env(config)
    seconds: dict[int, list[float]] = {default: [], 1: []}
    for repeat in range(args.repeats):
        for threads in seconds:
            torch.set_num_threads(threads)
            start = time.monotonic()
            steps = play_episode(model, env, seed=0, max_steps=args.steps)["length"]
            seconds[threads].append(time.monotonic() - start)
            print(f"repeat {repeat + 1}, {threads} thread(s): {steps} steps in {seconds[threads][-1]:.2f} s", flush=True)
    for threads, values in seconds.items():
        name = f"threads {threads}" + (" (torch's default)" if threads == default and threads != 1 else "")
        print(f"{name}: median {statistics.median(values):.2f} s for {args.steps} steps   "
              f"[{', '.join(f'{v:.2f}' for v in values)}]")


if __name__ == "__main__":
    main()
