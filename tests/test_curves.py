"""Curve files: evaluator records -> CSV -> arrays, and the overlay plot of several runs."""

import doctest

import numpy as np
import pytest

from a3c_core import curves
from a3c_core.curves import COLUMNS, curve_from_evals, read_curve, write_curve
from a3c_core.plots import curves_figure, figure_png


def evals(scores):
    return [{"steps": 100 * (i + 1), "elapsed": 30.0 * (i + 1), "score": s, "reward": s / 10, "length": 50 + i}
            for i, s in enumerate(scores)]


def test_the_module_examples_hold():
    assert doctest.testmod(curves).failed == 0


def test_mean5_is_the_mean_of_the_last_five_scores_and_frames_count_the_frame_skip():
    curve = curve_from_evals(evals([-21, -19, -15, -11, -7, 3, 21]), frame_skip=4)
    assert curve["mean5"].tolist() == pytest.approx([-21, -20, -55 / 3, -16.5, -14.6, -9.8, -1.8])
    assert curve["frames"].tolist() == [400 * (i + 1) for i in range(7)]
    assert curve["minutes"].tolist() == [0.5 * (i + 1) for i in range(7)]


def test_a_curve_survives_the_round_trip_through_csv(tmp_path):
    curve = curve_from_evals(evals([1.0, 2.5, -3.0]), frame_skip=4)
    path = write_curve(tmp_path / "sub" / "run-curve.csv", curve)
    assert path.read_text().splitlines()[0] == ",".join(COLUMNS)
    back = read_curve(path)
    for name in COLUMNS:
        np.testing.assert_allclose(back[name], curve[name], atol=1e-3)


def test_the_shipped_curves_read_back(tmp_path):
    from pathlib import Path
    data = Path(__file__).resolve().parents[1] / "data"
    for path in data.glob("*-curve.csv"):
        curve = read_curve(path)
        assert len(curve["score"]) > 10 and np.all(np.diff(curve["steps"]) >= 0), path


def test_a_file_that_is_not_a_curve_says_which_columns_are_missing(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("episode,steps,score\n0,1,2\n")
    with pytest.raises(ValueError, match="lacks the column.*frames"):
        read_curve(path)


def test_the_overlay_plot_draws_a_line_per_run_and_rejects_an_unknown_axis():
    runs = {"1 frame": curve_from_evals(evals([-21, -20, -18]), 4),
            "4 frames": curve_from_evals(evals([-21, -21, -10, 0]), 4)}
    fig = curves_figure(runs, x="steps", title="ablation")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["1 frame (3 episodes)", "4 frames (4 episodes)"]
    assert len(ax.lines) == 4 and ax.get_xlabel() == "agent steps (all workers)"
    assert figure_png(fig)[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="x must be one of"):
        curves_figure(runs, x="hours")


def test_first_reach_waits_for_five_episodes_and_finds_the_first_crossing():
    from a3c_core.curves import first_reach
    curve = curve_from_evals(evals([21, -21, -21, -21, -21, 0, 21, 21, 21, 21]), frame_skip=4)
    assert first_reach(curve, -12.6) == 4    # (21 - 4 * 21) / 5 = -12.6 at the 5th episode, not the 1st
    assert first_reach(curve, 0) == 7        # (-21 - 21 + 0 + 21 + 21) / 5 = 0
    assert first_reach(curve, 16.7) == 9     # (0 + 4 * 21) / 5 = 16.8
    assert first_reach(curve, 50) is None


def test_an_agents_curve_lies_beside_it():
    from a3c_core.curves import curve_path
    assert curve_path("data/pong-fast.pt").as_posix() == "data/pong-fast-curve.csv"
