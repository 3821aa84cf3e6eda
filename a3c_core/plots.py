"""Reward curves and images for the notebooks and the dashboard (matplotlib, no pyplot state).

Every function here draws on a fresh :class:`matplotlib.figure.Figure` with the Agg canvas, so it
is safe to call from the dashboard's background thread and never opens a window:

>>> from a3c_core.listeners import History
>>> png = figure_png(reward_figure(History()))   # an empty plot, still a valid PNG
>>> png[:4] == b"\\x89PNG"
True
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Sequence

import cv2
import imageio.v3 as iio
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .curves import MEAN, WINDOW, moving_average
from .files import atomic_write

#: x axes the reward plots know: label and how to read it from a record.
X_AXES: dict[str, str] = {"frames": "emulator frames", "minutes": "training minutes"}


def x_values(records: Sequence[dict[str, Any]], x: str, frames_per_step: int) -> np.ndarray:
    """The x coordinate of each record: emulator frames (``steps * frames_per_step``) or minutes (``elapsed / 60``)."""
    if x == "frames":
        return np.array([r["steps"] * frames_per_step for r in records], dtype=np.float64)
    if x == "minutes":
        return np.array([r["elapsed"] / 60 for r in records], dtype=np.float64)
    raise ValueError(f"x must be one of {', '.join(X_AXES)}, got {x!r}")


#: How far the reference curves reach past the live run's last point, as a share of its x range:
#: enough to see where the reference goes next, not so far that the run shrinks to a sliver.
REFERENCE_MARGIN = 0.5
#: Colours of the reference curves: none of them the live run's blue (C0), each one different.
REFERENCE_COLOURS = ("tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive")


def clip_curve(curve: dict[str, np.ndarray], x: str, limit: float) -> dict[str, np.ndarray]:
    """The points of ``curve`` (arrays of shape ``(E,)``) with ``curve[x] <= limit``, plus the first one
    beyond, so that a line drawn from it reaches the edge of an axis that ends at ``limit``."""
    keep = int(np.searchsorted(curve[x], limit, side="right"))
    return {column: values[:keep + 1] for column, values in curve.items()}


def reward_figure(history: Any, x: str = "frames", frames_per_step: int = 1, window: int = WINDOW,
                  title: str = "", size: tuple[float, float] = (9.0, 3.4),
                  reference: dict[str, dict[str, np.ndarray]] | None = None) -> Figure:
    """Two panels against ``x``: the greedy evaluator's score per episode (dots) with its moving
    average, and each training worker's moving-average episode reward.

    The x axis follows this run: it ends a little (:data:`REFERENCE_MARGIN`) past the run's latest
    point, so a run of minutes stays readable beside a reference of hours.

    Args:
        history: a :class:`a3c_core.trainer.History` (``evals`` and ``episodes`` lists of records
            with ``steps``, ``elapsed``, ``score`` / ``reward``, ``rank``).
        x: ``"frames"`` or ``"minutes"``.
        frames_per_step: emulator frames per agent step (``Trainer.frames // Trainer.steps``).
        reference: label -> curve (:func:`a3c_core.curves.read_curve`), each drawn as a dashed
            mean-of-10 line in the evaluator panel, up to the axis' end: where a finished run was at
            this run's x. Drawn once this run has a point to compare with.
    """
    fig = Figure(figsize=size, dpi=80, layout="constrained")
    FigureCanvasAgg(fig)
    evaluator, workers = fig.subplots(1, 2, sharex=True)
    evals = list(history.evals)
    episodes = list(history.episodes)
    run_end = max(x_values(evals, x, frames_per_step).max(initial=0.0),
                  x_values(episodes, x, frames_per_step).max(initial=0.0))
    limit = run_end * (1 + REFERENCE_MARGIN)
    if run_end > 0:
        for (label, curve), colour in zip((reference or {}).items(), REFERENCE_COLOURS):
            shown = clip_curve(curve, x, limit)
            evaluator.plot(shown[x], shown[MEAN], "--", lw=1.5, color=colour, label=f"{label} (mean of {WINDOW})")
        evaluator.set_xlim(0, limit)
    if evals:
        xs, scores = x_values(evals, x, frames_per_step), [e["score"] for e in evals]
        evaluator.plot(xs, scores, "o", ms=3, alpha=0.45, color="tab:blue", label="episode score")
        evaluator.plot(xs, moving_average(scores, window), "-", lw=2, color="tab:blue",
                       label=f"mean of last {window}")
    if evaluator.lines:  # below the panel, never over the points
        evaluator.legend(loc="upper left", bbox_to_anchor=(0, -0.22), fontsize=7, ncols=2, frameon=False)
    evaluator.set_title(f"greedy evaluator ({len(evals)} episodes)", fontsize=10)
    evaluator.set_ylabel("score")

    by_rank: dict[int, list[dict[str, Any]]] = {}
    for episode in episodes:
        by_rank.setdefault(episode["rank"], []).append(episode)
    for rank, records in sorted(by_rank.items()):
        workers.plot(x_values(records, x, frames_per_step), moving_average([r["reward"] for r in records], window),
                     lw=1.2, label=f"worker {rank}")
    if 0 < len(by_rank) <= 8:
        workers.legend(loc="upper left", bbox_to_anchor=(0, -0.22), fontsize=7, ncols=4, frameon=False)
    workers.set_title(f"training episodes, mean of last {window} ({len(episodes)} episodes)", fontsize=10)
    workers.set_ylabel("reward")
    for axes in (evaluator, workers):
        axes.set_xlabel(X_AXES[x])
        axes.grid(alpha=0.3)
        axes.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


#: The panels of :func:`losses_figure`: the record's key and the panel's title.
LOSS_PANELS = (("policy_loss", "policy loss"), ("value_loss", "value loss"), ("entropy", "entropy per step"),
               ("grad_norm", "gradient norm, before clipping"))


def losses_figure(history: Any, max_grad_norm: float, x: str = "frames", frames_per_step: int = 1,
                  title: str = "", size: tuple[float, float] = (11.0, 2.8)) -> Figure:
    """Four panels against ``x``, one line per worker: the policy loss, the value loss, the entropy per
    step and the gradient's norm before clipping, each a mean over ``worker.LOSS_REPORT_EVERY`` updates
    (``history.losses`` records). A dashed line marks ``max_grad_norm``: above it, the gradient is
    scaled down to it before the update. Records of runs made before the norm was reported lack it;
    that panel then stays empty."""
    fig = Figure(figsize=size, dpi=80, layout="constrained")
    FigureCanvasAgg(fig)
    panels = fig.subplots(1, len(LOSS_PANELS), sharex=True)
    by_rank: dict[int, list[dict[str, Any]]] = {}
    for record in history.losses:
        by_rank.setdefault(record["rank"], []).append(record)
    for axes, (key, name) in zip(panels, LOSS_PANELS):
        for rank, records in sorted(by_rank.items()):
            kept = [r for r in records if key in r]
            axes.plot(x_values(kept, x, frames_per_step), [r[key] for r in kept], lw=1.2, label=f"worker {rank}")
        axes.set_title(name, fontsize=10)
        axes.set_xlabel(X_AXES[x])
        axes.grid(alpha=0.3)
        axes.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
    norm = panels[-1]
    norm.axhline(max_grad_norm, ls="--", color="black", lw=1, label=f"max_grad_norm = {max_grad_norm:g}")
    norm.set_yscale("log")
    norm.legend(loc="upper left", bbox_to_anchor=(0, -0.3), fontsize=7, ncols=3, frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def curves_figure(curves: dict[str, dict[str, np.ndarray]], x: str = "frames", title: str = "",
                  size: tuple[float, float] = (9.0, 4.0), x_max: float | None = None) -> Figure:
    """Several runs on one plot: each curve's evaluator scores (faint dots) and their mean of 10
    (line), against ``x``: ``"frames"``, ``"steps"`` or ``"minutes"``. Each run has its own colour;
    the legend sits right of the plot, off the data.

    Args:
        curves: label -> curve, as :func:`a3c_core.curves.read_curve` or
            :func:`a3c_core.curves.curve_from_evals` return them (arrays of shape ``(E,)``).
        x_max: if given, the x axis ends there and longer curves are cut at it (to look at the
            first minutes of long runs beside a short one); the legend still counts all episodes.
    """
    labels = {**X_AXES, "steps": "agent steps (all workers)"}
    if x not in labels:
        raise ValueError(f"x must be one of {', '.join(labels)}, got {x!r}")
    fig = Figure(figsize=size, dpi=80, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for i, (label, curve) in enumerate(curves.items()):
        shown = curve if x_max is None else clip_curve(curve, x, x_max)
        color = f"C{i % 10}"
        ax.plot(shown[x], shown["score"], "o", ms=2.5, alpha=0.3, color=color)
        ax.plot(shown[x], shown[MEAN], "-", lw=2, color=color, label=f"{label} ({len(curve['score'])} episodes)")
    if curves:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    if x_max is not None:
        ax.set_xlim(0, x_max)
    ax.set_xlabel(labels[x])
    ax.set_ylabel(f"evaluator score (dots), mean of {WINDOW} (lines)")
    ax.grid(alpha=0.3)
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
    if title:
        ax.set_title(title, fontsize=11)
    return fig


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes (for an ``ipywidgets.Image`` or a file)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def image_png(image: np.ndarray, scale: int = 2) -> bytes:
    """An ``(H, W, 3)`` RGB or ``(H, W)`` gray uint8 image as PNG bytes, enlarged ``scale`` times
    with nearest-neighbour pixels (so Atari pixels stay sharp)."""
    if scale != 1:
        image = cv2.resize(image, (image.shape[1] * scale, image.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"could not encode an image of shape {image.shape} as PNG")
    return encoded.tobytes()


def state_image(state: np.ndarray, grayscale: bool) -> np.ndarray:
    """The model's ``(C, H, W)`` float32 state in 0..1 as a displayable uint8 image: the latest
    frame of a stack, ``(H, W)`` if ``grayscale`` else ``(H, W, 3)``."""
    channels = 1 if grayscale else 3
    image = np.clip(state[-channels:] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return image[0] if grayscale else image.transpose(1, 2, 0)


def save_gif(path: str | os.PathLike, frames: Sequence[np.ndarray], fps: float) -> Path:
    """Write ``frames`` (each ``(H, W, 3)`` uint8) as a looping GIF at ``fps`` frames per second.

    Written whole or not at all (:func:`files.atomic_write`), so a gallery never lists a half-written GIF.
    """
    with atomic_write(path) as tmp:
        iio.imwrite(tmp, np.stack(frames), extension=".gif", duration=1000 / fps, loop=0)
    return Path(path)
