"""The checks of notebook 01: observations."""

from __future__ import annotations

import numpy as np

from .. import preprocess
from .exercise import Exercise


def _hidden_frames() -> list[np.ndarray]:
    """Two random ``(210, 160, 3)`` frames, the first with its row number in channel 0 and its column in channel 1."""
    frames = np.random.default_rng(1).integers(0, 256, (2, 210, 160, 3), dtype=np.uint8)
    frames[0, ..., 0], frames[0, ..., 1] = np.indices((210, 160))
    return list(frames)


#: Exercise 01.1: ``student_fn(frame)`` keeps rows 35..194 of a ``(210, 160, 3)`` frame -> ``(160, 160, 3)``.
crop = Exercise(
    "crop", preprocess.crop, lambda: ({"args": (frame,), "marked": i == 0} for i, frame in enumerate(_hidden_frames())),
    [(lambda a: not isinstance(a.got, np.ndarray), "return a numpy array (a slice of the frame), got {kind}"),
     (lambda a: not np.array_equal(a.args[0], a.before[0]),
      "your function changed the frame it was given; a crop only selects rows, it writes nothing"),
     (lambda a: a.got.shape == a.before[0].shape,
      "you returned the whole (210, 160, 3) frame; keep only rows 35..194: frame[35:195]"),
     (lambda a: a.got.ndim == 3 and a.got.shape[0] == 210,
      "the result has shape {got.shape}: you cut columns (axis 1); rows are axis 0, frame[top:bottom]"),
     (lambda a: a.got.shape != a.want.shape,
      "for a (210, 160, 3) frame you returned shape {got.shape}; keeping rows 35..194 gives {want.shape}"),
     (lambda a: a.got.dtype != a.want.dtype,
      "the crop changed the dtype to {got.dtype}; keep uint8, a crop only selects rows"),
     (lambda a: not np.array_equal(a.got, a.want),
      lambda a: "the shape is right but the rows are not" + (f" (your first row is row {a.got[0, 0, 0]})" if a.marked
      else "") + ": the state starts at row 35 (the first row below the score) and stops before row 195 (the bottom "
      "border)")],
    "Right: rows 35..194 of every column, 160x160, still uint8, the same rows as preprocess.crop.")

#: Exercise 01.2: ``student_fn(image)`` maps uint8 0..255 to float32 0..1, same shape.
normalize = Exercise(
    "normalize", preprocess.normalize,
    lambda: ({"args": (image,)} for image in (np.array([[[0], [255]], [[128], [1]]], dtype=np.uint8),
                                              np.random.default_rng(3).integers(0, 256, (160, 160, 3), np.uint8))),
    [(lambda a: not isinstance(a.got, np.ndarray), "return a numpy array, got {kind}"),
     (lambda a: not np.array_equal(a.args[0], a.before[0]),
      "your function changed its input in place; return a new float32 array instead"),
     (lambda a: a.got.shape != a.want.shape,
      "an image of shape {want.shape} came back with shape {got.shape}; normalizing keeps the shape"),
     (lambda a: a.got.dtype != np.float32,
      lambda a: f"the result has dtype {a.got.dtype}" + (" (integer division // rounds everything to 0 or 1)"
      if np.issubdtype(a.got.dtype, np.integer) else "") + "; the model works in float32: "
      "image.astype(np.float32) / 255"),
     (lambda a: a.got.max() > 1 + 1e-6, lambda a: f"values reach {float(a.got.max()):g}; divide by 255 so that "
                                                  "0..255 becomes 0..1"),
     (lambda a: abs(float(a.got[a.before[0] == 255].min(initial=1.0)) - 1.0) > 1e-6,
      "a white pixel (255) should become exactly 1.0: divide by 255, not 256"),
     (lambda a: not a.close(a.got, a.want), "some values differ from pixel / 255; each pixel p should become p / 255")],
    "Right: float32 in 0..1, 255 becomes 1.0, same shape, input untouched.", atol=1e-6)

#: Exercise 01.3: ``student_fn(frame, height, width)`` -> the ``(3, height, width)`` float32 state.
state = Exercise(
    "state", preprocess.preprocess,
    lambda: ({"args": (_hidden_frames()[0], height, width)} for height, width in ((160, 160), (80, 80), (42, 64))),
    [(lambda a: not isinstance(a.got, np.ndarray), "return a numpy array, got {kind}"),
     (lambda a: a.got.shape == (a.height, a.width, 3),
      "for {height}x{width} you returned {got.shape}, channels last; nn.Conv2d wants channels first {want.shape}: "
      "preprocess.to_channels_first"),
     (lambda a: a.got.shape != a.want.shape,
      "for height={height}, width={width} the state should have shape {want.shape} (C, H, W), got {got.shape}"),
     (lambda a: a.got.dtype != np.float32,
      "the state has dtype {got.dtype}; the model works in float32 (normalize before resizing)"),
     (lambda a: a.got.max() > 1 + 1e-6,
      lambda a: f"values reach {float(a.got.max()):g}; the state lives in 0..1 (normalize)"),
     # (atol 1/255: resizing before normalizing differs by at most rounding to whole steps of 1/255)
     (lambda a: not a.close(a.got, a.want), "for {height}x{width} the shape is right but the pixels differ from "
                              "preprocess.preprocess: crop rows 35..194 first, then normalize, resize with "
                              "preprocess.resize (area interpolation), and turn channels first")],
    "Right: crop, 0..1, resized, channels first: the very state the model sees.", atol=1 / 255 + 1e-6)
