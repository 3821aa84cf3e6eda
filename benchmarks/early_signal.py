"""Has learning started? The workers' side of a run, per block of agent steps, from its metrics.jsonl.

On Pong the greedy evaluator sits at -21 for hundreds of thousands of steps, and then climbs
quickly. The workers' own episodes show the start earlier: the score creeps up from -20.5, episodes
get longer (fewer per block of steps, because the agent returns the ball), the policy's entropy falls
below ln 6 = 1.79 and the value loss drops. This prints those four numbers per block, for one or more
runs side by side, so that a short run can tell whether a setting learns at all.

    .venv/bin/python benchmarks/early_signal.py runs/diagA/*/metrics.jsonl runs/pong1s1/*/metrics.jsonl
    .venv/bin/python benchmarks/early_signal.py --block 50000 --until 400000 runs/*/metrics.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path


def blocks(metrics: Path, block: int, until: int) -> list[dict[str, float]]:
    """One row per ``block`` agent steps up to ``until``: ``start``, ``episodes``, ``score`` (the
    workers' mean game score), ``entropy`` and ``value_loss`` (means of the loss reports), and
    ``partial`` (the run ended inside the block, so its episode count is not comparable)."""
    last_step = 0
    episodes: dict[int, list[float]] = defaultdict(list)
    losses: dict[int, list[tuple[float, float]]] = defaultdict(list)
    with open(metrics) as lines:
        for line in lines:
            record = json.loads(line)
            last_step = max(last_step, record.get("steps", 0))
            if record.get("steps", until) >= until:
                continue
            index = record["steps"] // block
            if record["kind"] == "episode":
                episodes[index].append(record["score"])
            elif record["kind"] == "losses":
                losses[index].append((record["entropy"], record["value_loss"]))
    rows = []
    for index in sorted(episodes):
        entropy, value_loss = zip(*losses[index]) if losses[index] else ([float("nan")], [float("nan")])
        rows.append({"start": index * block, "episodes": len(episodes[index]), "score": statistics.fmean(episodes[index]),
                     "entropy": statistics.fmean(entropy), "value_loss": statistics.fmean(value_loss),
                     "partial": (index + 1) * block > last_step + 1})
    return rows


def _steps(n: int) -> str:
    """100000 -> '100k', 0 -> '0', 150 -> '150'."""
    return f"{n // 1000}k" if n and n % 1000 == 0 else f"{n:,}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metrics", nargs="+", type=Path, help="metrics.jsonl files of runs")
    parser.add_argument("--block", type=int, default=100_000, help="agent steps per row")
    parser.add_argument("--until", type=int, default=1_000_000, help="ignore records from this step on")
    args = parser.parse_args()
    if args.block < 1:
        parser.error(f"--block must be >= 1, got {args.block}")
    missing = [str(path) for path in args.metrics if not path.is_file()]
    if missing:
        parser.error(f"no such metrics file: {', '.join(missing)} (a run folder holds metrics.jsonl)")
    for metrics in args.metrics:
        config = json.loads((metrics.parent / "config.json").read_text()) if (metrics.parent / "config.json").exists() else {}
        about = ", ".join(f"{key} {config[key]}" for key in ("game", "height", "width", "grayscale", "frame_stack",
                                                              "workers", "lr", "seed") if key in config)
        print(f"\n{metrics}" + (f"\n({about})" if about else ""))
        print("| agent steps | worker episodes | mean score | entropy | value loss |\n|---|---:|---:|---:|---:|")
        for row in blocks(metrics, args.block, args.until):
            end = row["start"] + args.block
            print(f"| {_steps(row['start'])}-{_steps(end)}{' (partial)' if row['partial'] else ''} | "
                  f"{row['episodes']} | {row['score']:+.2f} | "
                  f"{row['entropy']:.3f} | {row['value_loss']:.2f} |")


if __name__ == "__main__":
    main()
