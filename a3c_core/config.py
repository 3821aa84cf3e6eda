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
from typing import Any

from .preprocess import GAME_CROPS

#: Where the workers can run (:mod:`a3c_core.processes`, :mod:`a3c_core.ray_backend`).
BACKENDS = ("local", "ray")
#: Short game names and the Gymnasium ids they build (``catch`` is this package's pixel game).
GAMES: dict[str, str] = {
    "pong": "ALE/Pong-v5",
    "space_invaders": "ALE/SpaceInvaders-v5",
    "catch": "A3CLab/Catch-v0",
}


@dataclass
class A3CConfig:
    """Hyperparameters and settings of one training run (defaults: the seed preset)."""

    # --- the game ---
    game: str = field(default="pong", metadata={"help": f"game to play: {', '.join(GAMES)}"})
    frame_skip: int = field(default=4, metadata={"help": "emulator frames per agent step (the action repeats)"})
    sticky_action_prob: float = field(
        default=0.25,
        metadata={"help": "training games: probability that the emulator repeats the previous action instead "
                          "(0.25: ALE v5's default, Machado et al. 2018; 0: the write-up's deterministic Pong)"})
    eval_sticky_action_prob: float = field(
        default=0.25,
        metadata={"help": "the evaluator's games: sticky-action probability (0.25, the field's protocol, makes "
                          "every evaluation game a different one; 0 replays one deterministic game)"})
    shaped_rewards: bool | None = field(
        default=None,
        metadata={"help": "Space Invaders reward shaping (+0.1 per alien hit, -1 per life lost); "
                          "default: on for space_invaders, off otherwise"})
    max_pool_frames: bool | None = field(
        default=None,
        metadata={"help": "show the model the pixel-wise max of the last two emulator frames of each step, so that "
                          "objects drawn every other frame (Space Invaders' shots) are never invisible; default: on "
                          "for space_invaders, off otherwise"})
    max_episode_steps: int = field(default=0, metadata={"help": "cut episodes after this many agent steps (0: the game's own end)"})

    # --- what the model sees ---
    crop_top: int | None = field(
        default=None,
        metadata={"help": "first row of the 210-row frame that the model sees (default: the game's, "
                          "preprocess.GAME_CROPS: Pong 35, Space Invaders 20)"})
    crop_bottom: int | None = field(
        default=None, metadata={"help": "the row after the last one the model sees (default: the game's, 195)"})
    height: int = field(default=160, metadata={"help": "height of the resized state in pixels"})
    width: int = field(default=160, metadata={"help": "width of the resized state in pixels"})
    grayscale: bool = field(default=False, metadata={"help": "one channel per frame instead of three"})
    frame_stack: int = field(default=1, metadata={"help": "how many latest states the model sees at once (1 or 4)"})

    # --- the model ---
    center_input: bool = field(
        default=True,
        metadata={"help": "the model first subtracts each channel's mean over the image, so the constant "
                          "background reads 0 and the ball and paddles stand out (benchmarks/HISTORY.md, the ball probe)"})
    hidden_size: int = field(default=256, metadata={"help": "size of the GRU's hidden state"})

    # --- A3C ---
    workers: int = field(default=8, metadata={"help": "training processes that update the shared model"})
    rollout_steps: int = field(default=30, metadata={"help": "agent steps between two gradient updates of a worker"})
    gamma: float = field(default=0.99, metadata={"help": "discount factor"})
    gae_lambda: float = field(default=1.0, metadata={"help": "GAE lambda; 1.0 gives the plain n-step advantage R - V"})
    lr: float = field(default=3e-4, metadata={"help": "Adam learning rate of the shared optimizer (3e-4: every "
                                                      "measured run in benchmarks/HISTORY.md)"})
    lr_anneal_steps: int = field(default=0, metadata={"help": "agent steps over which the learning rate falls "
                                                               "linearly from lr to 0, as in the A3C paper (0: constant)"})
    entropy_coef: float = field(default=0.01, metadata={"help": "weight of the entropy bonus"})
    value_coef: float = field(default=0.5, metadata={"help": "weight of the value loss"})
    max_grad_norm: float = field(default=40.0, metadata={"help": "clip each update's gradient to this global norm"})
    seed: int = field(default=0, metadata={"help": "base random seed; worker i uses seed + i"})

    # --- run control and reporting ---
    max_steps: int = field(
        default=0,
        metadata={"help": "stop after this many agent steps in all workers, counted from the run's start (a "
                          "resumed run included; 0: no limit)"})
    max_minutes: float = field(
        default=0.0,
        metadata={"help": "stop after this many minutes of training, counted from the run's start (a resumed run "
                          "included; 0: no limit)"})
    checkpoint_minutes: float = field(default=10.0, metadata={"help": "minutes between periodic checkpoints"})
    keep_checkpoints: int = field(default=3, metadata={"help": "how many periodic checkpoints to keep"})
    eval_steps_per_second: float = field(
        default=30.0,
        metadata={"help": "pace of the greedy evaluator, so that it leaves the cores to the workers and plays at "
                          "a speed a person can watch (0: as fast as it can)"})
    eval_frame_every: int = field(default=2, metadata={"help": "the evaluator sends every N-th frame for display (0: none)"})
    snapshot_minutes: float = field(
        default=30.0,
        metadata={"help": "save a GIF of the evaluator's next episode after this many training minutes, then at "
                          "every doubling (30, 60, 120 ... min), under gifs/ in the run folder (0: none)"})
    wandb: bool = field(default=False, metadata={"help": "also log to Weights & Biases, offline, under the run "
                                                          "folder (needs the wandb package)"})
    restart_crashed: bool = field(default=True, metadata={"help": "restart a worker process that crashed"})
    run_dir: str = field(default="runs", metadata={"help": "folder under which each run gets its own folder"})
    backend: str = field(
        default="local",
        metadata={"help": "where the workers run: 'local' (processes sharing the model's memory on this machine) "
                          "or 'ray' (Ray actors around a parameter server, on a Ray cluster; notebook 09)"})
    ray_address: str = field(
        default="",
        metadata={"help": "the Ray cluster to join with backend 'ray', as HOST:PORT (empty: start a private Ray "
                          "on this machine for the run)"})

    def __post_init__(self) -> None:
        self.validate()

    # ----------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field whose value cannot work."""
        for f in dataclasses.fields(self):
            _check_type(f.name, getattr(self, f.name), _FIELD_TYPES[f.name])
        for name, (low, high) in BOUNDS.items():
            value = getattr(self, name)
            if not (low < value if name in ABOVE_ZERO else low <= value) or value > high:
                raise ValueError(f"{name} must be {_bounds_text(name, low, high)}, got {value!r}")
        if self.game not in GAMES:
            raise ValueError(f"game={self.game!r} is not supported; choose one of: {', '.join(GAMES)}")
        if (self.crop_top is None) != (self.crop_bottom is None):
            raise ValueError("crop_top and crop_bottom are set together (or both left to the game's default)")
        if self.crop_top is not None and not 0 <= self.crop_top < self.crop_bottom - 15 <= 210 - 15:
            raise ValueError(f"crop rows must satisfy 0 <= crop_top < crop_bottom <= 210 and keep 16 rows at least, "
                             f"got {self.crop_top}..{self.crop_bottom}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend={self.backend!r} is not supported; choose one of: {', '.join(BACKENDS)}")
        host, _, port = self.ray_address.rpartition(":")
        if self.ray_address and not (host and port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"ray_address must be HOST:PORT (the address `ray start --head` prints), "
                             f"got {self.ray_address!r}")
        if self.frame_stack not in (1, 4):
            raise ValueError(f"frame_stack must be 1 or 4, got {self.frame_stack!r}")

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
#: The numbers each field may take, ``(lowest, highest)``: sizes and counts bounded so that a typo
#: cannot ask for a million processes or a 100,000-pixel frame (the Atari frame itself is 210x160),
#: probabilities and discounts in 0..1, the rest at least 0.
BOUNDS: dict[str, tuple[float, float]] = {
    "frame_skip": (1, 32), "height": (16, 1024), "width": (16, 1024), "hidden_size": (1, 8192),
    "workers": (1, 256), "rollout_steps": (1, 100_000), "keep_checkpoints": (1, 1000),
    **dict.fromkeys(("sticky_action_prob", "eval_sticky_action_prob", "gamma", "gae_lambda"), (0, 1)),
    **dict.fromkeys(("lr", "max_grad_norm", "checkpoint_minutes", "entropy_coef", "value_coef", "max_steps",
                     "max_minutes", "max_episode_steps", "seed", "lr_anneal_steps", "eval_frame_every",
                     "eval_steps_per_second", "snapshot_minutes"), (0, math.inf)),
}
#: Fields of :data:`BOUNDS` whose lowest value itself cannot work: they must lie above it.
ABOVE_ZERO = ("lr", "max_grad_norm", "checkpoint_minutes")


def _bounds_text(name: str, low: float, high: float) -> str:
    """How :data:`BOUNDS` says a field's range: "between 1 and 256", ">= 0", "> 0"."""
    if high == math.inf:
        return f"{'>' if name in ABOVE_ZERO else '>='} {low:g}"
    return f"between {low:,} and {high:,}"


def _check_type(name: str, value: Any, kind: Any) -> None:
    """``ValueError`` naming ``name`` unless ``value`` fits ``kind`` (floats must also be finite)."""
    if kind == (int | None):
        if value is None:
            return
        kind = int
    if kind is bool or kind == (bool | None):
        ok = isinstance(value, bool) or (value is None and kind != bool)
        expected = "True or False" + (" (or None: the game's default)" if kind != bool else "")
    elif kind is int:
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        expected = "a finite number"
    else:
        ok, expected = isinstance(value, kind), f"a {kind.__name__}"
    if not ok:
        raise ValueError(f"{name} must be {expected}, got {value!r}")


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
