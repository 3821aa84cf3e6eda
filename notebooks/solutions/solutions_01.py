"""Reference solutions of notebook 01 (observations). Check them with ``a3c_core.checks``."""

import numpy as np

from a3c_core import preprocess


def my_crop(frame: np.ndarray) -> np.ndarray:
    """``(210, 160, 3)`` uint8 frame -> rows 35..194, ``(160, 160, 3)`` uint8."""
    return frame[35:195]


def my_normalize(image: np.ndarray) -> np.ndarray:
    """uint8 0..255 -> float32 0..1, same shape."""
    return image.astype(np.float32) / 255.0


def my_state(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(210, 160, 3)`` uint8 frame -> ``(3, height, width)`` float32 state in 0..1."""
    cropped = my_crop(frame)
    scaled = my_normalize(cropped)
    resized = preprocess.resize(scaled, height, width)
    return preprocess.to_channels_first(resized)
