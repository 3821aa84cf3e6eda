"""The dashboard's widgets without a browser: what they hold, how the thread refreshes them, the buttons.

(``test_browser.py`` checks that JupyterLab renders them and that the updates reach the page.)
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest

from a3c_core import A3CConfig, Trainer, make_env
from a3c_core.dashboard import Dashboard, format_duration, status_line


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)


def png_shape(data: bytes) -> tuple[int, ...]:
    assert data[:4] == b"\x89PNG"
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED).shape


def catch_frames(count: int) -> list[np.ndarray]:
    env = make_env(A3CConfig.preset("fast", game="catch"), render_mode="rgb_array")
    env.reset(seed=0)
    frames = []
    for _ in range(count):
        env.step(0)
        frames.append(env.render())
    env.close()
    return frames


@pytest.fixture
def stopped_trainer(tmp_path: Path) -> Trainer:
    """A trainer that never started, with 12 evaluator episodes and 40 training episodes of history."""
    trainer = Trainer(A3CConfig.preset("fast", game="catch", workers=2), run_dir=tmp_path / "run", verbose=False)
    trainer.history.evals.extend({"steps": 100 * i, "elapsed": 3.0 * i, "score": -5.0 + i, "reward": -5.0 + i}
                                 for i in range(12))
    trainer.history.episodes.extend({"steps": 30 * i, "elapsed": 0.9 * i, "reward": -5.0 + i / 4, "rank": i % 2}
                                    for i in range(40))
    trainer.latest_frame = {"kind": "frame", "episode": 0, "t": 2, "frame": catch_frames(1)[0]}
    return trainer


def test_format_duration_and_status_line() -> None:
    assert format_duration(3725.9) == "1:02:05"
    status = {"state": "running", "running": True, "frames": 123456, "frames_per_second": 1234.4, "elapsed": 75.0, "eval_latest": 3.0,
              "eval_mean10": 2.25, "eval_episodes": 12, "episodes": 40, "errors": 1, "restarts": 1,
              "workers": {0: {"mean10": 1.5}, 1: {"mean10": -0.5}}}
    line = status_line(status)
    for part in ("running", "123,456 frames", "1,234 frames/s", "0:01:15 of training", "last 3, mean of 10 2.25",
                 "(12 episodes)", "0: 1.50, 1: -0.50", "1 crash(es), 1 restart(s)"):
        assert part in line, part
    quiet = status_line({**status, "state": "stopped", "running": False, "eval_latest": None, "workers": {},
                         "errors": 0})
    assert "stopped" in quiet and "no episode finished yet" in quiet and "crash" not in quiet
    starting = status_line({**status, "state": "starting", "frames": 0, "frames_per_second": 0.0, "elapsed": 0.0})
    assert "starting" in starting and "frames" not in starting and "0:00:00" not in starting


def test_shows_the_history_of_a_run_it_did_not_see_and_switches_views(stopped_trainer: Trainer) -> None:
    dashboard = Dashboard(stopped_trainer)
    try:
        assert png_shape(dashboard.frame.value) == (420, 320, 3)  # the Atari frame, twice as large
        assert png_shape(dashboard.plot.value) == (272, 720, 4)
        assert "stopped" in dashboard.status.value and "(12 episodes)" in dashboard.status.value
        assert not dashboard.start_button.disabled
        assert dashboard.stop_button.disabled and dashboard.record_button.disabled
        assert dashboard.gallery_box.layout.display == "none"  # no GIF yet

        dashboard.view.value = "state"  # the 80x80 gray state, four times as large
        assert png_shape(dashboard.frame.value) == (320, 320)
        by_frames = dashboard.plot.value
        dashboard.x_axis.value = "minutes"
        assert dashboard.plot.value != by_frames
    finally:
        dashboard.close()


def test_the_thread_shows_new_frames_and_a_rerun_replaces_the_old_dashboard(stopped_trainer: Trainer) -> None:
    first = Dashboard(stopped_trainer, frame_interval=0.05)
    shown = first.frame.value
    for t, frame in enumerate(catch_frames(12)[4:], start=3):  # the ball has moved by then
        stopped_trainer.latest_frame = {"kind": "frame", "episode": 0, "t": t, "frame": frame}
    wait_for(lambda: first.frame.value != shown, 5, "the refresh thread to show the new frame")

    second = Dashboard(stopped_trainer, frame_interval=0.05)  # the cell is run again
    try:
        first._thread.join(5)
        assert not first._thread.is_alive() and first.widget.comm is None and first.frame.comm is None
        assert second._thread.is_alive() and second.frame.value == first.frame.value
    finally:
        second.close()
    second._thread.join(5)
    assert not second._thread.is_alive()


def test_buttons_start_record_save_and_stop_a_real_run(tmp_path: Path) -> None:
    config = A3CConfig.preset("fast", game="catch", workers=1, lr=1e-3, snapshot_minutes=0)
    trainer = Trainer(config, run_dir=tmp_path / "run", verbose=False)
    dashboard = Dashboard(trainer, frame_interval=0.1)
    try:
        dashboard.start_button.click()
        wait_for(lambda: trainer.running and dashboard.frame.value, 60, "the first frame")
        wait_for(lambda: dashboard.start_button.disabled and not dashboard.stop_button.disabled, 5, "the buttons")
        dashboard.record_button.click()
        wait_for(lambda: "recording" in dashboard.message.value, 5, "the recording message")
        wait_for(lambda: dashboard.gallery.options, 60, "the GIF in the gallery")
        assert dashboard.gallery_box.layout.display == "flex"
        # The dashboard's thread fills the options, then selects the new GIF, which loads its bytes.
        wait_for(lambda: bytes(dashboard.gif.value[:4]) == b"GIF8", 5, "the GIF's bytes in the image")
        assert Path(dashboard.gallery.value) == trainer.recordings[0]

        dashboard.save_button.click()
        wait_for(lambda: "saved" in dashboard.message.value, 30, "the save message")
        pids = list(trainer.process_ids().values())
        dashboard.stop_button.click()
        wait_for(lambda: "stopped; checkpoint" in dashboard.message.value, 60, "the stop message")
        assert not trainer.running
        # The status line is redrawn by the dashboard's thread, a moment after the stop finished.
        wait_for(lambda: "stopped" in dashboard.status.value, 10, "the status line to say stopped")
        assert len(pids) == 1 and not any(Path(f"/proc/{pid}").exists() for pid in pids)  # the worker, joined and reaped
        assert len(list((tmp_path / "run" / "checkpoints").glob("*.pt"))) == 2
    finally:
        dashboard.close()
        trainer.stop(save=False)


def test_a_reference_curve_is_drawn_beside_the_run_and_a_bad_file_is_refused(stopped_trainer: Trainer,
                                                                             tmp_path: Path) -> None:
    from a3c_core.curves import curve_from_evals, write_curve
    from a3c_core.plots import reward_figure

    records = [{"steps": 50 * i, "elapsed": 2.0 * i, "score": -5 + i, "reward": 0.0, "length": 45} for i in range(8)]
    path = write_curve(tmp_path / "ref-curve.csv", curve_from_evals(records, 1))
    dashboard = Dashboard(stopped_trainer, reference={"shipped": path})
    try:
        plain = Dashboard(stopped_trainer)
        assert dashboard.plot.value != plain.plot.value
        plain.close()
    finally:
        dashboard.close()
    fig = reward_figure(stopped_trainer.history, reference=dashboard.reference)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[0] == "shipped (mean of 10)" and "episode score" in labels
    reference_line = fig.axes[0].lines[0]
    assert list(reference_line.get_xdata()) == [50 * i for i in range(8)]  # frames: the whole reference
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a curve file"):
        Dashboard(stopped_trainer, reference={"bad": tmp_path / "bad.csv"})


def test_the_plot_follows_a_short_run_beside_a_long_reference_with_the_legend_off_the_data(
        stopped_trainer: Trainer) -> None:
    from a3c_core.curves import read_curve
    from a3c_core.plots import REFERENCE_MARGIN, reward_figure

    reference = {"pong fast": read_curve(Path(__file__).resolve().parents[1] / "data" / "pong-fast-curve.csv"),
                 "pong seed": read_curve(Path(__file__).resolve().parents[1] / "data" / "pong-seed-sticky-curve.csv")}
    assert min(curve["frames"][-1] for curve in reference.values()) > 1e6  # millions of frames
    fig = reward_figure(stopped_trainer.history, reference=reference)   # this run: 1,170 frames
    evaluator = fig.axes[0]
    run_end = 30 * 39
    assert evaluator.get_xlim() == (0, pytest.approx(run_end * (1 + REFERENCE_MARGIN)))
    lines = {line.get_label(): line for line in evaluator.lines}
    for label in ("pong fast (mean of 10)", "pong seed (mean of 10)"):
        xs = lines[label].get_xdata()
        assert len(xs) >= 1 and (xs[:-1] <= run_end * (1 + REFERENCE_MARGIN)).all()  # cut at the axis' end
    colours = [line.get_color() for line in evaluator.lines]
    assert len(set(colours[:2])) == 2 and "tab:blue" not in colours[:2]  # each reference its own colour
    fig.canvas.draw()
    legend, panel = evaluator.get_legend().get_window_extent(), evaluator.get_window_extent()
    assert legend.y1 <= panel.y0  # below the panel, not over the data


def test_the_losses_figure_draws_each_workers_terms_and_the_gradient_norm_against_its_clipping_line() -> None:
    from a3c_core.listeners import History
    from a3c_core.plots import LOSS_PANELS, figure_png, losses_figure

    history = History()
    history.losses.extend({"steps": 600 * i, "elapsed": 2.0 * i, "rank": i % 2, "policy_loss": 0.1 * i,
                           "value_loss": 1.0 / (i + 1), "entropy": 1.0, "grad_norm": 10.0 + i} for i in range(10))
    history.losses.append({"steps": 6000, "elapsed": 20.0, "rank": 0, "policy_loss": 0.0, "value_loss": 0.1,
                           "entropy": 0.9})  # a record of a run made before the norm was reported
    fig = losses_figure(history, max_grad_norm=40.0, frames_per_step=4)
    assert [axes.get_title() for axes in fig.axes] == [name for _, name in LOSS_PANELS]
    policy, norm = fig.axes[0], fig.axes[-1]
    assert [line.get_label() for line in policy.lines] == ["worker 0", "worker 1"]
    assert list(policy.lines[0].get_xdata()) == [0, 4800, 9600, 14400, 19200, 24000]  # frames: 4 per step
    worker0, _, clip_line = norm.lines
    assert list(worker0.get_ydata()) == [10.0, 12.0, 14.0, 16.0, 18.0]  # the old record left out
    assert list(clip_line.get_ydata()) == [40.0, 40.0] and clip_line.get_linestyle() == "--"
    assert clip_line.get_label() == "max_grad_norm = 40" and norm.get_yscale() == "log"
    assert figure_png(losses_figure(History(), max_grad_norm=40.0))[:4] == b"\x89PNG"  # nothing yet: still a PNG


class FakeRun:
    """Stands in for a Trainer in wait_while_training: stops after ``stop_after`` waits, or
    raises KeyboardInterrupt at wait number ``interrupt_at`` (as the kernel's ■ button does)."""

    def __init__(self, stop_after: int = 10**9, interrupt_at: int = 0):
        self.waits, self.stop_after, self.interrupt_at = 0, stop_after, interrupt_at

    @property
    def running(self) -> bool:
        return self.waits < self.stop_after

    def wait(self, timeout: float) -> bool:
        self.waits += 1
        if self.waits == self.interrupt_at:
            raise KeyboardInterrupt
        time.sleep(min(timeout, 0.01))
        return not self.running


def test_wait_while_training_ends_at_the_stop_the_condition_the_time_or_quietly_on_interrupt(capsys) -> None:
    from a3c_core.dashboard import wait_while_training

    run = FakeRun(stop_after=3)
    assert asyncio.run(wait_while_training(run)) is True and run.waits == 3
    run = FakeRun()
    assert asyncio.run(wait_while_training(run, until=lambda r: r.waits >= 5)) is False and run.waits == 5
    start = time.monotonic()
    assert asyncio.run(wait_while_training(FakeRun(), minutes=0.2 / 60)) is False
    assert time.monotonic() - start >= 0.2
    run = FakeRun(interrupt_at=4)
    assert asyncio.run(wait_while_training(run, minutes=1)) is False and run.waits == 4  # no KeyboardInterrupt escapes
    assert "stopped waiting" in capsys.readouterr().out

    async def interrupted_cell() -> bool:  # ipykernel's ■ on an awaiting cell: its task is cancelled
        waiting = asyncio.ensure_future(wait_while_training(FakeRun(), minutes=1))
        await asyncio.sleep(0.3)
        waiting.cancel()
        return await waiting

    assert asyncio.run(interrupted_cell()) is False  # the cell ends normally, no CancelledError
    assert "stopped waiting" in capsys.readouterr().out


#: Run in a real kernel: a button whose click stops a stand-in run, then a cell that awaits the run.
KERNEL_SETUP = """
import ipywidgets
from a3c_core.dashboard import wait_while_training

class Run:
    running = True
    def wait(self, timeout):
        return not self.running

run = Run()
button = ipywidgets.Button(description="Stop")
button.on_click(lambda _: setattr(run, "running", False))
print(button.model_id)
"""


def test_a_button_click_reaches_its_handler_while_a_cell_awaits_the_run() -> None:
    """The kernel hands a click to the button while ``await wait_while_training(...)`` holds the cell,
    so Stop answers during the wait (a blocking wait would keep the click queued until the cell ended)."""
    from jupyter_client.manager import start_new_kernel
    from lab import run_cell  # tests/lab.py

    manager, client = start_new_kernel(kernel_name="python3", cwd=str(Path(__file__).resolve().parents[1]))
    try:
        model_id = run_cell(client, KERNEL_SETUP).strip()
        click = client.session.msg("comm_msg", {"comm_id": model_id,
                                                "data": {"method": "custom", "content": {"event": "click"}}})
        waited = run_cell(client, "await wait_while_training(run, minutes=10)",
                             on_busy=lambda: client.shell_channel.send(click))
        assert waited.strip() == "True", "the click stopped the run and ended the wait, long before 10 minutes"
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
