"""Watch and steer a training run from a notebook (notebook 05): live game, reward curves, controls.

::

    trainer = Trainer(A3CConfig.preset("fast", game="catch", workers=2, lr=1e-3)).start()
    Dashboard(trainer)        # the cell's last line: shows the widgets; the kernel stays free

**How the widgets are updated.** One daemon thread per dashboard (:meth:`Dashboard._refresh_loop`)
wakes a few times a second, reads what the trainer's reader thread gathered (``latest_frame``,
``history``, ``status()``) and *only sets widget values* (PNG bytes, HTML text): it never displays or
prints, since output captured from a thread is unreliable in ipykernel 7, while setting a value is a
comm message that ipykernel sends from any thread. A thread, not an asyncio task: a task runs only
while the kernel is idle, so a long cell would freeze the view (both measured in a browser).

Button clicks are comm messages: the kernel handles them between cells and while a cell *awaits*
(ipykernel 7.4+), not while a cell blocks. So :func:`wait_while_training` is a coroutine (``await
wait_while_training(trainer)``) and Stop answers at once; the handlers hand the slow work to a
short-lived thread, so the kernel stays free.
"""

from __future__ import annotations

import asyncio
import html
import os
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import ipywidgets as widgets

from .curves import read_curve
from .plots import figure_png, image_png, reward_figure, state_image
from .preprocess import preprocess
from .trainer import Trainer

#: Seconds between two refreshes of the game frame (about 4 per second).
FRAME_INTERVAL = 0.25
#: Seconds between two redraws of the reward plot (only if new episodes arrived).
PLOT_INTERVAL = 3.0
#: The plot's share of one core at most: a redraw that took 0.3 s of CPU waits at least 10 s for the
#: next (matplotlib takes that long for a plot of many episodes, and on a server shared by a class
#: every student's kernel redraws).
PLOT_CPU_SHARE = 0.03
#: Width in pixels of the frame on screen.
FRAME_WIDTH = 320

#: The open dashboard of each trainer: a new one replaces the old (re-running the cell).
_OPEN: dict[int, "Dashboard"] = {}


def format_duration(seconds: float) -> str:
    """``3725`` -> ``"1:02:05"``."""
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


#: How the status line shows each of :meth:`Trainer.status`'s states.
STATES: dict[str, str] = {
    "starting": '<b style="color:#b57b00">&#9679; starting</b> (spawning the processes; no report from them yet)',
    "running": '<b style="color:#2a7d2a">&#9679; running</b>',
    "stopped": '<b style="color:#888">&#9632; stopped</b>',
}


def status_line(status: dict[str, Any]) -> str:
    """One line of HTML from :meth:`Trainer.status`: state, frames, frames/s, time, rewards, crashes.
    While the run is ``"starting"`` the counters are all 0, so only the state is shown."""
    if status["state"] == "starting":
        return STATES["starting"]
    parts = [STATES[status["state"]], f"{status['frames']:,} frames", f"{status['frames_per_second']:,.0f} frames/s",
             f"{format_duration(status['elapsed'])} of training"]
    if status["eval_latest"] is None:
        parts.append("evaluator: no episode finished yet")
    else:
        parts.append(f"evaluator: last {status['eval_latest']:g}, mean of 10 {status['eval_mean10']:.2f} "
                     f"({status['eval_episodes']} episodes)")
    if status["workers"]:
        means = ", ".join(f"{rank}: {w['mean10']:.2f}" for rank, w in status["workers"].items())
        parts.append(f"workers ({status['episodes']} episodes, mean of 10) {means}")
    if status["errors"]:
        parts.append(f'<b style="color:#b00">{status["errors"]} crash(es), {status["restarts"]} restart(s)</b>')
    return " &middot; ".join(parts)


async def wait_while_training(trainer: Trainer, minutes: float | None = None,
                              until: Callable[[Trainer], bool] | None = None) -> bool:
    """Hold a notebook cell while the run trains: until it stops (by itself, a Stop, or ``stop()``; its
    checkpoint is then written), until ``until(trainer)`` is true, or for at most ``minutes``.

    A coroutine: ``await wait_while_training(trainer)`` in a cell. While it awaits, the kernel still
    handles the dashboard's buttons (a blocking wait would hold a Stop click until the cell ended).
    Interrupting the kernel (the ■ button) ends only the wait, quietly, so *Run All* goes on with the
    next cell; the run is not stopped by it. Returns whether the run has stopped.
    """
    deadline = float("inf") if minutes is None else time.monotonic() + 60 * minutes
    try:
        while not trainer.wait(timeout=0) and not (until is not None and until(trainer)):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await asyncio.sleep(min(0.25, left))
    except (KeyboardInterrupt, asyncio.CancelledError):  # ipykernel turns the ■ button into a cancellation
        task = asyncio.current_task()
        if task is not None and hasattr(task, "uncancel"):
            task.uncancel()  # the interrupt is handled here: the cell ends normally
        print("stopped waiting; the run was still training (Stop, or trainer.stop(), ends it)")
    return not trainer.running


