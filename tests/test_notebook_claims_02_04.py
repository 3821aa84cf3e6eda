"""The numeric claims of notebooks 02, 03 and 04, checked on their smoke runs.

Each notebook runs top to bottom in smoke mode (as in ``tests/test_notebooks.py``) with one more
cell at the end that prints, as JSON, the values its prose talks about; the tests read them back.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from test_notebooks import smoke_run

pytestmark = pytest.mark.slow  # pytest -m "not slow" leaves the notebook and browser runs out


def claims(name: str, probe: str) -> dict:
    """Run notebook ``name`` in smoke mode, then ``probe`` (an expression over the notebook's
    variables that gives a dict): that dict."""
    values = smoke_run(name, probe).value
    print(f"{name}: {values}")
    return values


def test_notebook_02_the_hidden_state_matters_and_fades(kernel_dir: Path) -> None:
    got = claims("02_model.ipynb", """{
        "distance": distance.tolist(), "gap": value_gap.tolist(), "reset_at": RESET_AT,
        "v_range": float(v_carried.max() - v_carried.min()),
        "before_reset_same": bool(np.allclose(v_carried[:RESET_AT], v_reset[:RESET_AT])),
        "channel_means_after": [float(m) for m in centred.mean(dim=(2, 3))[0]],
        "features": model.features, "gru": model.parameter_count()["gru"],
        "act_is_softmax": bool(torch.allclose(step.probs, torch.softmax(logits, dim=-1))),
        "probs": step.probs[0].tolist(), "entropy": step.entropy.item(), "n_actions": len(names),
        "greedy_is_argmax": greedy.action.item() == int(step.probs.argmax())}""")
    reset_at, distance, gap = got["reset_at"], got["distance"], got["gap"]
    assert got["before_reset_same"]  # the two runs only part at the reset
    # "right after the reset the same frame gives another hidden state and another value"
    assert distance[reset_at] > 0.1 and gap[reset_at] > 1e-3
    # "the difference shrinks by a constant factor per step, so the past fades within a few dozen steps"
    ratios = [later / earlier for earlier, later in zip(distance[reset_at:], distance[reset_at + 1:])]
    assert all(0.3 < ratio < 0.9 for ratio in ratios), ratios
    assert distance[-1] < distance[reset_at] / 100 and gap[-1] < gap[reset_at] / 10
    # "the gap in the value is ... a small fraction of how much the value varies along the sequence"
    assert gap[reset_at] < got["v_range"] / 5
    # section 1: centring makes every channel's mean 0; section 3: 800 features, 812,544 GRU parameters
    assert all(abs(m) < 1e-5 for m in got["channel_means_after"])
    assert got["features"] == 800 and got["gru"] == 812_544
    # section 4: act's probabilities are softmax(logits); untrained, "nearly equal", entropy "within a hair" of log 6
    assert got["act_is_softmax"] and got["greedy_is_argmax"] and got["n_actions"] == 6
    assert max(got["probs"]) - min(got["probs"]) < 0.01
    assert 0.999 * math.log(6) < got["entropy"] <= math.log(6) + 1e-6


def test_notebook_03_shared_memory_and_the_race(kernel_dir: Path) -> None:
    got = claims("03_shared_memory.ipynb", """{
        "tensor": tensor.tolist(), "array": array.tolist(), "exit_code": child.exitcode,
        "race": race_results, "increments": INCREMENTS, "moved": float(moved[-1]),
        "adam_updates": int(optimizer.state[first_shared]["step"]) - adam_steps_before,
        "episodes": len(episodes), "steps": steps.value, "worker_steps": WORKER_STEPS}""")
    # a child fills a shared tensor (then a failed child leaves it so), a pickled numpy array stays as it was
    assert got["tensor"] == [7.0] * 4 and got["array"] == [0.0] * 4
    assert got["exit_code"] == 1  # the notebook's own function cannot be found by a spawned child
    # the race: with the lock nothing is lost; without it the count never exceeds the truth
    total = 2 * got["increments"]
    locked, unlocked = got["race"]["with a lock"], got["race"]["without a lock"]
    assert locked["count"] == total and locked["lost"] == 0
    assert unlocked["count"] <= total and unlocked["waits"] == 0
    # two real workers moved the shared weights; one Adam step per rollout, 45-step episodes make 2 rollouts
    assert got["steps"] >= got["worker_steps"] and got["moved"] > 0
    assert got["adam_updates"] >= got["steps"] / 30 and got["adam_updates"] >= 2 * got["episodes"]


def test_notebook_04_one_update_moves_the_model_the_right_way(kernel_dir: Path) -> None:
    got = claims("04_loss.ipynb", """{
        "error": error, "agree": agree, "n_actions": len(names), "T": T,
        "entropy_min": float(entropies.detach().min()), "entropy_max": float(np.log(len(names))),
        "rewards": [r for r in rewards if r], "loop_lines": len(inspect.getsource(worker.train_loop).splitlines()),
        "moved": moved, "lr": config.lr, "games": [len(r.rewards) for r in rollouts],
        "games_over": [r.episode_over for r in rollouts],
        "games_sum": [float(getattr(worker.rollouts_loss(model, rollouts, config), part)) for part in ("total", "value")],
        "games_parts": [[float(getattr(worker.rollout_loss(model, r, config), part)) for r in rollouts]
                        for part in ("total", "value")]}""")
    error = got["error"]
    # "with the worker's learning rate ... the mean error fell"; "with LR_FACTOR times that rate ... the error grows"
    assert error["after"] < error["before"] < error["large"]
    # "in this rollout each action's probability moved in the direction of the summed advantage"
    assert got["agree"] == got["n_actions"]
    # "the untrained policy is almost uniform (H_t near its maximum)"
    assert got["entropy_min"] > 0.99 * got["entropy_max"]
    # the rollout that section 1 looks for holds a point, and is at most 30 steps
    assert got["rewards"] and got["T"] <= 30
    assert got["loop_lines"] < 40 and math.isfinite(error["before"])
    # "the largest change ... equals the learning rate, with the gradient clipped to max_grad_norm and to a
    # hundredth of it alike": clipping cannot shrink Adam's first step
    assert len(got["moved"]) == 2
    for value in got["moved"].values():
        assert abs(value - got["lr"]) < 1e-3 * got["lr"], got["moved"]
    # "several games per worker": three games, one rollout each, 30 steps unless its episode ended first;
    # one update takes the sum of their losses
    assert len(got["games"]) == 3
    assert all(length == 30 or (length < 30 and over) for length, over in zip(got["games"], got["games_over"]))
    for total, parts in zip(got["games_sum"], got["games_parts"]):
        assert total == pytest.approx(sum(parts), rel=1e-5)
