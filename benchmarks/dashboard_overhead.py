"""What the live dashboard costs the training: agent steps/s with and without it, side by side.

Both runs are the real thing: a :class:`Trainer` with its workers, the paced evaluator sending
frames, and the reader thread filling the history. The "dashboard" run adds a :class:`Dashboard`
whose thread does all its work (PNG-encodes each new frame, redraws the reward plot every few
seconds) as in JupyterLab; only the browser is missing, which runs on the student's side anyway.

    .venv/bin/python benchmarks/dashboard_overhead.py                    # Pong, 2 workers, 3 repeats
    .venv/bin/python benchmarks/dashboard_overhead.py --game catch --seconds 20 --repeats 5

The two kinds of run alternate (without, with, with, without, ...), so that a machine whose load
drifts slows both alike; the ratio is of the medians. The issue's bar: overhead below 5 %.

Recorded (2 cores shared with another training run, so about +-10 % drift between repeats)::

    $ .venv/bin/python benchmarks/dashboard_overhead.py
    pong, fast preset, 2 workers, 30 s per run after 12 s
     run  dashboard   steps/s
       1    without     305.9
       1       with     308.7
       2       with     382.2
       2    without     370.8
       3    without     360.2
       3       with     350.7
    median steps/s without the dashboard: 360.2
    median steps/s with the dashboard:    350.7
    ratio with/without: 0.974 (overhead +2.6 %)     [repeats: 1.009, 1.031, 0.974]
"""

from __future__ import annotations

import argparse
import statistics

from throughput import multi_process  # the same measurement as the throughput table (this folder)

from a3c_core import A3CConfig
from a3c_core.dashboard import Dashboard


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--game", default="pong")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each kind")
    args = parser.parse_args()

    config = A3CConfig.preset("fast", game=args.game, workers=args.workers, snapshot_minutes=0)
    results: dict[bool, list[float]] = {False: [], True: []}
    print(f"{args.game}, fast preset, {args.workers} workers, {args.seconds:g} s per run once all workers are up")
    print(f"{'run':>4}  {'dashboard':>9}  {'steps/s':>8}")
    for repeat in range(args.repeats):
        for dashboard in ((False, True) if repeat % 2 == 0 else (True, False)):
            rate = multi_process(config, args.seconds, attach=Dashboard if dashboard else None)
            results[dashboard].append(rate)
            print(f"{repeat + 1:>4}  {'with' if dashboard else 'without':>9}  {rate:8.1f}", flush=True)
    without, with_ = statistics.median(results[False]), statistics.median(results[True])
    print(f"\nmedian steps/s without the dashboard: {without:.1f}")
    print(f"median steps/s with the dashboard:    {with_:.1f}")
    pairs = ", ".join(f"{w / wo:.3f}" for w, wo in zip(results[True], results[False]))
    print(f"ratio with/without of the medians: {with_ / without:.3f} (overhead {100 * (1 - with_ / without):+.1f} %); "
          f"of each repeat: {pairs}")


if __name__ == "__main__":
    main()
