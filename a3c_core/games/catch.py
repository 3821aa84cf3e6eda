"""Catch: a tiny pixel game drawn in the Atari frame format (the warm-up and the learning test).

A ball falls straight down the play area, one cell per step; the player moves a paddle along the
bottom row and must be under the ball when it lands. +1 for a catch, -1 for a miss; an episode is
``balls`` balls. The frame is a ``(210, 160, 3)`` uint8 image laid out like an Atari screen: a score
bar in rows 0..34, the play area in rows 35..194 (exactly what ``preprocess.crop`` keeps) and a
border in rows 195..209, so the whole A3C pipeline runs on it unchanged, just much faster to learn.

The play area is a grid of 10 rows (16 pixels high) by ``columns`` columns (default 5, 32 pixels
wide). A ball needs 9 steps to fall and the paddle can cross the screen in that time, so every ball
can be caught; a random policy catches about one in four.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

CELL = 16   # row height in pixels
ROWS = 10
PLAY_TOP = 35
BORDER_TOP = 195
BACKGROUND = (0, 0, 0)
SCORE_BAR = (60, 60, 90)
BORDER = (120, 120, 120)
BALL = (236, 236, 236)
PADDLE = (213, 130, 74)
CATCH_MARK = (92, 186, 92)
MISS_MARK = (200, 72, 72)


class CatchEnv(gym.Env):
    """Catch in a ``(210, 160, 3)`` uint8 frame. Actions: 0 stay, 1 left, 2 right."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(self, balls: int = 5, columns: int = 5, render_mode: str | None = None):
        if balls < 1:
            raise ValueError(f"balls must be >= 1, got {balls}")
        if columns not in (2, 4, 5, 8, 10):
            raise ValueError(f"columns must divide the 160-pixel width into at most 10 cells (2, 4, 5, 8 or 10), got {columns}")
        self.balls, self.columns, self.cell_width = balls, columns, 160 // columns
        self.render_mode = render_mode
        self.action_space = gym.spaces.Discrete(3)
        self.observation_space = gym.spaces.Box(0, 255, (210, 160, 3), np.uint8)
        self._results: list[int] = []

    def get_action_meanings(self) -> list[str]:
        """Names of the actions, like ALE's method of the same name."""
        return ["NOOP", "LEFT", "RIGHT"]

    def _new_ball(self) -> None:
        self.ball_row = 0
        self.ball_col = int(self.np_random.integers(self.columns))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.paddle_col = int(self.np_random.integers(self.columns))
        self._results = []
        self._new_ball()
        return self._frame(), {"lives": self.balls}

    def step(self, action: int):
        if not self.action_space.contains(action):
            raise ValueError(f"action must be 0 (stay), 1 (left) or 2 (right), got {action!r}")
        self.paddle_col = int(np.clip(self.paddle_col + (0, -1, 1)[int(action)], 0, self.columns - 1))
        self.ball_row += 1
        reward = 0.0
        if self.ball_row == ROWS - 1:
            reward = 1.0 if self.ball_col == self.paddle_col else -1.0
            self._results.append(int(reward))
            if len(self._results) < self.balls:
                self._new_ball()
        terminated = len(self._results) == self.balls
        return self._frame(), reward, terminated, False, {"lives": self.balls - len(self._results)}

    def render(self) -> np.ndarray:
        return self._frame()

    def _frame(self) -> np.ndarray:
        frame = np.zeros((210, 160, 3), np.uint8)
        frame[:PLAY_TOP] = SCORE_BAR
        frame[BORDER_TOP:] = BORDER
        for i, result in enumerate(self._results):  # the score bar: one mark per ball played
            frame[12:24, 8 + 14 * i: 18 + 14 * i] = CATCH_MARK if result > 0 else MISS_MARK
        if len(self._results) < self.balls:
            top = PLAY_TOP + self.ball_row * CELL
            left = self.ball_col * self.cell_width + (self.cell_width - 12) // 2
            frame[top + 2: top + CELL - 2, left: left + 12] = BALL
        top = PLAY_TOP + (ROWS - 1) * CELL
        frame[top + 10: top + CELL, self.paddle_col * self.cell_width: (self.paddle_col + 1) * self.cell_width] = PADDLE
        return frame
