"""Every knob of an A3C run in one dataclass, with two presets.

``A3CConfig()`` is the *seed* preset: the design of the student write-up this lab follows
(160x160 colour frames, 8 workers, 30-step rollouts), with one addition that made it learn: the
model centres each channel of its input (``center_input``). ``A3CConfig.preset("fast")`` trades
fidelity for speed on a laptop (grayscale, 80x80); ``A3CConfig.preset("catch")`` is the fast
preset tuned for the Catch warm-up game. Any field can be overridden:

>>> A3CConfig.preset("fast", game="space_invaders", workers=4).workers
4

A bad value raises ``ValueError`` naming the field, as soon as the config is built (and again at
every ``Trainer.start()``, in case a field was changed since): a value of the wrong type, a number
that is not finite, out of its range, or so large that it would exhaust the machine.

The fields fall in two groups. The *experiment* (the game, what the model sees, the model, A3C) is
saved with every checkpoint; of it, :data:`FIXED_ON_RESUME` cannot change when a run resumes, since
the saved model was built for them. The *operation* of a run (limits, checkpoints, pacing,
logging, the run folder) may change freely on resume.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Callable

from .preprocess import GAME_CROPS

#: Where the workers can run (:mod:`a3c_core.processes`, :mod:`a3c_core.ray_backend`).
BACKENDS = ("local", "ray")
#: Short game names and the Gymnasium ids they build (``catch`` is this package's pixel game).
GAMES: dict[str, str] = {
    "pong": "ALE/Pong-v5",
    "space_invaders": "ALE/SpaceInvaders-v5",
    "catch": "A3CLab/Catch-v0",
}
INF = math.inf


def knob(default: Any, help: str, *, within: tuple[float, float] | None = None, above: float | None = None,
         choices: tuple[Any, ...] = (), rule: Callable[[A3CConfig], str | None] | None = None) -> Any:
    """A config field: its default, its ``--help`` text and the values it may take, the one place that says
    so. Its type is its annotation (a float must also be finite); then ``within`` a closed range (sizes and
    counts bounded, so that a typo cannot ask for a million processes or a 100,000-pixel frame), ``above`` a
    bound it may not reach, one of ``choices``, or a ``rule``: a function of the whole config that says what
    is wrong, or None. :meth:`A3CConfig.validate` applies them."""
    return field(default=default, metadata={"help": help, "within": within, "above": above, "choices": choices,
                                            "rule": rule})


def _crop_rows(config: A3CConfig) -> str | None:
    """What is wrong with the crop rows, if anything: set together, in the frame, 16 rows at least."""
    top, bottom = config.crop_top, config.crop_bottom
    if (top is None) != (bottom is None):
        return "crop_top and crop_bottom are set together (or both left to the game's default)"
    if top is not None and not 0 <= top < bottom - 15 <= 210 - 15:
        return f"crop rows must satisfy 0 <= crop_top < crop_bottom <= 210 and keep 16 rows at least, got {top}..{bottom}"
    return None


def _host_port(config: A3CConfig) -> str | None:
    """What is wrong with ``ray_address``, if anything: empty, or HOST:PORT."""
    host, _, port = config.ray_address.rpartition(":")
    if config.ray_address and not (host and port.isdigit() and 0 < int(port) < 65536):
        return f"ray_address must be HOST:PORT (the address `ray start --head` prints), got {config.ray_address!r}"
    return None


@dataclass
class A3CConfig:
    """Hyperparameters and settings of one training run (defaults: the seed preset)."""

    # --- the game ---
    game: str = knob("pong", f"game to play: {', '.join(GAMES)}", choices=tuple(GAMES))
    frame_skip: int = knob(4, "emulator frames per agent step (the action repeats)", within=(1, 32))
    sticky_action_prob: float = knob(
        0.25, "training games: probability that the emulator repeats the previous action instead (0.25: ALE v5's "
        "default, Machado et al. 2018; 0: the write-up's deterministic Pong)", within=(0, 1))
    eval_sticky_action_prob: float = knob(
        0.25, "the evaluator's games: sticky-action probability (0.25, the field's protocol, makes every evaluation "
        "game a different one; 0 replays one deterministic game)", within=(0, 1))
    shaped_rewards: bool | None = knob(
        None, "Space Invaders reward shaping (+0.1 per alien hit, -1 per life lost); default: on for space_invaders, "
        "off otherwise")
    max_pool_frames: bool | None = knob(
        None, "show the model the pixel-wise max of the last two emulator frames of each step, so that objects drawn "
        "every other frame (Space Invaders' shots) are never invisible; default: on for space_invaders, off otherwise")
    max_episode_steps: int = knob(0, "cut episodes after this many agent steps (0: the game's own end)", within=(0, INF))

    # --- what the model sees ---
    crop_top: int | None = knob(None, "first row of the 210-row frame that the model sees (default: the game's, "
                                      "preprocess.GAME_CROPS: Pong 35, Space Invaders 20)")
    crop_bottom: int | None = knob(None, "the row after the last one the model sees (default: the game's, 195)",
                                   rule=_crop_rows)
    height: int = knob(160, "height of the resized state in pixels", within=(16, 1024))
    width: int = knob(160, "width of the resized state in pixels", within=(16, 1024))
    grayscale: bool = knob(False, "one channel per frame instead of three")
    frame_stack: int = knob(1, "how many latest states the model sees at once (1 or 4)", choices=(1, 4))

    # --- the model ---
    center_input: bool = knob(
        True, "the model first subtracts each channel's mean over the image, so the constant background reads 0 and "
        "the ball and paddles stand out (benchmarks/HISTORY.md, the ball probe)")
    hidden_size: int = knob(256, "size of the GRU's hidden state", within=(1, 8192))

    # --- A3C ---
    workers: int = knob(8, "training processes that update the shared model", within=(1, 256))
    games_per_worker: int = knob(1, "games each worker plays at once: one batched forward per step for all of them, "
                                    "one update for all their rollouts (notebook 04)", within=(1, 32))
    rollout_steps: int = knob(30, "agent steps of each game between two gradient updates of a worker",
                              within=(1, 100_000))
    gamma: float = knob(0.99, "discount factor", within=(0, 1))
    gae_lambda: float = knob(1.0, "GAE lambda; 1.0 gives the plain n-step advantage R - V", within=(0, 1))
    lr: float = knob(3e-4, "Adam learning rate of the shared optimizer (3e-4: every measured run in "
                           "benchmarks/HISTORY.md)", above=0)
    lr_anneal_steps: int = knob(0, "agent steps over which the learning rate falls linearly from lr to 0, as in the "
                                   "A3C paper (0: constant)", within=(0, INF))
    entropy_coef: float = knob(0.01, "weight of the entropy bonus", within=(0, INF))
    value_coef: float = knob(0.5, "weight of the value loss", within=(0, INF))
    max_grad_norm: float = knob(40.0, "clip each update's gradient to this global norm", above=0)
    seed: int = knob(0, "base random seed; worker i uses seed + i", within=(0, INF))

    # --- run control and reporting ---
    max_steps: int = knob(0, "stop after this many agent steps in all workers, counted from the run's start (a "
                             "resumed run included; 0: no limit)", within=(0, INF))
    max_minutes: float = knob(0.0, "stop after this many minutes of training, counted from the run's start (a "
                                   "resumed run included; 0: no limit)", within=(0, INF))
    checkpoint_minutes: float = knob(10.0, "minutes between periodic checkpoints", above=0)
    keep_checkpoints: int = knob(3, "how many periodic checkpoints to keep", within=(1, 1000))
    eval_steps_per_second: float = knob(
        30.0, "pace of the greedy evaluator, so that it leaves the cores to the workers and plays at a speed a person "
        "can watch (0: as fast as it can)", within=(0, INF))
    eval_frame_every: int = knob(2, "the evaluator sends every N-th frame for display (0: none)", within=(0, INF))
    snapshot_minutes: float = knob(
        30.0, "save a GIF of the evaluator's next episode after this many training minutes, then at every doubling "
        "(30, 60, 120 ... min), under gifs/ in the run folder (0: none)", within=(0, INF))
    wandb: bool = knob(False, "also log to Weights & Biases, offline, under the run folder (needs the wandb package)")
    restart_crashed: bool = knob(True, "restart a worker process that crashed")
    run_dir: str = knob("runs", "folder under which each run gets its own folder")
    backend: str = knob("local", "where the workers run: 'local' (processes sharing the model's memory on this "
                                 "machine) or 'ray' (Ray actors around a parameter server, on a Ray cluster; "
                                 "notebook 09)", choices=BACKENDS)
    ray_address: str = knob("", "the Ray cluster to join with backend 'ray', as HOST:PORT (empty: start a private "
                                "Ray on this machine for the run)", rule=_host_port)

    def __post_init__(self) -> None:
        self.validate()

    # ----------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field whose value cannot work (see :func:`knob`)."""
        for f in dataclasses.fields(self):
            problem = _problem(f.name, getattr(self, f.name), _FIELD_TYPES[f.name], f.metadata)
            if problem or (f.metadata["rule"] and (problem := f.metadata["rule"](self))):
                raise ValueError(problem)

    # ----------------------------------------------------------------------------------------
    @property
    def env_id(self) -> str:
        """The Gymnasium id of ``game``."""
        return GAMES[self.game]

    @property
    def use_shaped_rewards(self) -> bool:
        """Whether the Space Invaders reward shaping is applied (see ``shaped_rewards``)."""
        if self.shaped_rewards is None:
            return self.game == "space_invaders"
        return bool(self.shaped_rewards) and self.game == "space_invaders"

    @property
    def crop_rows(self) -> tuple[int, int]:
        """The rows ``(top, bottom)`` the model sees: ``crop_top``/``crop_bottom``, or the game's own."""
        if self.crop_top is None:
            return GAME_CROPS[self.game]
        return (self.crop_top, self.crop_bottom)

    @property
    def use_max_pool(self) -> bool:
        """Whether observations are the max of the last two emulator frames (see ``max_pool_frames``)."""
        if self.max_pool_frames is None:
            return self.game == "space_invaders"
        return bool(self.max_pool_frames) and self.game != "catch"

    def lr_at(self, steps: int) -> float:
        """The learning rate after ``steps`` agent steps: ``lr``, or with ``lr_anneal_steps`` falling
        linearly to 0 at that many steps (and 0 after)."""
        if not self.lr_anneal_steps:
            return self.lr
        return self.lr * max(0.0, 1.0 - steps / self.lr_anneal_steps)

    @property
    def frames_per_step(self) -> int:
        """Emulator frames per agent step: ``frame_skip`` for the Atari games, 1 for Catch."""
        return 1 if self.game == "catch" else self.frame_skip

    @property
    def in_channels(self) -> int:
        """Channels of one model input: (1 or 3) x frame_stack."""
        return (1 if self.grayscale else 3) * self.frame_stack

    @property
    def state_shape(self) -> tuple[int, int, int]:
        """Shape of one model input ``(C, H, W)``."""
        return (self.in_channels, self.height, self.width)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (JSON- and checkpoint-safe)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "A3CConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` naming them (older checkpoints'
        configs are brought up to date by :data:`a3c_core.checkpoint.MIGRATIONS` first)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(unknown)}")
        return cls(**values)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "A3CConfig":
        """A named preset (``"seed"`` or ``"fast"``) with ``overrides`` applied on top."""
        if name not in PRESETS:
            raise ValueError(f"preset={name!r} is unknown; choose one of: {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    def replace(self, **overrides: Any) -> "A3CConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **overrides)

    def resumed(self, **overrides: Any) -> "A3CConfig":
        """This (saved) config with the changes of a resumed run; :data:`FIXED_ON_RESUME` raise ``ValueError``."""
        for name in FIXED_ON_RESUME:
            if name in overrides and overrides[name] != getattr(self, name):
                raise ValueError(f"{name} cannot change when a run resumes (its model was built for "
                                 f"{name}={getattr(self, name)!r}): start a new run instead")
        return A3CConfig.from_dict({**self.to_dict(), **overrides})


