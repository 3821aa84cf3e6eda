"""The observation pipeline: exact crop rows, range and dtype, resize shapes, the 4-frame queue."""

import numpy as np
import pytest

from a3c_core import A3CConfig, make_env
from a3c_core.preprocess import CROP_BOTTOM, CROP_TOP, PreprocessObservation, crop, normalize, preprocess, resize


def row_index_frame() -> np.ndarray:
    """A (210, 160, 3) frame whose every pixel holds its own row number."""
    return np.repeat(np.arange(210, dtype=np.uint8)[:, None, None], 160, axis=1).repeat(3, axis=2)


def test_crop_keeps_exactly_rows_35_to_194():
    cropped = crop(row_index_frame())
    assert cropped.shape == (160, 160, 3)
    assert cropped[:, 0, 0].tolist() == list(range(35, 195))
    assert (CROP_TOP, CROP_BOTTOM) == (35, 195)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((210, 160), np.uint8), "shape"),
    (np.zeros((160, 160, 3), np.uint8), "shape"),
    (np.zeros((210, 160, 3), np.float32), "uint8"),
    ([[0]], "numpy array"),
])
def test_a_wrong_frame_is_refused_with_a_message_naming_it(bad, message):
    with pytest.raises(ValueError, match=message) as error:
        crop(bad)
    assert "frame" in str(error.value)


def test_normalize_maps_0_255_to_0_1_float32():
    image = np.array([[0, 51, 255]], np.uint8)
    out = normalize(image)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.0, 0.2, 1.0]], rtol=1e-6)
    with pytest.raises(ValueError, match="uint8"):
        normalize(out)


@pytest.mark.parametrize("size, grayscale, channels", [((160, 160), False, 3), ((80, 80), False, 3),
                                                       ((80, 80), True, 1), ((42, 64), True, 1)])
def test_resize_gives_the_configured_shape(size, grayscale, channels):
    image = normalize(crop(row_index_frame()))
    assert resize(image, *size, grayscale=grayscale).shape == (*size, channels)


def test_preprocess_is_channels_first_float_and_keeps_pixels_in_place():
    frame = np.zeros((210, 160, 3), np.uint8)
    frame[100, 20] = (255, 128, 0)
    state = preprocess(frame)
    assert state.shape == (3, 160, 160) and state.dtype == np.float32 and state.flags.c_contiguous
    np.testing.assert_allclose(state[:, 100 - 35, 20], [1.0, 128 / 255, 0.0], rtol=1e-6)
    assert state.sum() == pytest.approx(1.0 + 128 / 255)


def test_wrapper_declares_its_observation_space():
    env = make_env(A3CConfig(game="catch", height=80, width=80, grayscale=True))
    assert isinstance(env, PreprocessObservation)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.shape == obs.shape == (1, 80, 80)
    assert env.observation_space.contains(obs)


def test_four_frame_queue_is_filled_at_reset_and_keeps_the_newest_last():
    one = make_env(A3CConfig(game="catch"))
    four = make_env(A3CConfig(game="catch", frame_stack=4))
    states = [one.reset(seed=3)[0]]
    stacked, _ = four.reset(seed=3)
    assert stacked.shape == (12, 160, 160)
    for k in range(4):  # at reset every slot holds the first state
        np.testing.assert_array_equal(stacked[3 * k: 3 * k + 3], states[0])
    for action in (1, 2, 2, 0, 1):
        states.append(one.step(action)[0])
        stacked = four.step(action)[0]
    for k in range(4):  # oldest first: slot k holds the state of 3 - k steps ago
        np.testing.assert_array_equal(stacked[3 * k: 3 * k + 3], states[-4 + k])
    assert not np.array_equal(stacked[:3], stacked[9:])

    stacked, _ = four.reset(seed=4)  # a reset refills every slot with the new first state
    first, _ = one.reset(seed=4)
    for k in range(4):
        np.testing.assert_array_equal(stacked[3 * k: 3 * k + 3], first)
