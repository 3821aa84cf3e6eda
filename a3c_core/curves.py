"""Training curves as CSV files: the greedy evaluator's episodes against steps, frames and time.

A curve is what the shipped agents in ``data/`` come with (``<name>-curve.csv``), what
``benchmarks/time_to_score.py`` writes, and what notebook 08 overlays with a student's own runs.
One row per evaluator episode::

    episode,steps,frames,minutes,score,reward,length,mean10
    0,2398,9592,0.052,-21.0,-21.0,764,-21.0

``steps`` are agent steps of all workers together when the evaluator loaded the weights it played
the episode with (curves made before 2026-11-26's protocol change: when the episode ended),
``frames`` emulator frames (``steps * frame_skip``), ``minutes`` the training time at that moment,
``score`` the game's own score, ``reward`` the (possibly shaped) reward the agent was trained on,
``mean10`` the mean score of the last 10 episodes: the number every milestone ("solved": +18 for
Pong) is judged by. Reading a curve recomputes ``mean10`` from the scores, so older files with a
``mean5`` column read the same way.

>>> curve = curve_from_evals([{"steps": 10, "elapsed": 6.0, "score": 1.0, "reward": 0.5, "length": 7}], 4)
>>> curve["frames"].tolist(), curve["minutes"].tolist(), curve["mean10"].tolist()
([40.0], [0.1], [1.0])
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .files import atomic_write

#: Episodes in the ``mean10`` column, the mean that milestones are judged by.
WINDOW = 10
#: The columns a curve file must have; ``mean10`` is written after them and derived when read.
COLUMNS = ("episode", "steps", "frames", "minutes", "score", "reward", "length")
MEAN = f"mean{WINDOW}"

Curve = dict[str, np.ndarray]


def curve_path(agent: str | os.PathLike) -> Path:
    """Where an agent's curve lies: ``data/pong-fast.pt`` -> ``data/pong-fast-curve.csv``."""
    agent = Path(agent)
    return agent.with_name(agent.stem + "-curve.csv")


def moving_average(values: Sequence[float], window: int = WINDOW) -> np.ndarray:
    """Mean of the last ``window`` values at each position (fewer at the start): shape ``(len(values),)``."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values
    sums = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, values.size + 1), window)
    return (sums[1:] - sums[np.arange(1, values.size + 1) - counts]) / counts


def curve_from_evals(evals: Sequence[dict[str, Any]], frame_skip: int) -> Curve:
    """The curve of a run's evaluator records (``Trainer.history.evals``: dicts with ``steps``,
    ``elapsed`` seconds, ``score``, ``reward``, ``length``): one float64 array of shape ``(E,)``
    per column, for ``E`` episodes."""
    scores = np.array([e["score"] for e in evals], dtype=np.float64)
    return {
        "episode": np.arange(scores.size, dtype=np.float64),
        "steps": np.array([e["steps"] for e in evals], dtype=np.float64),
        "frames": np.array([e["steps"] * frame_skip for e in evals], dtype=np.float64),
        "minutes": np.array([e["elapsed"] / 60 for e in evals], dtype=np.float64),
        "score": scores,
        "reward": np.array([e["reward"] for e in evals], dtype=np.float64),
        "length": np.array([e["length"] for e in evals], dtype=np.float64),
        MEAN: moving_average(scores, WINDOW),
    }


def first_reach(curve: Curve, level: float) -> int | None:
    """Index of the first episode at which the mean of the last 10 scores is at least ``level``
    (with 10 episodes played at least), or ``None`` if it never is."""
    reached = np.flatnonzero((curve[MEAN] >= level) & (np.arange(len(curve["score"])) >= WINDOW - 1))
    return int(reached[0]) if reached.size else None


def write_curve(path: str | os.PathLike, curve: Curve) -> Path:
    """Write ``curve`` as CSV (the columns of :data:`COLUMNS`, then ``mean10``); returns the path.

    Written whole or not at all (:func:`files.atomic_write`): a run killed mid-write keeps the curve it had."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow((*COLUMNS, MEAN))
    for i in range(len(curve["score"])):
        writer.writerow([_cell(name, curve[name][i]) for name in (*COLUMNS, MEAN)])
    with atomic_write(path) as tmp:
        tmp.write_text(text.getvalue(), newline="")
    return Path(path)


