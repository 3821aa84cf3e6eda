"""Fixtures that several test files share."""

import json
import os
import sys
from pathlib import Path

# Every Ray the tests start (tests/test_ray_backend.py) binds to and connects through 127.0.0.1 only:
# this switch makes Ray take the loopback address as this machine's own (set before Ray is imported).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
# The test cluster's nodes start their worker processes at niceness 0, not Ray's default 15 (at 15
# they starve beside other work and take minutes to start); the actors then nice themselves as the
# local backend's workers do. `ray_backend.connect` does the same for a private Ray.
os.environ.setdefault("RAY_worker_niceness", "0")
# The module cluster of tests/test_ray_backend.py (ray.cluster_utils, its nodes started from the test
# process) runs without Ray's token authentication; a client in that same process that switches to
# tokens (as `ray_backend.connect` does where this machine has one) hangs there. The test of token
# authentication starts its cluster with `ray start` and joins it from the CLI, in processes of their own.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import contextlib  # noqa: E402
import io  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture
def one_torch_thread():
    """One torch thread, as in a worker or the evaluator: one state at a time gains nothing from more,
    and on a busy machine more threads only wait for each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def cli(*args: str, cwd: str | Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m a3c_core ARGS`` run inside this process: ``main(args)`` with stdout and stderr captured,
    its exit status as a subprocess would give it. Saves the ~5 s of starting Python and importing torch
    per call; the training processes it starts are real ones all the same. What the command changes for
    its process (signal handlers, torch's thread count, the working folder, ``env``) is put back."""
    from a3c_core.__main__ import main

    names = [name for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)]
    handlers = {name: signal.getsignal(getattr(signal, name)) for name in names}
    threads, folder = torch.get_num_threads(), os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        for key, value in (env or {}).items():
            patch.setenv(key, value)
        try:
            if cwd is not None:
                os.chdir(cwd)
            code = main(list(args))
        except SystemExit as exit:  # argparse's errors and parser.exit
            code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
            if isinstance(exit.code, str):
                err.write(exit.code + "\n")
        finally:
            os.chdir(folder)
            torch.set_num_threads(threads)
            for name, handler in handlers.items():
                signal.signal(getattr(signal, name), handler)
    return subprocess.CompletedProcess(["a3c_core", *args], code, out.getvalue(), err.getvalue())


# Mean over 5 greedy episodes: +2 means 7 of 10 balls caught, where a random paddle catches 1 in 4
# (mean about -3; it never averages +2 over 5 episodes). Not +3: in one CI run the evaluator scored
# +5 three times in a row (mean of 5: +2.6) and then the policy collapsed back to random.
CATCH_THRESHOLD = 2.0
CATCH_LAST = 5
#: The learning runs' budget, in agent steps (not minutes: on a busy or slow machine the niced workers make
#: a fraction of their steps; at half speed beside two busy loops, 23k steps in 5 minutes). The catch
#: preset's runs reached a mean of 5 of +2 at 29k-43k steps, nine of nine (benchmarks/HISTORY.md, Catch).
CATCH_STEPS = 100_000


def random_policy_mean(config, episodes: int = 200) -> float:
    """Mean score of uniformly random play over ``episodes`` games of ``config``'s game."""
    from a3c_core import make_env

    env = make_env(config)
    rng = np.random.default_rng(0)
    scores = []
    for episode in range(episodes):
        env.reset(seed=episode)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
            total, done = total + reward, terminated or truncated
        scores.append(total)
    return float(np.mean(scores))


@pytest.fixture
def catch_learning():
    """``catch_learning(config)``: train ``config`` (Catch) on its backend for at most CATCH_STEPS agent
    steps (30 minutes only as a guard) until the greedy evaluator's last 5 games average +2, and assert that it got there; returns the
    stopped trainer. The same bar for every backend."""
    from a3c_core import Trainer

    def learn(config):
        config = config.replace(max_steps=CATCH_STEPS, max_minutes=30)
        baseline = random_policy_mean(config)
        assert baseline < -2.0  # a random paddle catches about one ball in four
        trainer = Trainer(config, verbose=False)
        start, reached = time.monotonic(), None
        with trainer:
            while trainer.running:
                scores = [e["score"] for e in trainer.history.evals]
                if len(scores) >= CATCH_LAST and np.mean(scores[-CATCH_LAST:]) >= CATCH_THRESHOLD:
                    reached = scores
                    break
                time.sleep(1.0)
        minutes = (time.monotonic() - start) / 60
        # judged on the games seen when the bar was met: a game the evaluator ends while stopping comes after
        scores = reached or [e["score"] for e in trainer.history.evals]
        print(f"{config.backend}: random policy {baseline:+.2f}; evaluator reached {np.mean(scores[-CATCH_LAST:]):+.2f} "
              f"after {trainer.steps:,} steps, {minutes:.1f} min; all greedy episodes: {scores}")
        assert len(scores) >= CATCH_LAST and np.mean(scores[-CATCH_LAST:]) >= CATCH_THRESHOLD, scores
        assert trainer.history.episodes and not trainer.history.errors, trainer.history.errors
        return trainer

    return learn


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kernel spec that runs this interpreter (so the notebooks see this environment's packages),
    visible through ``JUPYTER_PATH`` while this module's tests run."""
    from test_notebooks import KERNEL_NAME

    root = tmp_path_factory.mktemp("jupyter")
    spec_dir = root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "a3c-lab tests", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(root))
        yield root
