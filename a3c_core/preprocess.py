"""From an Atari frame to the state the model sees (notebook 01).

An Atari frame is a ``(210, 160, 3)`` uint8 RGB image. The state is made in four pure steps:

1. :func:`crop` keeps the rows of the game's play area, ``frame[top:bottom]`` with ``(top, bottom)``
   from :data:`GAME_CROPS`: Pong keeps rows 35..194 (the score bar on top and the border at the
   bottom say nothing about where the ball is going); Space Invaders keeps rows 20..194, because
   its top row of aliens starts at row 31 (notebook 01 measures both on real frames).
2. :func:`normalize` maps 0..255 to 0..1 as float32.
3. :func:`resize` brings the crop (``(160, 160)`` for Pong, ``(175, 160)`` for Space Invaders) to
   the configured ``(H, W)`` (160x160 in the seed preset, 80x80 in the fast one), optionally in
   grayscale.
4. :func:`to_channels_first` turns ``(H, W, C)`` into ``(C, H, W)``, the layout of ``nn.Conv2d``.

:func:`preprocess` chains them; :class:`PreprocessObservation` applies it inside a Gymnasium
environment. The 4-frame queue is Gymnasium's own ``FrameStackObservation`` (see ``envs.py``).
"""

from __future__ import annotations

import cv2
import gymnasium as gym
import numpy as np

#: Shape of a raw Atari frame ``(H, W, RGB)``.
FRAME_SHAPE: tuple[int, int, int] = (210, 160, 3)
#: The rows each game keeps, ``(top, bottom)``: ``frame[top:bottom]``, chosen from real frames
#: (:data:`GAME_COLOURS` and :func:`row_spans` measure them; notebook 01 shows it). Pong: score in
#: rows 1..20, top wall 24..33, field 34..193, bottom wall from 194. Space Invaders: the score, and
#: the mothership in the same rows 12..19, in rows 10..19; the aliens from row 31 down; the cannon in
#: rows 185..194; the ground from 195. Catch is drawn with Pong's layout (``games/catch.py``).
GAME_CROPS: dict[str, tuple[int, int]] = {
    "pong": (35, 195),
    "space_invaders": (20, 195),
    "catch": (35, 195),
}
#: RGB colours of what is on the screen, to find each thing's rows with :func:`row_spans`.
GAME_COLOURS: dict[str, dict[str, tuple[int, int, int]]] = {
    "pong": {"walls and ball": (236, 236, 236), "our paddle, our score": (92, 186, 92),
             "opponent's paddle and score": (213, 130, 74)},
    "space_invaders": {"left score": (50, 132, 50), "mothership": (151, 25, 122), "aliens": (134, 134, 29),
                       "shields": (181, 83, 40), "cannon, right score": (162, 134, 56), "ground": (80, 89, 22)},
}
CROP_TOP, CROP_BOTTOM = GAME_CROPS["pong"]


def check_frame(frame: np.ndarray) -> None:
    """Raise ``ValueError`` naming ``frame`` unless it is a ``(210, 160, 3)`` uint8 image."""
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"frame must be a numpy array of shape {FRAME_SHAPE}, got {type(frame).__name__}")
    if frame.shape != FRAME_SHAPE:
        raise ValueError(f"frame must have shape {FRAME_SHAPE} (rows, columns, RGB), got {frame.shape}")
    if frame.dtype != np.uint8:
        raise ValueError(f"frame must be uint8 (0..255), got dtype {frame.dtype}")


def crop(frame: np.ndarray, top: int = CROP_TOP, bottom: int = CROP_BOTTOM) -> np.ndarray:
    """Rows ``top..bottom-1`` of a ``(210, 160, 3)`` frame: ``(bottom - top, 160, 3)``, same dtype."""
    check_frame(frame)
    if not 0 <= top < bottom <= FRAME_SHAPE[0]:
        raise ValueError(f"crop rows must satisfy 0 <= top < bottom <= 210, got top={top}, bottom={bottom}")
    return frame[top:bottom]