def read_curve(path: str | os.PathLike) -> Curve:
    """Read a curve CSV; a missing column raises ``ValueError`` naming it and the file."""
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
        header = rows[0].keys() if rows else set()
    missing = [name for name in COLUMNS if rows and name not in header]
    if missing:
        raise ValueError(f"{path} is not a curve file: it lacks the column(s) {', '.join(missing)}")
    curve = {name: np.array([float(row[name]) for row in rows], dtype=np.float64) for name in COLUMNS}
    curve[MEAN] = moving_average(curve["score"], WINDOW)
    return curve


def run_curve(run: str | os.PathLike) -> Curve:
    """The curve of a run folder (``config.json`` and ``metrics.jsonl``), also while the run writes it:
    a last line still being written is left out. Frames use the run's ``frame_skip``."""
    run = Path(run)
    config = json.loads((run / "config.json").read_text())
    evals = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # the line the run is writing right now
            continue
        if record.get("kind") == "eval":
            evals.append(record)
    return curve_from_evals(evals, config.get("frame_skip", 1))


def class_curves(homes: str | os.PathLike, game: str) -> dict[str, Curve]:
    """Each student's newest run of ``game`` on a classroom hub (home folders ``<homes>/<student>/``,
    runs in ``notebooks/runs/<run>/``, as ``classroom/jupyterhub_config.py`` makes them), labelled
    ``student``, in the students' order. Runs without an evaluator episode yet are left out; a
    folder that cannot be read (another user's, a run being set up) is skipped."""
    newest: dict[str, tuple[float, Curve]] = {}
    for metrics in sorted(Path(homes).glob("*/notebooks/runs/*/metrics.jsonl")):
        student, run = metrics.parents[3].name, metrics.parent
        try:
            if json.loads((run / "config.json").read_text()).get("game") != game:
                continue
            changed, curve = metrics.stat().st_mtime, run_curve(run)
        except (OSError, ValueError):
            continue
        if len(curve["score"]) and changed > newest.get(student, (-1.0, None))[0]:
            newest[student] = (changed, curve)
    return {student: newest[student][1] for student in sorted(newest)}


#: A run is "learning" once its last mean of 10 lies this far above its first (where it started: random play).
LEARNING_MARGIN = 1.0


def progress_rows(curves: dict[str, Curve]) -> list[dict[str, Any]]:
    """One row per curve for a class's table: ``name``, ``episodes``, ``minutes`` trained, ``first`` and
    ``last`` mean of 10 (the first: where the run started, near random play) and ``verdict``: "learning"
    (the last at least :data:`LEARNING_MARGIN` above the first), "not yet", or "too early" (fewer than
    20 evaluator games: two windows of 10 to compare)."""
    rows = []
    for name, curve in curves.items():
        episodes = len(curve["score"])
        first, last = float(curve[MEAN][min(episodes, WINDOW) - 1]), float(curve[MEAN][-1])
        verdict = ("too early" if episodes < 2 * WINDOW else
                   "learning" if last >= first + LEARNING_MARGIN else "not yet")
        rows.append({"name": name, "episodes": episodes, "minutes": float(curve["minutes"][-1]),
                     "first": first, "last": last, "verdict": verdict})
    return rows


def _cell(name: str, value: float) -> int | float:
    """How a column is written: counts as whole numbers, the rest rounded to 3 decimals."""
    if name in ("episode", "steps", "frames", "length"):
        return int(value)
    return round(float(value), 3)
