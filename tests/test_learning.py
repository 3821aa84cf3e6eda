"""End to end: the real multi-process A3C learns Catch, judged by the greedy evaluator; and one
worker's loop, alone in this process, learns it too, the same way every time."""

import multiprocessing as mp
import threading
import time

import numpy as np
import pytest
import torch

from a3c_core import A3CConfig, ActorCritic, make_env
from a3c_core.evaluator import play_episode
from a3c_core.shared import SharedAdam, SharedMemoryLink
from a3c_core.worker import train_loop

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]  # tests/conftest.py


def test_a3c_learns_catch_within_100k_steps(tmp_path, catch_learning):
    config = A3CConfig.preset("catch", run_dir=str(tmp_path))
    catch_learning(config)


# --- One worker in this process, deterministic ---------------------------------------------------
#: The run: Catch's preset with lr SINGLE_LR, seed 1, judged every 20 updates, for at most SINGLE_STEPS
#: agent steps. At the preset's own rate (5e-4) one worker needs 40k-65k steps (seeds 0 and 1), about 3
#: minutes; at 1e-3, 19k-41k (seeds 0-4), seed 1 in under a minute. The preset's lower rate is for its
#: two workers' shared updates, where three runs of six at 1e-3 learned and then fell back to random play; this one
#: run is the same every time, so its rate only sets how long the test takes.
SINGLE_LR = 1e-3
SINGLE_SEED = 1
SINGLE_STEPS = 45_000
#: Mean greedy score over the 10 games of EVAL_SEEDS (+5 is every ball caught; random play: about -3).
SINGLE_BAR = 4.0
#: The greedy games that judge the single-process agent: 10 games on seeds never used in training.
EVAL_SEEDS = range(10_000, 10_010)


class GreedyJudge:
    """Stands in for the worker's report queue: at each ``"losses"`` record (every
    ``worker.LOSS_REPORT_EVERY`` = 20 updates) it plays the 10 greedy games of EVAL_SEEDS with the
    model, and sets ``stop`` once their mean reaches SINGLE_BAR. It runs in the worker's own thread,
    between two updates, so the run stays the same run every time."""

    def __init__(self, model: ActorCritic, config: A3CConfig, stop: threading.Event):
        self.model, self.env, self.stop = model, make_env(config), stop
        self.means: list[tuple[int, float]] = []  # (agent steps, greedy mean) at each judgement

    def put_nowait(self, record: dict) -> None:
        if record["kind"] != "losses":
            return
        mean = float(np.mean([play_episode(self.model, self.env, seed=seed)["score"] for seed in EVAL_SEEDS]))
        self.means.append((record["steps"], mean))
        if mean >= SINGLE_BAR:
            self.stop.set()


def test_one_worker_learns_catch_in_this_process_deterministically():
    """``worker.train_loop`` alone, one process, fixed seeds: the same run every time on one machine.

    The run is the same on one machine, not on every machine: the floating-point kernels torch picks
    depend on the CPU, and one different rounding sends a run elsewhere. Seed 1's greedy mean after
    23,625 steps was +5.0 on one lab machine and +3.6 on another (AVX-512), so the test judges the
    run as it goes rather than at one step count. Measured on the AVX-512 machine with lr 1e-3, judged
    every 20 updates: seeds 0-4 first reached +4.0 at 40,500 / 19,350 / 33,750 / 25,200 / 30,600 steps
    (seed 1 twice: the same 19,350), seed 1 in about 50 s; random play stays near -3.
    """
    config = A3CConfig.preset("catch", lr=SINGLE_LR, seed=SINGLE_SEED, max_steps=SINGLE_STEPS)
    torch.manual_seed(config.seed)
    model = ActorCritic.from_config(config, n_actions=3)
    optimizer = SharedAdam(model.parameters(), lr=config.lr)
    steps, stop = mp.Value("q", 0), threading.Event()
    judge = GreedyJudge(model, config, stop)
    start = time.monotonic()
    train_loop(0, config, SharedMemoryLink(config, model, optimizer, steps, stop), judge)
    print(f"{steps.value:,} steps in {time.monotonic() - start:.1f} s; greedy means {judge.means}")
    assert judge.means and judge.means[-1][1] >= SINGLE_BAR, judge.means[-5:]
    assert judge.means[0][1] < 0  # it started where random play is