def row_spans(frame: np.ndarray, colour: tuple[int, int, int]) -> list[tuple[int, int]]:
    """The runs of consecutive rows of a ``(210, 160, 3)`` frame that hold ``colour`` somewhere:
    ``[(first, last), ...]`` top to bottom, inclusive (``[]`` if the colour is not on screen)."""
    check_frame(frame)
    rows = np.flatnonzero((frame == np.asarray(colour, np.uint8)).all(axis=2).any(axis=1))
    breaks = np.flatnonzero(np.diff(rows) > 1)
    firsts, lasts = np.r_[rows[:1], rows[breaks + 1]], np.r_[rows[breaks], rows[-1:]]
    return [(int(first), int(last)) for first, last in zip(firsts, lasts)]


def check_image(image: np.ndarray, what: str) -> None:
    """Raise ``ValueError`` naming ``what`` unless ``image`` is a non-empty ``(h, w, 3)`` numpy array."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        shape = image.shape if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"{what} expects an RGB image of shape (rows, columns, 3) with at least one pixel, got {shape}")


def normalize(image: np.ndarray) -> np.ndarray:
    """uint8 0..255 -> float32 0..1, same shape (any: RGB, gray, a stack)."""
    if not isinstance(image, np.ndarray) or image.size == 0:
        raise ValueError(f"normalize expects a uint8 image with at least one pixel, got "
                         f"{image.shape if isinstance(image, np.ndarray) else type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"normalize expects a uint8 image (0..255), got dtype {image.dtype}")
    return image.astype(np.float32) / 255.0


def resize(image: np.ndarray, height: int, width: int, grayscale: bool = False) -> np.ndarray:
    """``(h, w, 3)`` -> ``(height, width, C)`` with C = 1 if ``grayscale`` else 3, same dtype.

    Uses area interpolation, which averages pixels when shrinking, so a thin ball does not vanish.
    """
    check_image(image, "resize")
    if grayscale:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if image.shape[:2] != (height, width):
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    if image.dtype.kind == "f" and not np.isfinite(image.max()):  # the result is checked: it is the smaller array
        raise ValueError("resize got an image with values that are not numbers (NaN or infinite)")
    return image.reshape(height, width, -1)


def to_channels_first(image: np.ndarray) -> np.ndarray:
    """``(H, W, C)`` -> contiguous ``(C, H, W)``."""
    return np.ascontiguousarray(image.transpose(2, 0, 1))


def preprocess(frame: np.ndarray, height: int = 160, width: int = 160, grayscale: bool = False,
               rows: tuple[int, int] = (CROP_TOP, CROP_BOTTOM)) -> np.ndarray:
    """A raw ``(210, 160, 3)`` uint8 frame -> the model's ``(C, height, width)`` float32 state in 0..1.

    ``rows`` is the crop ``(top, bottom)``: the game's entry of :data:`GAME_CROPS`.
    """
    return to_channels_first(resize(normalize(crop(frame, *rows)), height, width, grayscale))


class PreprocessObservation(gym.ObservationWrapper):
    """Gymnasium wrapper: every observation goes through :func:`preprocess`.

    Observation space: ``Box(0, 1, (C, height, width), float32)``, C = 1 (grayscale) or 3.
    ``rows`` is the crop ``(top, bottom)``, the game's entry of :data:`GAME_CROPS`.
    """

    def __init__(self, env: gym.Env, height: int = 160, width: int = 160, grayscale: bool = False,
                 rows: tuple[int, int] = (CROP_TOP, CROP_BOTTOM)):
        super().__init__(env)
        self.height, self.width, self.grayscale, self.rows = height, width, grayscale, rows
        channels = 1 if grayscale else 3
        self.observation_space = gym.spaces.Box(0.0, 1.0, (channels, height, width), np.float32)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return preprocess(observation, self.height, self.width, self.grayscale, self.rows)
