"""Curve files: evaluator records -> CSV -> arrays, and the overlay plot of several runs."""

import doctest

import numpy as np
import pytest

from a3c_core import curves
from a3c_core.curves import COLUMNS, curve_from_evals, first_reach, read_curve, write_curve
from a3c_core.plots import curves_figure, figure_png


def evals(scores):
    return [{"steps": 100 * (i + 1), "elapsed": 30.0 * (i + 1), "score": s, "reward": s / 10, "length": 50 + i}
            for i, s in enumerate(scores)]


def test_the_module_examples_hold():
    assert doctest.testmod(curves).failed == 0


def test_mean10_is_the_mean_of_the_last_ten_scores_and_frames_count_the_frame_skip():
    scores = [-21, -19, -15, -11, -7, 3, 21, 5, 5, 9, 11, -1]
    curve = curve_from_evals(evals(scores), frame_skip=4)
    assert curve["mean10"].tolist() == pytest.approx([-21, -20, -55 / 3, -16.5, -14.6, -70 / 6, -7, -5.5,
                                                      -39 / 9, -3.0, 0.2, 2.0])
    assert curve["frames"].tolist() == [400 * (i + 1) for i in range(12)]
    assert curve["minutes"].tolist() == [0.5 * (i + 1) for i in range(12)]


def test_milestones_need_ten_games_and_old_mean5_files_read_as_mean10(tmp_path):
    curve = curve_from_evals(evals([20] * 9 + [19, 19]), frame_skip=4)
    assert first_reach(curve, 18) == 9  # nine games at +20 are not yet "solved": ten are needed
    old = tmp_path / "old-curve.csv"
    old.write_text("episode,steps,frames,minutes,score,reward,length,mean5\n"
                   + "".join(f"{i},{i},{4 * i},0.1,{s},{s},9,0\n" for i, s in enumerate([1.0, 3.0])))
    assert read_curve(old)["mean10"].tolist() == [1.0, 2.0]


def test_a_curve_survives_the_round_trip_through_csv(tmp_path):
    curve = curve_from_evals(evals([1.0, 2.5, -3.0]), frame_skip=4)
    path = write_curve(tmp_path / "sub" / "run-curve.csv", curve)
    assert path.read_text().splitlines()[0] == ",".join(COLUMNS) + ",mean10"
    back = read_curve(path)
    for name in (*COLUMNS, "mean10"):
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


def test_first_reach_waits_for_ten_episodes_and_finds_the_first_crossing():
    curve = curve_from_evals(evals([21] + [-21] * 9 + [0] + [21] * 10), frame_skip=4)
    assert first_reach(curve, -16.8) == 9    # (21 - 9 * 21) / 10 = -16.8 at the 10th episode, not the 1st
    assert first_reach(curve, 0) == 15       # (-4 * 21 + 0 + 5 * 21) / 10 = +2.1 first at the 16th
    assert first_reach(curve, 19) == 20      # ten games at +21 at last
    assert first_reach(curve, 50) is None


def test_an_agents_curve_lies_beside_it():
    from a3c_core.curves import curve_path
    assert curve_path("data/pong-fast.pt").as_posix() == "data/pong-fast-curve.csv"


def test_a_write_that_fails_midway_keeps_the_curve_that_was_there(tmp_path, monkeypatch):
    path = write_curve(tmp_path / "run-curve.csv", curve_from_evals(evals([1.0, 2.0]), frame_skip=4))
    before = path.read_text()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(curves.os, "replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_curve(path, curve_from_evals(evals([1.0, 2.0, 3.0]), frame_skip=4))
    assert path.read_text() == before and sorted(p.name for p in tmp_path.iterdir()) == ["run-curve.csv"]
