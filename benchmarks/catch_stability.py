"""Does the catch preset learn Catch, and does it stay learned? Several runs of one setting, each to a fixed budget.

    .venv/bin/python benchmarks/catch_stability.py --runs 3 --max-steps 100000
    .venv/bin/python benchmarks/catch_stability.py --runs 3 --max-steps 100000 --lr 1e-3

The multi-process learning test (tests/test_learning.py) stops a run as soon as the greedy evaluator's
last 5 games average +2. That says a run learned, not that it keeps what it learned: hogwild updates
can undo it. Here every run trains to ``--max-steps`` whatever it reaches, and the table gives, per run,
the agent steps at which the mean of the last 5 evaluator games first reached ``--bar`` (the test's
+2), the lowest mean of 10 games played after that (each game's weights loaded after the bar), and
the mean of the last 10 games. A run *stayed* if that lowest mean of 10 is at least 0 (random play
averages about -3, every ball caught +5). The runs differ only in the order of the workers' updates
(same seed), as two runs of the test do.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from a3c_core import A3CConfig, Trainer
from a3c_core.__main__ import add_config_options, config_overrides
from a3c_core.curves import moving_average

#: The learning test's judgement: the mean of this many evaluator games reaching the bar.
TEST_LAST = 5
#: Games in the mean that says whether a run kept what it learned.
KEPT_LAST = 10


def judge(evals: list[dict], bar: float) -> dict:
    """``evals``: the evaluator's records of one run (``steps``, ``score``). The step at which the mean of
    the last TEST_LAST games first reached ``bar``, the lowest mean of KEPT_LAST games that all began after
    it, and the mean of the last KEPT_LAST games (``None`` where there are too few games)."""
    scores = [e["score"] for e in evals]
    test_means, kept_means = moving_average(scores, TEST_LAST), moving_average(scores, KEPT_LAST)
    reached = next((k for k in range(TEST_LAST - 1, len(scores)) if test_means[k] >= bar), None)
    later = [] if reached is None else kept_means[reached + KEPT_LAST:]
    return {"reached": None if reached is None else evals[reached]["steps"],
            "lowest_after": float(min(later)) if len(later) else None,
            "last": float(kept_means[-1]) if len(scores) >= KEPT_LAST else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="how many runs of the one setting")
    parser.add_argument("--bar", type=float, default=2.0, help=f"the mean of {TEST_LAST} games that counts as learned")
    add_config_options(parser)
    args = parser.parse_args()
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")
    overrides = {"max_steps": 100_000, "max_minutes": 0.0, **config_overrides(args)}
    if not overrides["max_steps"] > 0:
        parser.error("--max-steps must be a positive number of agent steps: every run trains to that budget")
    try:
        config = A3CConfig.preset("catch", **overrides)
    except ValueError as error:
        parser.error(str(error))

    print(f"| run | mean of {TEST_LAST} >= {args.bar:+g} at | lowest mean of {KEPT_LAST} after | "
          f"mean of the last {KEPT_LAST} | steps | minutes |\n|---:|---:|---:|---:|---:|---:|")
    results = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as run_dir:
            trainer = Trainer(config.replace(run_dir=run_dir), verbose=False)
            start = time.monotonic()
            with trainer:
                while trainer.running:
                    time.sleep(1.0)
            result = judge(trainer.history.evals, args.bar)
        results.append(result)
        cells = [f"{result['reached']:,}" if result["reached"] is not None else "-"]
        cells += [f"{result[key]:+.1f}" if result[key] is not None else "-" for key in ("lowest_after", "last")]
        print(f"| {run} | " + " | ".join(cells) + f" | {trainer.steps:,} | {(time.monotonic() - start) / 60:.1f} |",
              flush=True)
    learned = [r for r in results if r["reached"] is not None]
    stayed = [r for r in learned if r["lowest_after"] is not None and r["lowest_after"] >= 0]
    print(f"\nlr {config.lr:g}, entropy {config.entropy_coef:g}, {config.workers} workers: learned in "
          f"{len(learned)} of {len(results)} runs, stayed learned (no mean of {KEPT_LAST} below 0 afterwards) in "
          f"{len(stayed)} of {len(results)}")


if __name__ == "__main__":
    main()
