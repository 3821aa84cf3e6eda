"""How far each Pong run of the protocol got: the evaluator's curves and every final evaluation, against +18.

    .venv/bin/python benchmarks/how_far.py          # writes results/how-far-each-got.png, prints the table

Reads the curves in ``benchmarks/results/`` and the final evaluations in
``results/final-evaluations.csv`` (each measured by ``python -m a3c_core evaluate <checkpoint>
--episodes 30``: 30 sticky-action games on the seeds of every Pong row; the command of each run is in
benchmarks/README.md). Left, the fast preset (the issue's target: +18 within 2M steps, three seeds);
right, the seed preset (+18 for one seed). Lines are the evaluator's mean of 10 games as the run
went, markers with bars the final evaluation's mean and 95 % confidence interval at the step it was
taken.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from a3c_core.curves import MEAN, WINDOW, read_curve

RESULTS = Path(__file__).resolve().parent / "results"
SOLVED = 18.0
#: Per panel: (curve file, label) of the runs drawn as lines; a run continued in another file is drawn once.
CURVES = {
    "fast": [("pong-fast-w2-seed0-sticky-4M", "seed 0 (to 4M)"), ("pong-fast-w2-seed1-sticky-4M", "seed 1 (to 4M)"),
             ("pong-fast-w2-seed2-sticky", "seed 2"), ("pong-fast-gae0.95-seed0-sticky", "seed 0, GAE 0.95"),
             ("pong-fast-gae0.95-seed2-sticky", "seed 2, GAE 0.95")],
    "seed": [("pong-seed-w8-seed0-sticky-3.8M", "1 frame, first run"),
             ("pong-seed-w8-seed0-sticky-run2-lr1e-4", "1 frame, second run (lr 1e-4 from 3.75M)"),
             ("pong-seed-stack4-w8-seed0-sticky", "4 frames")],
}
BUDGET = {"fast": 2_000_000}


def read_finals(path: Path) -> list[dict]:
    """The rows of ``final-evaluations.csv``, numbers as floats: run, curve (the drawn curve file that holds
    the run: a run continued later is drawn by its longer curve), preset, steps, mean, ci_low, ci_high, what."""
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    for row in rows:
        for name in ("steps", "mean", "ci_low", "ci_high"):
            row[name] = float(row[name])
    return rows


def figure(finals: list[dict], results: Path = RESULTS) -> Figure:
    """Two panels (fast, seed): the runs' mean-of-10 curves and their final evaluations with 95 % CIs."""
    fig = Figure(figsize=(13, 4.8), dpi=90, layout="constrained")
    FigureCanvasAgg(fig)
    for ax, (preset, runs) in zip(fig.subplots(1, 2, sharey=True), CURVES.items()):
        colours = {}
        for i, (name, label) in enumerate(runs):
            curve = read_curve(results / f"{name}.csv")
            colours[name] = f"C{i}"
            ax.plot(curve["steps"], curve[MEAN], lw=1.5, color=f"C{i}", label=label)
        for row in (r for r in finals if r["preset"] == preset):
            colour = colours[row["curve"]]  # the colour of the curve the evaluated checkpoint belongs to
            ax.errorbar(row["steps"], row["mean"], yerr=[[row["mean"] - row["ci_low"]], [row["ci_high"] - row["mean"]]],
                        fmt="D", ms=6, capsize=4, color=colour, markeredgecolor="black")
        ax.axhline(SOLVED, color="gray", ls="--", lw=1)
        ax.text(0, SOLVED + 0.5, "solved: +18", color="gray", fontsize=8)
        if preset in BUDGET:
            ax.axvline(BUDGET[preset], color="gray", ls=":", lw=1)
            ax.text(BUDGET[preset], -20, " the issue's budget", color="gray", fontsize=8)
        ax.set_title(f"{preset} preset: mean of {WINDOW} (lines), final 30-game evaluation with 95 % CI (diamonds)",
                     fontsize=9)
        ax.set_xlabel("agent steps (all workers)")
        ax.grid(alpha=0.3)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
        ax.legend(loc="lower right", fontsize=8)
    fig.axes[0].set_ylabel("Pong score (sticky actions 0.25)")
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(RESULTS / "how-far-each-got.png"), help="where the figure goes")
    args = parser.parse_args()
    finals = read_finals(RESULTS / "final-evaluations.csv")
    print("| run | preset | steps | final evaluation [95 % CI] | short of +18 |\n|---|---|---:|---|---:|")
    for row in finals:
        print(f"| {row['what']} | {row['preset']} | {row['steps'] / 1e6:.2f}M | {row['mean']:+.2f} "
              f"[{row['ci_low']:+.1f}, {row['ci_high']:+.1f}] | {max(0.0, SOLVED - row['mean']):.2f} |")
    try:
        figure(finals).savefig(args.out)
    except OSError as error:
        parser.error(f"cannot write the figure to {args.out}: {error.strerror}")
    print(f"figure: {args.out}")


if __name__ == "__main__":
    main()
