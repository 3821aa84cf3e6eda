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


@pytest.mark.parametrize("games", [1, 3])
def test_hidden_state_is_reset_at_an_episode_end_and_detached_at_a_rollout_boundary(monkeypatch, games):
    calls: list[tuple[torch.Tensor, list[worker.Rollout]]] = []
    collect = worker.collect_rollouts

    def spy(model, envs, obs, hidden, steps):
        rollouts = collect(model, envs, obs, hidden, steps)
        calls.append((hidden, rollouts))
        return rollouts

    monkeypatch.setattr(worker, "collect_rollouts", spy)
    run_train_loop(CONFIG.replace(games_per_worker=games), max_steps=4 * EPISODE_LENGTH * games)
    assert calls[0][0].shape == (games, CONFIG.hidden_size) and not calls[0][0].any()  # every game starts from h = 0
    continued = reset = 0
    for (_, before), (hidden, _) in zip(calls, calls[1:]):
        assert hidden.grad_fn is None and not hidden.requires_grad  # gradients stop at the boundary
        for game, rollout in enumerate(before):
            if rollout.episode_over:
                assert not hidden[game].any()  # a new episode, an empty memory
                reset += 1
            else:
                assert rollout.hidden.grad_fn is not None  # the value is carried on, the graph is not
                torch.testing.assert_close(hidden[game:game + 1], rollout.hidden.detach())
                continued += 1
    assert reset >= 3 * games and continued >= 3 * games


def test_several_games_are_played_at_once_as_each_would_be_alone(small_model):
    """One batched forward per step gives each game what the model gives it alone; a game stops at
    the end of its episode while the others play on; one update is the sum of the games' losses."""
    envs = [make_env(CONFIG.replace(max_episode_steps=7)), make_env(CONFIG), make_env(CONFIG)]
    obs = [env.reset(seed=seed)[0] for env, seed in zip(envs, (0, 1, 2))]
    start = torch.randn(3, CONFIG.hidden_size)
    torch.manual_seed(0)
    rollouts = worker.collect_rollouts(small_model, envs, obs, start, 30)
    assert [len(r.rewards) for r in rollouts] == [7, 30, 30] and rollouts[0].truncated
    for game, rollout in enumerate(rollouts):
        hidden = start[game:game + 1]
        for t, (state, action) in enumerate(zip(rollout.states, rollout.actions)):
            alone = small_model.act(torch.from_numpy(state).unsqueeze(0), hidden, action=torch.tensor([action]))
            torch.testing.assert_close(alone.value[0], rollout.values[t])
            torch.testing.assert_close(alone.log_prob[0], rollout.log_probs[t])
            hidden = alone.hidden
        torch.testing.assert_close(hidden, rollout.hidden)
    total = worker.rollouts_loss(small_model, rollouts, CONFIG)
    parts = [worker.rollout_loss(small_model, rollout, CONFIG) for rollout in rollouts]
    for name in total._fields:
        torch.testing.assert_close(getattr(total, name), sum(getattr(part, name) for part in parts))


def collect_one(model: ActorCritic, env, obs, steps: int) -> worker.Rollout:
    """One game's rollout from ``obs`` with an empty memory."""
    return worker.collect_rollouts(model, [env], [obs], model.initial_state(), steps)[0]


def test_bootstrap_is_zero_only_when_the_game_terminated(small_model):
    env = make_env(CONFIG)
    obs, _ = env.reset(seed=0)
    rollout = collect_one(small_model, env, obs, 5)
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
    rollout = collect_one(small_model, env, obs, 100)
    assert len(rollout.rewards) == len(rollout.values) == len(rollout.log_probs) == EPISODE_LENGTH
    assert rollout.terminated and not rollout.truncated and rollout.episode_over
    assert set(rollout.rewards) <= {-1.0, 0.0, 1.0}
    assert sum(r != 0 for r in rollout.rewards) == 5  # one catch or miss per ball


def test_a_time_limit_truncates_the_rollout_and_is_bootstrapped(small_model):
    env = make_env(CONFIG.replace(max_episode_steps=7))
    obs, _ = env.reset(seed=0)
    rollout = collect_one(small_model, env, obs, 30)
    assert len(rollout.rewards) == 7
    assert rollout.truncated and not rollout.terminated and rollout.episode_over
    assert worker.bootstrap_value(small_model, rollout) != 0.0


@pytest.mark.parametrize("games", [1, 3])
def test_the_step_counter_counts_every_agent_step(monkeypatch, games):
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
    _, steps, records = run_train_loop(CONFIG.replace(games_per_worker=games), max_steps=100 * games)
    assert steps == len(env_steps) >= 100 * games
    episodes = [r for r in records if r["kind"] == "episode"]
    # the games play in lockstep, so each has played steps / games of them, in whole episodes and a part
    assert len(episodes) == games * ((steps // games) // EPISODE_LENGTH)
    assert all(r["length"] == EPISODE_LENGTH for r in episodes)


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


@pytest.mark.parametrize("games", [1, 2])
def test_a_worker_that_starts_in_the_middle_of_a_run_plays_new_games(monkeypatch, games):
    seeds = []

    def recording_env(config):
        env = make_env(config)
        reset = env.reset
        env.reset = lambda seed=None, **kw: (seeds.append(seed), reset(seed=seed, **kw))[1]
        return env

    monkeypatch.setattr(worker, "make_env", recording_env)
    config = CONFIG.replace(workers=3, seed=7, games_per_worker=games)
    firsts = []
    for rank, start in ((0, 0), (2, 0), (0, 990), (2, 990), (1, 4500)):
        seeds.clear()
        shared = ActorCritic.from_config(config, n_actions=3)
        steps = mp.Value("q", start)
        run = link(config.replace(max_steps=start + 60 * games), shared, SharedAdam(shared.parameters(), lr=1e-4), steps)
        worker.train_loop(rank, config, run, queue.Queue())
        firsts.append(seeds[:games])  # each game's first reset is seeded; later ones go on from there
        assert seeds[:games] == worker.game_seeds(config, rank, start) and set(seeds[games:]) == {None}
    # a fresh run: seed + rank as always for the first game, + workers for each further one
    assert firsts[:2] == {1: [[7], [9]], 2: [[7, 10], [9, 12]]}[games]
    every = [seed for first in firsts for seed in first]
    assert len(set(every)) == len(every)  # no two games share a seed; a restart or a resume never replays one
    assert min(seed for first in firsts[2:] for seed in first) > evaluator.FINAL_SEED + 10**8  # clear of the evaluator's


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
