"""The worker's loop itself, run in this process on Catch: the hidden state, the bootstrap, where a
rollout stops, the step counter, the records it sends and what it does when the run diverges."""

from __future__ import annotations

import inspect
import multiprocessing as mp
import queue
import threading

import pytest
import torch

from a3c_core import A3CConfig, ActorCritic, evaluator, make_env, worker
from a3c_core.shared import SharedAdam, SharedMemoryLink

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py

#: Catch, small and quick: 5 balls of 9 steps each, so with 30-step rollouts some rollouts end an
#: episode and some do not.
CONFIG = A3CConfig.preset("catch", height=40, width=40, hidden_size=16)
EPISODE_LENGTH = 45


def link(config: A3CConfig, shared: ActorCritic, optimizer: SharedAdam, steps=None) -> SharedMemoryLink:
    """The local backend's link to ``shared``, with a fresh step counter unless ``steps`` is given."""
    return SharedMemoryLink(config, shared, optimizer, mp.Value("q", 0) if steps is None else steps, threading.Event())


def run_train_loop(config: A3CConfig, max_steps: int) -> tuple[ActorCritic, int, list[dict]]:
    """``worker.train_loop`` in this process until ``max_steps``: the shared model, the step count, the records."""
    torch.manual_seed(0)
    shared = ActorCritic.from_config(config, n_actions=3)
    optimizer = SharedAdam(shared.parameters(), lr=config.lr)
    steps, reports = mp.Value("q", 0), queue.Queue()
    worker.train_loop(0, config, link(config.replace(max_steps=max_steps), shared, optimizer, steps), reports)
    return shared, steps.value, [reports.get() for _ in range(reports.qsize())]


@pytest.fixture
def small_model() -> ActorCritic:
    torch.manual_seed(1)
    return ActorCritic.from_config(CONFIG, n_actions=3)


def test_hidden_state_is_reset_at_an_episode_end_and_detached_at_a_rollout_boundary(monkeypatch):
    calls: list[tuple[torch.Tensor, worker.Rollout]] = []
    collect = worker.collect_rollout

    def spy(model, env, obs, hidden, steps):
        rollout = collect(model, env, obs, hidden, steps)
        calls.append((hidden, rollout))
        return rollout

    monkeypatch.setattr(worker, "collect_rollout", spy)
    run_train_loop(CONFIG, max_steps=4 * EPISODE_LENGTH)
    assert not calls[0][0].any()  # the first episode starts from h = 0
    continued = reset = 0
    for (_, before), (hidden, _) in zip(calls, calls[1:]):
        assert hidden.grad_fn is None and not hidden.requires_grad  # gradients stop at the boundary
        if before.episode_over:
            assert not hidden.any()  # a new episode, an empty memory
            reset += 1
        else:
            assert before.hidden.grad_fn is not None  # the value is carried on, the graph is not
            torch.testing.assert_close(hidden, before.hidden.detach())
            continued += 1
    assert reset >= 3 and continued >= 3


def test_bootstrap_is_zero_only_when_the_game_terminated(small_model):
    env = make_env(CONFIG)
    obs, _ = env.reset(seed=0)
    rollout = worker.collect_rollout(small_model, env, obs, small_model.initial_state(), 5)
    with torch.no_grad():
        _, value, _ = small_model(torch.from_numpy(rollout.next_obs).unsqueeze(0), rollout.hidden)
    assert value.abs().item() > 1e-4  # an untrained V(s_T) that cannot be mistaken for 0
    assert not rollout.episode_over
    assert worker.bootstrap_value(small_model, rollout) == pytest.approx(value.item())
    rollout.truncated = True  # a time limit: the game could have gone on
    assert worker.bootstrap_value(small_model, rollout) == pytest.approx(value.item())
    rollout.truncated, rollout.terminated = False, True  # the game is over: nothing follows
    assert worker.bootstrap_value(small_model, rollout) == 0.0


