"""From an Atari frame to the state the model sees (notebook 01).

An Atari frame is a ``(210, 160, 3)`` uint8 RGB image. The state is made in four pure steps:

1. :func:`crop` keeps rows 35..194 (``frame[35:195]``): the score bar on top and the border at
   the bottom say nothing about where the ball is going.
2. :func:`normalize` maps 0..255 to 0..1 as float32.
3. :func:`resize` brings the ``(160, 160)`` crop to the configured ``(H, W)`` (the seed preset
   keeps 160x160; the fast preset uses 80x80), optionally in grayscale.
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
#: First row kept by the crop (rows above it hold the score).
CROP_TOP: int = 35
#: First row dropped at the bottom (rows 195..209 hold the border).
CROP_BOTTOM: int = 195


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


def normalize(image: np.ndarray) -> np.ndarray:
    """uint8 0..255 -> float32 0..1, same shape."""
    if image.dtype != np.uint8:
        raise ValueError(f"normalize expects a uint8 image (0..255), got dtype {image.dtype}")
    return image.astype(np.float32) / 255.0


def resize(image: np.ndarray, height: int, width: int, grayscale: bool = False) -> np.ndarray:
    """``(h, w, 3)`` -> ``(height, width, C)`` with C = 1 if ``grayscale`` else 3, same dtype.

    Uses area interpolation, which averages pixels when shrinking, so a thin ball does not vanish.
    """
    if grayscale:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if image.shape[:2] != (height, width):
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return image.reshape(height, width, -1)


def to_channels_first(image: np.ndarray) -> np.ndarray:
    """``(H, W, C)`` -> contiguous ``(C, H, W)``."""
    return np.ascontiguousarray(image.transpose(2, 0, 1))


def preprocess(frame: np.ndarray, height: int = 160, width: int = 160, grayscale: bool = False) -> np.ndarray:
    """A raw ``(210, 160, 3)`` uint8 frame -> the model's ``(C, height, width)`` float32 state in 0..1."""
    return to_channels_first(resize(normalize(crop(frame)), height, width, grayscale))


class PreprocessObservation(gym.ObservationWrapper):
    """Gymnasium wrapper: every observation goes through :func:`preprocess`.

    Observation space: ``Box(0, 1, (C, height, width), float32)``, C = 1 (grayscale) or 3.
    """

    def __init__(self, env: gym.Env, height: int = 160, width: int = 160, grayscale: bool = False):
        super().__init__(env)
        self.height, self.width, self.grayscale = height, width, grayscale
        channels = 1 if grayscale else 3
        self.observation_space = gym.spaces.Box(0.0, 1.0, (channels, height, width), np.float32)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return preprocess(observation, self.height, self.width, self.grayscale)
