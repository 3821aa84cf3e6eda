"""Small pixel games in the Atari frame format, registered with Gymnasium on import."""

import gymnasium as gym

from .catch import CatchEnv

if "A3CLab/Catch-v0" not in gym.registry:
    gym.register(id="A3CLab/Catch-v0", entry_point="a3c_core.games.catch:CatchEnv")

__all__ = ["CatchEnv"]
