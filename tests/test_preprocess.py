"""The observation pipeline: exact crop rows, range and dtype, resize shapes, the 4-frame queue."""

import gymnasium as gym
import numpy as np
import pytest

from a3c_core import A3CConfig, make_env
from a3c_core.config import GAMES
from a3c_core.preprocess import (CROP_BOTTOM, CROP_TOP, GAME_COLOURS, GAME_CROPS, PreprocessObservation, crop,
                                 normalize, preprocess, resize, row_spans)


def row_index_frame() -> np.ndarray:
    """A (210, 160, 3) frame whose every pixel holds its own row number."""
    return np.repeat(np.arange(210, dtype=np.uint8)[:, None, None], 160, axis=1).repeat(3, axis=2)


def test_crop_keeps_exactly_rows_35_to_194():
    cropped = crop(row_index_frame())
    assert cropped.shape == (160, 160, 3)
    assert cropped[:, 0, 0].tolist() == list(range(35, 195))
    assert (CROP_TOP, CROP_BOTTOM) == (35, 195)


@pytest.mark.parametrize("game, rows", [("pong", range(35, 195)), ("space_invaders", range(20, 195)),
                                        ("catch", range(35, 195))])
def test_each_game_keeps_exactly_its_own_rows(game, rows):
    assert set(GAME_CROPS) == set(GAMES)
    assert crop(row_index_frame(), *GAME_CROPS[game])[:, 0, 0].tolist() == list(rows)
    # make_env crops with the game's rows: a marker on the first and on the last kept row reaches the state
    wrapper = make_env(A3CConfig(game=game, height=len(rows), width=160))
    frame = np.zeros((210, 160, 3), np.uint8)
    frame[[rows[0] - 1, rows[-1] + 1], :] = 50  # just outside: must be cut
    frame[rows[0], 3] = frame[rows[-1], 5] = 255
    state = wrapper.observation(frame)
    assert state.shape == (3, len(rows), 160)
    assert state[0, 0, 3] == state[0, -1, 5] == 1.0 and state.sum() == 6.0


def first_space_invaders_frame(seed: int = 0) -> np.ndarray:
    env = gym.make(GAMES["space_invaders"], repeat_action_probability=0.0)
    frame, _ = env.reset(seed=seed)
    env.close()
    return frame


def test_row_spans_finds_runs_of_rows_with_a_colour():
    frame = np.zeros((210, 160, 3), np.uint8)
    frame[[3, 4, 5, 9, 200], 7] = (1, 2, 3)
    assert row_spans(frame, (1, 2, 3)) == [(3, 5), (9, 9), (200, 200)]
    assert row_spans(frame, (9, 9, 9)) == []


def test_the_space_invaders_crop_keeps_every_alien_row_and_the_cannon_and_drops_the_score():
    frame = first_space_invaders_frame()
    colours = GAME_COLOURS["space_invaders"]
    top, bottom = GAME_CROPS["space_invaders"]
    aliens = row_spans(frame, colours["aliens"])
    assert len(aliens) == 6 and aliens[0][0] == 31  # six rows of aliens, the top one from row 31
    assert top <= aliens[0][0] and aliens[-1][1] < bottom
    assert (185, 194) in row_spans(frame, colours["cannon, right score"])
    assert 194 < bottom <= row_spans(frame, colours["ground"])[0][0]
    assert row_spans(frame, colours["left score"])[0] == (10, 19) and top > 19
    # the state holds all of the top alien row; Pong's crop (rows 35..194) would cut its rows 31..34
    cropped = crop(frame, top, bottom)
    assert row_spans(np.pad(cropped, ((top, 210 - bottom), (0, 0), (0, 0))), colours["aliens"]) == aliens
    assert aliens[0][0] < CROP_TOP


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


@pytest.mark.parametrize("image, message", [
    (np.zeros((160, 160), np.float32), r"resize expects an RGB image of shape \(rows, columns, 3\).*got \(160, 160\)"),
    (np.zeros((0, 160, 3), np.float32), r"with at least one pixel, got \(0, 160, 3\)"),
    (np.full((160, 160, 3), np.nan, np.float32), "not numbers"),
    ([[0.5]], "got list"),
])
def test_resize_refuses_what_is_not_an_image_in_one_sentence(image, message):
    for grayscale in (False, True):
        with pytest.raises(ValueError, match=message):
            resize(image, 80, 80, grayscale=grayscale)


def test_normalize_refuses_an_empty_image():
    with pytest.raises(ValueError, match="at least one pixel"):
        normalize(np.zeros((0, 160, 3), np.uint8))