#: Each field's type, as the annotations say (``int``, ``float``, ``bool``, ``bool | None``, ``str``).
_FIELD_TYPES: dict[str, Any] = typing.get_type_hints(A3CConfig)
#: The fields that cannot change when a run resumes: the game and the shape of the model.
FIXED_ON_RESUME = ("game", "height", "width", "grayscale", "frame_stack", "center_input", "hidden_size")
def _problem(name: str, value: Any, kind: Any, allowed: dict[str, Any]) -> str | None:
    """What is wrong with ``value`` as field ``name`` of type ``kind`` with the values ``allowed`` by its
    :func:`knob`, or None."""
    if kind == (int | None) and value is None:
        return None
    if kind is bool or kind == (bool | None):
        ok = isinstance(value, bool) or (value is None and kind != bool)
        expected = "True or False" + (" (or None: the game's default)" if kind != bool else "")
    elif kind in (int, int | None):
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        expected = "a finite number"
    else:
        ok, expected = isinstance(value, kind), f"a {kind.__name__}"
    if not ok:
        return f"{name} must be {expected}, got {value!r}"
    if allowed["choices"] and value not in allowed["choices"]:
        return f"{name}={value!r} is not supported; choose one of: {', '.join(map(str, allowed['choices']))}"
    if allowed["above"] is not None and not value > allowed["above"]:
        return f"{name} must be > {allowed['above']:g}, got {value!r}"
    low, high = allowed["within"] or (-INF, INF)
    if allowed["within"] and not low <= value <= high:
        return f"{name} must be {f'>= {low:g}' if high == INF else f'between {low:,} and {high:,}'}, got {value!r}"
    return None


_FAST = {"grayscale": True, "height": 80, "width": 80, "hidden_size": 256, "workers": 2}

#: Presets as field overrides of the defaults. "seed" is the write-up's design with a centred input.
#: "fast" is 80x80 grayscale with 2 workers, centred too: on deterministic Pong the centred fast preset
#: solved it in 802k and 600k agent steps against 901k and not-yet-at-1.57M uncentred, same seeds
#: (benchmarks/HISTORY.md, "Centring the fast preset"). "catch" is the warm-up game, with a stronger
#: entropy bonus (0.03: with 0.01 the policy often turned deterministic before it had learned, 40k-132k
#: steps to a mean of +3 against 27k-40k) and a learning rate of 5e-4: with 1e-3, three 100k-step runs
#: of six learned Catch and then fell back to random play; with 5e-4, nine of nine learned it (a mean
#: of 5 of +2 at 29k-43k steps) and stayed there (benchmarks/HISTORY.md, Catch).
PRESETS: dict[str, dict[str, Any]] = {
    "seed": {},
    "fast": _FAST,
    "catch": {**_FAST, "game": "catch", "workers": 2, "lr": 5e-4, "entropy_coef": 0.03},
}