def _close_tree(widget: widgets.Widget) -> None:
    """Close ``widget`` and every widget inside it."""
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()


class Dashboard:
    """The live view and the controls of one :class:`Trainer`.

    Shows the evaluator's game (the raw ``(210, 160, 3)`` frame, or the state the model sees), the
    reward curves against frames or minutes, a status line, crashes with their tracebacks and the
    recorded GIFs; buttons start, stop, save a checkpoint and record the evaluator's next episode. A
    run that already trained (or came from :meth:`Trainer.from_checkpoint`) shows its history so far.

    Args:
        trainer: the run to watch.
        frame_interval, plot_interval: seconds between frame refreshes, and between plot redraws (only
            when new episodes arrived).
        reference: label -> curve CSV (for example ``{"shipped agent": "data/pong-fast-curve.csv"}``)
            to draw beside this run's evaluator curve.
    """

    def __init__(self, trainer: Trainer, frame_interval: float = FRAME_INTERVAL,
                 plot_interval: float = PLOT_INTERVAL, reference: dict[str, str | os.PathLike] | None = None):
        self.trainer = trainer
        self.reference = {label: read_curve(path) for label, path in (reference or {}).items()}
        self.frame_interval = frame_interval
        self.plot_interval = plot_interval
        config = trainer.config

        self.status = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.frame = widgets.Image(format="png", layout=widgets.Layout(width=f"{FRAME_WIDTH}px",
                                                                        min_width=f"{FRAME_WIDTH}px"))
        self.view = widgets.ToggleButtons(options=[("game", "game"), ("model input", "state")], value="game",
                                          style={"button_width": "100px"},
                                          tooltips=["the raw Atari frame", "the cropped, resized state the model sees"])
        self.plot = widgets.Image(format="png", layout=widgets.Layout(width="720px", min_width="480px"))
        self.x_axis = widgets.ToggleButtons(options=[("frames", "frames"), ("wall time", "minutes")], value="frames",
                                            style={"button_width": "100px"})
        self.start_button = widgets.Button(description="Start", icon="play", button_style="success")
        self.stop_button = widgets.Button(description="Stop", icon="stop", button_style="danger")
        self.save_button = widgets.Button(description="Save checkpoint", icon="save")
        self.record_button = widgets.Button(description="Record GIF", icon="video-camera",
                                            tooltip="save the evaluator's next episode as a GIF")
        self.message, self.errors = widgets.HTML(), widgets.HTML()
        self.gallery = widgets.Dropdown(description="GIFs", options=[], layout=widgets.Layout(width="420px"))
        self.gif = widgets.Image(format="gif", layout=widgets.Layout(width=f"{FRAME_WIDTH}px"))

        self.start_button.on_click(lambda _: self._act("starting ...", self.trainer.start, lambda _: "started"))
        self.stop_button.on_click(lambda _: self._act("stopping (the workers finish their update) ...",
                                                      self.trainer.stop, lambda path: f"stopped; checkpoint {path}"))
        self.save_button.on_click(lambda _: self._act("saving ...", self.trainer.save, lambda path: f"saved {path}"))
        self.record_button.on_click(lambda _: self._act(
            "", self.trainer.record_next_episode,
            lambda _: "recording the evaluator's next episode; the GIF appears below when it ends"))
        self.view.observe(lambda _: self.refresh(force=True), names="value")
        self.x_axis.observe(lambda _: self.refresh(force=True), names="value")
        self.gallery.observe(lambda change: self._show_gif(change["new"]), names="value")

        for widget, name in ((self.status, "status"), (self.frame, "frame"), (self.plot, "plot"),
                             (self.message, "message"), (self.stop_button, "stop"), (self.start_button, "start"),
                             (self.record_button, "record"), (self.gif, "gif")):
            widget.add_class(f"a3c-{name}")  # stable handles for the browser test and for custom CSS
        self.gallery_box = widgets.VBox([self.gallery, self.gif], layout=widgets.Layout(display="none"))
        controls = widgets.HBox([self.start_button, self.stop_button, self.save_button, self.record_button])
        views = widgets.HBox([widgets.VBox([self.view, self.frame]), widgets.VBox([self.x_axis, self.plot])],
                             layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start"))
        self.widget = widgets.VBox([widgets.HTML(f"<b>A3C on {config.game}</b>: {config.workers} workers, run folder "
                                                 f"<code>{html.escape(str(trainer.run_dir))}</code>"),
                                    self.status, controls, self.message, views, self.errors, self.gallery_box])

        self._shown_frame: Any = None
        self._plotted, self._plotted_at, self._plot_cost = (), 0.0, 0.0
        self._gif_paths: list[Path] = []
        self._shown_errors = -1
        self._closed = threading.Event()
        self._lock = threading.Lock()  # the refresh thread, button threads and the kernel all refresh
        previous = _OPEN.get(id(trainer))
        if previous is not None:
            previous.close()
        _OPEN[id(trainer)] = self
        self.refresh(force=True)
        self._thread = threading.Thread(target=self._refresh_loop, name="a3c-dashboard", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------------------------ display
    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        return self.widget._repr_mimebundle_(**kwargs)

    def close(self) -> None:
        """Stop refreshing and remove the widgets (the training goes on)."""
        self._closed.set()
        if _OPEN.get(id(self.trainer)) is self:
            del _OPEN[id(self.trainer)]
        with self._lock:
            _close_tree(self.widget)

    # ------------------------------------------------------------------------------------ updates
    def _refresh_loop(self) -> None:
        """The one place where widgets change in the background: sets values, never displays."""
        while not self._closed.wait(self.frame_interval):
            try:
                self.refresh()
                if self._closed.is_set():
                    return
            except Exception:  # show it and keep going: a drawing glitch must not end the live view
                self.message.value = f"<pre>dashboard error:\n{html.escape(traceback.format_exc())}</pre>"

    def refresh(self, force: bool = False) -> None:
        """Bring every widget up to date: the frame if a new one came, the plot at most every
        ``plot_interval`` seconds and only if new episodes came (``force``: both at once)."""
        with self._lock:
            status = self.trainer.status()
            self.status.value = status_line(status)
            running = status["running"]
            self.start_button.disabled, self.stop_button.disabled = running, not running
            self.record_button.disabled = not running or not self.trainer.config.eval_frame_every
            self._show_frame(force)
            self._show_plot(force)
            self._show_errors()
            self._update_gallery()

    def _show_frame(self, force: bool = False) -> None:
        record = self.trainer.latest_frame
        if record is None or (record is self._shown_frame and not force):
            return
        self._shown_frame = record
        frame = record["frame"]
        if self.view.value == "state":
            config = self.trainer.config
            state = preprocess(frame, config.height, config.width, config.grayscale, config.crop_rows)
            image = state_image(state, config.grayscale)
        else:
            image = frame
        self.frame.value = image_png(image, scale=max(1, round(FRAME_WIDTH / image.shape[1])))

    def _show_plot(self, force: bool = False) -> None:
        history = self.trainer.history
        key = (len(history.evals), len(history.episodes), self.x_axis.value)
        now = time.monotonic()
        pause = max(self.plot_interval, self._plot_cost / PLOT_CPU_SHARE)  # at most PLOT_CPU_SHARE of a core
        if not force and (key == self._plotted or now - self._plotted_at < pause):
            return
        started = time.thread_time()
        self._plotted, self._plotted_at = key, now
        self.plot.value = figure_png(reward_figure(history, x=self.x_axis.value,
                                                   frames_per_step=self.trainer.config.frames_per_step,
                                                   reference=self.reference))
        self._plot_cost = time.thread_time() - started

    def _show_errors(self) -> None:
        errors = self.trainer.history.errors
        if len(errors) == self._shown_errors:
            return
        self._shown_errors = len(errors)
        self.errors.value = "".join(
            f'<details><summary style="color:#b00">{html.escape(e["source"])} crashed at '
            f'{format_duration(e["elapsed"])}: {html.escape(e["error"].strip().splitlines()[-1])}</summary>'
            f'<pre style="font-size:11px">{html.escape(e["error"])}</pre></details>'
            for e in errors[-5:])

    def _update_gallery(self) -> None:
        paths = self.trainer.folder.gifs()
        if paths == self._gif_paths:
            return
        new = [path for path in paths if path not in self._gif_paths]
        self._gif_paths = paths
        self.gallery_box.layout.display = "flex" if paths else "none"
        self.gallery.options = [(path.stem, str(path)) for path in paths]
        self.gallery.value = str(new[-1] if new else paths[-1]) if paths else None

    def _show_gif(self, path: str | None) -> None:
        self.gif.value = Path(path).read_bytes() if path else b""

    # ------------------------------------------------------------------------------------ controls
    def _act(self, busy: str, action: Callable[[], Any], done: Callable[[Any], str]) -> None:
        """Run a button's ``action`` in a short thread; show ``busy``, then ``done(result)`` or the error."""
        def run() -> None:
            try:
                self.message.value = html.escape(done(action()))
            except Exception as error:
                self.message.value = f'<span style="color:#b00">{html.escape(str(error))}</span>'
            self.refresh()

        self.message.value = html.escape(busy)
        threading.Thread(target=run, name="a3c-dashboard-action", daemon=True).start()