def test_the_rollout_stops_at_the_end_of_a_game(small_model):
    env = make_env(CONFIG)
    obs, _ = env.reset(seed=0)
    rollout = worker.collect_rollout(small_model, env, obs, small_model.initial_state(), 100)
    assert len(rollout.rewards) == len(rollout.values) == len(rollout.log_probs) == EPISODE_LENGTH
    assert rollout.terminated and not rollout.truncated and rollout.episode_over
    assert set(rollout.rewards) <= {-1.0, 0.0, 1.0}
    assert sum(r != 0 for r in rollout.rewards) == 5  # one catch or miss per ball


def test_a_time_limit_truncates_the_rollout_and_is_bootstrapped(small_model):
    env = make_env(CONFIG.replace(max_episode_steps=7))
    obs, _ = env.reset(seed=0)
    rollout = worker.collect_rollout(small_model, env, obs, small_model.initial_state(), 30)
    assert len(rollout.rewards) == 7
    assert rollout.truncated and not rollout.terminated and rollout.episode_over
    assert worker.bootstrap_value(small_model, rollout) != 0.0


def test_the_step_counter_counts_every_agent_step(monkeypatch):
    env_steps = []

    def counting_env(config):
        env = make_env(config)
        step = env.step

        def counted(action):
            env_steps.append(action)
            return step(action)

        env.step = counted
        return env

    monkeypatch.setattr(worker, "make_env", counting_env)
    _, steps, records = run_train_loop(CONFIG, max_steps=100)
    assert steps == len(env_steps) >= 100
    assert sum(r["length"] for r in records if r["kind"] == "episode") == EPISODE_LENGTH * (steps // EPISODE_LENGTH)


def test_an_annealed_learning_rate_reaches_zero_and_the_shared_weights_then_stop_changing():
    config = CONFIG.replace(lr_anneal_steps=90, rollout_steps=10)
    torch.manual_seed(0)
    shared = ActorCritic.from_config(config, n_actions=3)
    optimizer = SharedAdam(shared.parameters(), lr=config.lr)
    steps, reports = mp.Value("q", 0), queue.Queue()
    rates, step = [], optimizer.step

    def watched_step() -> None:  # the rate of each update, with the step count it was set for
        rates.append((steps.value, optimizer.param_groups[0]["lr"]))
        step()

    optimizer.step = watched_step
    worker.train_loop(0, config, link(config.replace(max_steps=90), shared, optimizer, steps), reports)
    frozen = [p.detach().clone() for p in shared.parameters()]
    worker.train_loop(0, config, link(config.replace(max_steps=150), shared, optimizer, steps), reports)
    assert [lr for _, lr in rates] == pytest.approx([config.lr * max(0.0, 1 - at / 90) for at, _ in rates])
    assert rates[0][1] > 0 and any(at >= 90 for at, _ in rates)  # it started above 0 and went on past 90 steps
    assert all(torch.equal(p, q) for p, q in zip(shared.parameters(), frozen))  # at rate 0 nothing moves


def test_records_keep_their_fields():
    _, steps, records = run_train_loop(CONFIG, max_steps=worker.LOSS_REPORT_EVERY * 30)
    episodes = [r for r in records if r["kind"] == "episode"]
    losses = [r for r in records if r["kind"] == "losses"]
    assert episodes and losses
    for record in episodes:
        assert set(record) == {"kind", "source", "rank", "steps", "time", "reward", "score", "length"}
        assert record["length"] == EPISODE_LENGTH and record["score"] == record["reward"]
        assert record["source"] == "worker 0" and record["rank"] == 0 and 0 < record["steps"] <= steps
    for record in losses:
        assert set(record) == {"kind", "source", "rank", "steps", "time", "policy_loss", "value_loss", "entropy",
                               "grad_norm"}
        assert 0 < record["entropy"] <= torch.log(torch.tensor(3.0)).item() + 1e-6  # per step: at most log 3
        assert 0 < record["grad_norm"] < float("inf")


def test_the_reported_gradient_norm_is_the_mean_norm_before_clipping(monkeypatch):
    norms = []
    clip = torch.nn.utils.clip_grad_norm_

    def clip_and_keep(parameters, max_norm):
        norms.append(clip(parameters, max_norm).item())
        return torch.tensor(norms[-1])

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip_and_keep)
    config = CONFIG.replace(max_grad_norm=1e-4)  # every gradient is clipped: its norm before is larger
    _, _, records = run_train_loop(config, max_steps=worker.LOSS_REPORT_EVERY * 30 * 2)
    reported = [r["grad_norm"] for r in records if r["kind"] == "losses"]
    every = worker.LOSS_REPORT_EVERY
    assert len(reported) == len(norms) // every >= 1
    assert reported == pytest.approx([sum(norms[i * every:(i + 1) * every]) / every for i in range(len(reported))])
    assert min(reported) > 100 * config.max_grad_norm


