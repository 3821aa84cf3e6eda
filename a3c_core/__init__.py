"""a3c-lab: A3C on Atari Pong and Space Invaders, one module per idea of the lesson.

=================  ==============================================================
``config``         ``A3CConfig``: every knob, presets ``"seed"`` and ``"fast"``
``preprocess``     crop / normalize / resize / channels-first (notebook 01)
``envs``           ``make_env``: Gymnasium + ale-py with the wrappers
``games``          Catch, a pixel game in the Atari frame format
``model``          the conv-GRU actor-critic; ``act`` picks actions and says what it thinks (notebook 02)
``shared``         ``SharedAdam`` and gradient copying (notebook 03)
``demos``          notebook 03's small child-process demonstrations (not part of the algorithm)
``loss``           n-step returns, GAE, the A3C loss (notebook 04)
``worker``         one training process
``evaluator``      the greedy evaluation process; ``play_episode``; the final evaluation
``curves``         training curves as CSV (notebooks 06-08, benchmarks)
``processes``      the local process group: start, read reports, restart with a cap, stop
``listeners``      what consumes the reports: history, metrics file, GIF recorder
``trainer``        ``Trainer``: wires processes, listeners and the run folder: start / stop / status
``files``          files written whole or not at all (a temporary file, then a rename)
``checkpoint``     run storage: atomic save, weights-only load, run folder and lock, exports
``dashboard``      ``Dashboard(trainer)``: live frames, reward plots, controls (notebook 05)
``plots``          matplotlib and image helpers the notebooks and the dashboard share
``loggers``        optional TensorBoard and Weights & Biases logging
``checks``         self-checks for the notebook exercises
``editions``       the instructor's kit: student and instructor editions for nbgrader
=================  ==============================================================
"""

from .config import A3CConfig
from .envs import make_env
from .model import ActorCritic
from .trainer import Trainer

__all__ = ["A3CConfig", "ActorCritic", "Trainer", "make_env"]
__version__ = "0.1.0"
