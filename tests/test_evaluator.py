"""play_episode: the one game loop of the evaluator, the CLI and the notebooks, and its random baseline."""

import numpy as np
import pytest
import torch

from a3c_core import A3CConfig, ActorCritic, make_env
from a3c_core.evaluator import play_episode


def test_the_random_baseline_is_seeded_and_reports_the_games_own_score():
    config = A3CConfig(game="space_invaders", height=32, width=32, grayscale=True, sticky_action_prob=0.25)
    env = make_env(config)
    first, again, other = (play_episode(None, env, seed=seed) for seed in (3, 3, 4))
    assert first["finished"] and first["length"] > 50
    assert (first["score"], first["length"]) == (again["score"], again["length"])
    assert (first["score"], first["length"]) != (other["score"], other["length"])
    # shaped reward: +0.1 per hit, -1 per life lost (3 lives); the score is the game's points
    assert first["score"] > 0 and first["reward"] < 0 and first["score"] % 5 == 0


def test_a_game_cut_short_still_counts_the_games_own_points_not_the_shaped_reward():
    config = A3CConfig(game="space_invaders", height=32, width=32, grayscale=True, sticky_action_prob=0.25)
    env = make_env(config)
    whole = play_episode(None, env, seed=3)
    cut = play_episode(None, env, seed=3, max_steps=whole["length"] - 1)  # the same game, one step short
    assert not cut["finished"] and cut["length"] == whole["length"] - 1
    assert cut["score"] >= 0 and cut["score"] % 5 == 0 and cut["reward"] < 0
    assert cut["score"] <= whole["score"] and cut["reward"] > whole["reward"]  # its last life not lost yet


def test_a_model_plays_greedily_and_on_step_can_end_the_episode():
    config = A3CConfig(game="catch", height=32, width=32, grayscale=True)
    env = make_env(config, render_mode="rgb_array")
    torch.manual_seed(0)
    model = ActorCritic.from_config(config, env.action_space.n).eval()
    actions = []
    result = play_episode(model, env, seed=0, record=True, on_step=lambda t, a: actions.append(a) or t < 7)
    assert result["length"] == 7 and not result["finished"] and len(result["frames"]) == 8
    assert result["frames"][0].shape == (210, 160, 3)
    replay = []
    play_episode(model, env, seed=0, on_step=lambda t, a: replay.append(a) or t < 7)
    assert replay == actions  # greedy play of a deterministic game: the same actions again


def test_without_memory_every_step_starts_from_a_fresh_hidden_state():
    config = A3CConfig(game="catch", height=32, width=32, grayscale=True)
    env = make_env(config)
    torch.manual_seed(0)
    model = ActorCritic.from_config(config, env.action_space.n).eval()
    seen = []
    original = model.forward
    model.forward = lambda state, hidden: seen.append(hidden.abs().sum().item()) or original(state, hidden)
    play_episode(model, env, seed=0, max_steps=10, memory=False)
    assert len(seen) == 10 and all(h == 0 for h in seen)
    seen.clear()
    play_episode(model, env, seed=0, max_steps=10)
    assert seen[0] == 0 and all(h > 0 for h in seen[1:])  # with memory, the GRU's state carries over


def test_trace_keeps_what_the_model_saw_and_said_at_every_step():
    config = A3CConfig(game="catch", height=32, width=32, grayscale=True)
    env = make_env(config)
    torch.manual_seed(0)
    model = ActorCritic.from_config(config, env.action_space.n).eval()
    result = play_episode(model, env, seed=0, trace=True)
    trace, T = result["trace"], result["length"]
    assert result["finished"] and trace["states"].shape == (T, 1, 32, 32) and trace["hiddens"].shape == (T, 256)
    assert trace["probs"].shape == (T, env.action_space.n) and abs(trace["probs"].sum(axis=1) - 1).max() < 1e-5
    assert trace["rewards"].sum() == result["reward"] and (trace["actions"] == trace["probs"].argmax(axis=1)).all()
    assert trace["hiddens"][0].abs().sum() == 0  # the state carried into step 0 is the initial one
    # feeding back what was traced gives what the model said: step 5 from its state and hidden state
    with torch.no_grad():
        logits, value, _ = model(torch.from_numpy(trace["states"][5]).unsqueeze(0), trace["hiddens"][5:6])
    assert abs(float(value) - trace["values"][5]) < 1e-5
    assert abs(torch.softmax(logits, -1)[0].numpy() - trace["probs"][5]).max() < 1e-6
    # the same game as without the trace
    assert play_episode(model, env, seed=0)["reward"] == result["reward"]
    with pytest.raises(ValueError, match="needs a model"):
        play_episode(None, env, seed=0, trace=True)


def test_the_evaluator_plays_sticky_games_that_differ_and_reports_the_step_count_it_loaded_at():
    GAMES = 5
    import multiprocessing as mp
    import queue as queue_module
    import threading

    from a3c_core.evaluator import evaluation_config, run_evaluator

    config = A3CConfig(game="pong", height=32, width=32, grayscale=True, hidden_size=16,
                       eval_steps_per_second=0, eval_frame_every=1, max_episode_steps=200)
    assert evaluation_config(config).sticky_action_prob == 0.25
    assert evaluation_config(config.replace(eval_sticky_action_prob=0.0)).sticky_action_prob == 0.0
    torch.manual_seed(0)
    model = ActorCritic.from_config(config, 6)
    with torch.no_grad():  # an untrained policy that changes its action with what it sees (a flat one would
        model.policy.weight.mul_(1000)  # repeat one action, and a repeated action is the same game with or without sticky actions)
    model.share_memory()
    steps, stop, queue = mp.Value("q", 1000), threading.Event(), queue_module.Queue()
    evaluator = threading.Thread(target=run_evaluator, args=(config, model, steps, stop, queue), daemon=True)
    evaluator.start()  # as the local backend runs it: a thread of the trainer's process

    def count_up():  # the workers' steps go on while the evaluator plays
        while not stop.is_set():
            with steps.get_lock():
                steps.value += 100
            stop.wait(0.05)

    threading.Thread(target=count_up, daemon=True).start()
    evals, frames = [], {}
    try:
        while len(evals) < GAMES:
            record = queue.get(timeout=120)
            if record["kind"] == "frame":
                frames.setdefault(record["episode"], []).append(record["frame"])
            else:
                assert record["kind"] == "eval", record
                evals.append(record)
    finally:
        stop.set()
        evaluator.join(30)
    assert not evaluator.is_alive()

    def same_game(a: list, b: list) -> bool:
        return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))

    # Pong has no randomness but sticky actions: without them every game would be the first one again.
    # With them two games of this untrained policy are still identical about 1 time in 12 (the policy
    # rarely changes its action, and a repeat of an unchanged action changes nothing), so the test
    # asks for a difference among GAMES games (all identical: about 1 time in 12**4)
    assert not all(same_game(frames[0], frames[episode]) for episode in range(1, GAMES))
    for record in evals:
        assert record["steps"] < record["end_steps"]  # x = the weights' step count, not the episode's end