def test_a_worker_that_starts_in_the_middle_of_a_run_plays_new_games(monkeypatch):
    seeds = []

    def recording_env(config):
        env = make_env(config)
        reset = env.reset
        env.reset = lambda seed=None, **kw: (seeds.append(seed), reset(seed=seed, **kw))[1]
        return env

    monkeypatch.setattr(worker, "make_env", recording_env)
    config = CONFIG.replace(workers=3, seed=7)
    firsts = []
    for rank, start in ((0, 0), (2, 0), (0, 990), (2, 990), (1, 4500)):
        seeds.clear()
        shared = ActorCritic.from_config(config, n_actions=3)
        steps = mp.Value("q", start)
        run = link(config.replace(max_steps=start + 60), shared, SharedAdam(shared.parameters(), lr=1e-4), steps)
        worker.train_loop(rank, config, run, queue.Queue())
        firsts.append(seeds[0])
        assert seeds[0] == worker.game_seed(config, rank, start)
    assert firsts[:2] == [7, 9]  # a fresh run: seed + rank, as always
    assert len(set(firsts)) == len(firsts)  # a restart or a resume never replays a game seed
    assert min(firsts[2:]) > evaluator.FINAL_SEED + 10**8  # and stays clear of the evaluator's games


def test_a_non_finite_loss_stops_the_loop_before_the_shared_weights_change():
    torch.manual_seed(0)
    shared = ActorCritic.from_config(CONFIG, n_actions=3)
    with torch.no_grad():
        shared.value.bias.fill_(float("nan"))
    before = [p.detach().clone() for p in shared.parameters()]
    optimizer = SharedAdam(shared.parameters(), lr=CONFIG.lr)
    with pytest.raises(FloatingPointError, match="the loss is nan at step"):
        worker.train_loop(0, CONFIG, link(CONFIG, shared, optimizer), queue.Queue())
    assert all(torch.equal(p.nan_to_num(), b.nan_to_num()) for p, b in zip(shared.parameters(), before))


def test_a_non_finite_gradient_norm_stops_the_loop_before_the_optimizer_steps(monkeypatch):
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda parameters, max_norm: torch.tensor(float("inf")))
    torch.manual_seed(0)
    shared = ActorCritic.from_config(CONFIG, n_actions=3)
    before = [p.detach().clone() for p in shared.parameters()]
    optimizer = SharedAdam(shared.parameters(), lr=CONFIG.lr)
    with pytest.raises(FloatingPointError, match="the gradient's norm is inf at step 30"):
        worker.train_loop(0, CONFIG, link(CONFIG, shared, optimizer), queue.Queue())
    assert all(torch.equal(p, b) for p, b in zip(shared.parameters(), before))


def test_train_loop_reads_as_the_algorithm():
    lines = inspect.getsource(worker.train_loop).splitlines()
    body = lines[next(i for i, line in enumerate(lines) if line.strip().endswith('"""') and i > 1) + 1:]
    assert len(body) <= 30, f"train_loop's body has {len(body)} lines"
