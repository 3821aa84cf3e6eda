"""Training throughput: N worker processes against the single-process ceiling, measured side by side.

The ceiling is one process running the worker's own loop (``a3c_core.worker.train_loop``:
env.step + forward every step, loss + backward + Adam every ``rollout_steps``) with no other
process. With N workers on C cores, perfect scaling would give min(N, C) x ceiling; the table's
last column says how close the real run (workers + the paced evaluator + the kernel's reader) gets.

``--independent`` also runs min(N, C) copies of the ceiling loop at once, each with its own model
and nothing shared: what the machine itself gives that many processes (shared caches, memory
bandwidth, clock boost). The gap between that and the real run is what A3C's own machinery costs
(shared weights and Adam, the queue, the evaluator).

    .venv/bin/python benchmarks/throughput.py                      # seed and fast presets, Pong
    .venv/bin/python benchmarks/throughput.py --presets fast --workers 2 4 --seconds 20 --repeats 5
    .venv/bin/python benchmarks/throughput.py --presets fast --workers 2 --games 1 8 16 \
        --out benchmarks/results/throughput_games.json                                 # games per worker

Each number is the median over ``--repeats`` measurements; the ceiling and the N-worker runs of a
preset, for each ``--games`` count, alternate within one repeat, so that a busy machine slows all alike.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import torch

from a3c_core import A3CConfig, ActorCritic, Trainer, make_env
from a3c_core.shared import SharedAdam, SharedMemoryLink
from a3c_core.processes import setup_child_process
from a3c_core.worker import train_loop
from a3c_core.resources import usable_cores

WARMUP_SECONDS = 3.0


def single_process_ceiling(config: A3CConfig, seconds: float) -> float:
    """Agent steps per second of the worker loop run in this process alone (after a warm-up)."""
    torch.set_num_threads(1)
    n_actions = make_env(config).action_space.n
    model = ActorCritic.from_config(config, n_actions)
    optimizer = SharedAdam(model.parameters(), lr=config.lr)
    steps, stop = mp.Value("q", 0), threading.Event()
    samples: list[tuple[float, int]] = []

    def clock() -> None:  # samples the step counter while the loop runs in the main thread
        time.sleep(WARMUP_SECONDS)
        samples.append((time.perf_counter(), steps.value))
        time.sleep(seconds)
        samples.append((time.perf_counter(), steps.value))
        stop.set()

    timer = threading.Thread(target=clock)
    timer.start()
    train_loop(0, config, SharedMemoryLink(config, model, optimizer, steps, stop), _NullQueue())
    timer.join()
    (t0, s0), (t1, s1) = samples
    return (s1 - s0) / (t1 - t0)


def _ceiling_child(config: A3CConfig, seconds: float, results: Any) -> None:
    setup_child_process()  # one torch thread, as in a worker
    results.put(single_process_ceiling(config, seconds))


def independent_ceilings(config: A3CConfig, seconds: float, copies: int) -> float:
    """Summed agent steps per second of ``copies`` ceiling loops run at once in spawned processes."""
    context = mp.get_context("spawn")
    results = context.Queue()
    children = [context.Process(target=_ceiling_child, args=(config, seconds, results)) for _ in range(copies)]
    for child in children:
        child.start()
    rates = [results.get(timeout=seconds + 120) for _ in children]
    for child in children:
        child.join()
    return sum(rates)


class _NullQueue:
    """Reports go nowhere in the ceiling run (the multi-process run pays for its queue)."""

    def put_nowait(self, record: dict) -> None:
        pass


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from ``/proc`` (0 where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def multi_process(config: A3CConfig, seconds: float, attach: Callable[[Trainer], Any] | None = None,
                  cpu: dict[str, float] | None = None) -> float:
    """Agent steps per second of a real Trainer run, measured after all processes are up.

    ``attach(trainer)``, if given, builds something that watches the run (a dashboard) before it
    starts; it is closed with the run. ``cpu``, if given, is filled with the share of one core each
    process used during the measurement (``"workers"``: their sum; ``"parent"``: this process, where the
    reader thread and the evaluator's thread run).
    """
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(config.replace(run_dir=run_dir), verbose=False)
        watcher = attach(trainer) if attach else None
        trainer.start()
        try:
            # Wait until every worker has imported torch and reported its first losses: with more workers
            # than cores, the last ones start long after the first have made their first updates.
            deadline = time.monotonic() + 180
            while (len({record["rank"] for record in trainer.history.losses}) < config.workers
                   and time.monotonic() < deadline):
                time.sleep(0.2)
            time.sleep(WARMUP_SECONDS)
            pids = {**trainer.process_ids(), "parent": os.getpid()}
            before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            t0, s0 = time.perf_counter(), trainer.steps
            time.sleep(seconds)
            t1, s1 = time.perf_counter(), trainer.steps
            used = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
            if cpu is not None:
                cpu["workers"] = sum(v for name, v in used.items() if name.startswith("worker")) / (t1 - t0)
                cpu["parent"] = used["parent"] / (t1 - t0)
        finally:
            trainer.stop(save=False)
            if watcher is not None:
                watcher.close()
    return (s1 - s0) / (t1 - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--game", default="pong")
    parser.add_argument("--presets", nargs="+", default=["seed", "fast"])
    parser.add_argument("--workers", nargs="+", type=int, default=None,
                        help="worker counts to measure (default: the cores this process may use, and 8)")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of one measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--eval-steps-per-second", type=float, default=A3CConfig().eval_steps_per_second,
                        help="pace of the greedy evaluator in the worker runs (the dashboard's default)")
    parser.add_argument("--games", nargs="+", type=int, default=None,
                        help="games per worker to measure (default: each preset's own)")
    parser.add_argument("--out", type=Path, help="also write the table and every measurement here (JSON)")
    parser.add_argument("--independent", action="store_true",
                        help="also measure min(workers, cores) independent ceiling loops running at once")
    args = parser.parse_args()
    cores = usable_cores()
    load_before = os.getloadavg()[0]
    worker_counts = args.workers or sorted({cores, 8})

    rows, measurements = [], []
    for preset in args.presets:
        base = A3CConfig.preset(preset, game=args.game, eval_steps_per_second=args.eval_steps_per_second)
        game_counts = args.games or [base.games_per_worker]
        for games in game_counts:
            try:
                base.replace(games_per_worker=games)
            except ValueError as error:
                parser.error(str(error))
        frame_skip = 1 if base.game == "catch" else base.frame_skip
        parallel_counts = sorted({min(n, cores) for n in worker_counts} - {1}) if args.independent else []
        ceiling: dict[int, list[float]] = {games: [] for games in game_counts}
        parallel = {(games, n): [] for games in game_counts for n in parallel_counts}
        runs = {(games, n): [] for games in game_counts for n in worker_counts}
        for repeat in range(args.repeats):
            for games in game_counts:
                config = base.replace(games_per_worker=games)
                ceiling[games].append(single_process_ceiling(config, args.seconds))
                for n in parallel_counts:
                    parallel[games, n].append(independent_ceilings(config, args.seconds, n))
                shares = []
                for n in worker_counts:
                    cpu: dict[str, float] = {}
                    runs[games, n].append(multi_process(config.replace(workers=n), args.seconds, cpu=cpu))
                    shares.append(f"{n} workers {runs[games, n][-1]:.0f} (CPU: workers {cpu['workers']:.0%}, "
                                  f"parent with the evaluator {cpu['parent']:.0%} of a core)")
                measurements.append({"preset": preset, "games_per_worker": games, "repeat": repeat + 1,
                                     "ceiling": round(ceiling[games][-1]),
                                     **{f"{n} independent": round(parallel[games, n][-1]) for n in parallel_counts},
                                     **{f"{n} workers": round(runs[games, n][-1]) for n in worker_counts}})
                print(f"[{preset}, {games} game{'s' if games > 1 else ''} per worker, repeat {repeat + 1}/{args.repeats}] ceiling "
                      f"{ceiling[games][-1]:.0f} steps/s; "
                      + "".join(f"{n} independent {parallel[games, n][-1]:.0f}, " for n in parallel_counts)
                      + ", ".join(shares), flush=True)
        for games in game_counts:
            one = statistics.median(ceiling[games])
            rows.append((preset, games, "1 (no multiprocessing)", one, one * frame_skip, ""))
            for n in parallel_counts:
                rate = statistics.median(parallel[games, n])
                rows.append((preset, games, f"{n} independent ceilings", rate, rate * frame_skip,
                             f"{rate / (n * one):.0%}"))
            for n in worker_counts:
                rate = statistics.median(runs[games, n])
                rows.append((preset, games, f"{n} workers", rate, rate * frame_skip,
                             f"{rate / (min(n, cores) * one):.0%}"))

    print(f"\n{args.game}, {cores} cores, {args.seconds:.0f} s per measurement, median of {args.repeats}")
    print("| preset | games per worker | processes | agent steps/s | frames/s | of min(workers, cores) x ceiling |")
    print("|---|---:|---|---:|---:|---:|")
    for preset, games, what, steps, frames, share in rows:
        print(f"| {preset} | {games} | {what} | {steps:,.0f} | {frames:,.0f} | {share} |")
    if args.out:
        args.out.write_text(json.dumps({
            "date": time.strftime("%Y-%m-%d %H:%M"), "game": args.game, "cores": cores, "seconds": args.seconds,
            "repeats": args.repeats, "load_before": round(load_before, 2),
            "rows": [{"preset": preset, "games_per_worker": games, "processes": what, "steps_per_second": round(steps),
                      "share": share} for preset, games, what, steps, frames, share in rows],
            "measurements": measurements}, indent=1) + "\n")


if __name__ == "__main__":
    main()
