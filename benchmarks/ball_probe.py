"""Can a model setting learn to *see* Pong's ball? A supervised probe: minutes instead of hours.

    .venv/bin/python benchmarks/ball_probe.py --settings 80gray 160color --minutes 3

Before A3C can improve a Pong policy, its convolutions must find the ball and the paddle: the one
useful move early on is "go towards the ball". This probe measures how fast a setting learns
exactly that, with labels instead of rewards. It records random play once; for every frame where
the ball is in play, the emulator's memory (RAM) gives the ball's and the agent's paddle's heights,
and the label is the move that tracks the ball: up (action 2) if the ball is more than 4 pixels
above the paddle's centre, down (action 3) if more than 4 below, else stay (action 0). The
package's own ``ActorCritic`` then learns those labels from the preprocessed frames with
``torch.optim.Adam`` and cross-entropy on its policy logits (one frame at a time, hidden state
zero). The score is the accuracy on held-out games (the last fifth of the frames or more), against
always guessing the commonest label.

Settings are ``<size><gray|color>[+center|+std]``: ``80gray`` is the fast preset's input,
``160color`` the write-up's; ``+center`` subtracts each channel's mean over the image first (what
``ActorCritic(center_input=True)`` does, the seed preset's default), ``+std`` also divides by the
state's standard deviation. Each setting runs in its own process with one torch thread,
``--parallel`` at a time (one per core), for the same wall time.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import re
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

from a3c_core.config import GAMES
from a3c_core.preprocess import CROP_TOP, preprocess

#: Pong's RAM: the ball's height (0 while no ball is in play) and the agent's (right) paddle's.
RAM_BALL_Y, RAM_PADDLE_Y = 54, 51
#: Row of the ball's centre in the frame is RAM_BALL_Y's value minus this; the paddle's centre likewise.
BALL_OFFSET, PADDLE_OFFSET = 47.5 - CROP_TOP, 41.0 - CROP_TOP
#: Dead zone in pixels within which the label is "stay".
DEAD_ZONE = 4.0
UP, DOWN, STAY = 2, 3, 0


def record_random_play(steps: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random Pong (frame skip 4, no sticky actions, as in training).

    Returns the frames with the ball in play ``(N, 210, 160, 3)`` uint8, their labels ``(N,)`` and
    the game each came from ``(N,)``.
    """
    env = gym.make(GAMES["pong"], frameskip=4, repeat_action_probability=0.0)
    ale = env.unwrapped.ale
    frames, labels, games = [], [], []
    game, recorded = 0, 0
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    while recorded < steps:
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        recorded += 1
        ram = ale.getRAM()
        if ram[RAM_BALL_Y] != 0:
            offset = (float(ram[RAM_BALL_Y]) - BALL_OFFSET) - (float(ram[RAM_PADDLE_Y]) - PADDLE_OFFSET)
            frames.append(obs)
            labels.append(UP if offset < -DEAD_ZONE else DOWN if offset > DEAD_ZONE else STAY)
            games.append(game)
        if terminated or truncated:
            game += 1
            obs, _ = env.reset()
    env.close()
    return np.stack(frames), np.asarray(labels), np.asarray(games)


def parse_setting(name: str) -> tuple[int, bool, str]:
    """``"80gray"`` -> (80, True, ""); ``"160color+center"`` -> (160, False, "center")."""
    match = re.fullmatch(r"(\d+)(gray|color)(?:\+(center|std))?", name)
    if not match:
        raise ValueError(f"setting {name!r} must look like 80gray, 160color or 160color+center")
    return int(match.group(1)), match.group(2) == "gray", match.group(3) or ""


def held_out(games: np.ndarray) -> np.ndarray:
    """Boolean mask ``(N,)`` of the frames kept for testing: whole games, the last fifth or more of the frames."""
    if games.max() < 1:
        raise ValueError("the recording holds a single game: record more steps (--steps) so that whole "
                         "games can be held out")
    return games >= max(1, games[int(0.8 * len(games))])


def train_setting(name: str, lr: float, minutes: float, batch: int, seed: int, data_path: str, queue) -> None:
    """Child process: train one setting for ``minutes``; send (name, seconds, updates, accuracy) every 15 s."""
    import torch
    import torch.nn.functional as F

    from a3c_core.model import ActorCritic, center_channels
    from a3c_core.processes import setup_child_process

    setup_child_process()
    torch.manual_seed(seed)
    size, gray, norm = parse_setting(name)
    data = np.load(data_path)
    states = torch.from_numpy(np.stack([preprocess(f, size, size, gray) for f in data["frames"]]))  # (N, C, H, W)
    if norm == "std":   # the model centres; dividing first by the centred state's spread scales that too
        states = states / center_channels(states).std(dim=(1, 2, 3), keepdim=True)
    labels = torch.from_numpy(data["labels"])
    test = held_out(data["games"])
    train_index, test_index = np.flatnonzero(~test), np.flatnonzero(test)
    model = ActorCritic(states.shape[1], 6, size, size, center_input=bool(norm))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)

    def accuracy() -> float:
        with torch.no_grad():
            logits, _, _ = model(states[test_index], model.initial_state(len(test_index)))
        return float((logits.argmax(-1) == labels[test_index]).float().mean())

    start, updates, next_report = time.monotonic(), 0, 0.0
    while (elapsed := time.monotonic() - start) < 60 * minutes:
        if elapsed >= next_report:
            queue.put((name, elapsed, updates, accuracy()))
            next_report += 15.0
        index = rng.choice(train_index, batch)
        logits, _, _ = model(states[index], model.initial_state(batch))
        loss = F.cross_entropy(logits, labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        updates += 1
    queue.put((name, time.monotonic() - start, updates, accuracy()))
    queue.put((name, None, updates, None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", default=["80gray", "160color"])
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--minutes", type=float, default=3.0, help="training time per setting")
    parser.add_argument("--batch", type=int, default=32, help="frames per update")
    parser.add_argument("--steps", type=int, default=8000, help="random-play steps to record")
    parser.add_argument("--parallel", type=int, default=2, help="settings trained at once (one per core)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default="runs/ball_probe_data.npz", help="recorded play (made if missing)")
    args = parser.parse_args()
    for name in args.settings:
        parse_setting(name)

    data_path = Path(args.data)
    if not data_path.exists():
        print(f"recording {args.steps:,} steps of random play into {data_path} ...", flush=True)
        frames, labels, games = record_random_play(args.steps, args.seed)
        data_path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(data_path, frames=frames, labels=labels, games=games)
    data = np.load(data_path)
    labels, games = data["labels"], data["games"]
    test = labels[held_out(games)]
    baseline = np.bincount(test).max() / len(test)
    print(f"{len(labels):,} frames with the ball in play, from {games.max() + 1} games (the last ones held out: "
          f"{len(test)} frames); labels up/down/stay {np.mean(labels == UP):.0%}/{np.mean(labels == DOWN):.0%}/"
          f"{np.mean(labels == STAY):.0%}; always guessing the commonest scores {baseline:.1%} held out")

    context = mp.get_context("spawn")
    queue = context.Queue()
    results: dict[str, list[tuple[float, int, float]]] = {}
    pending, running = list(args.settings), set()
    while pending or running:
        while pending and len(running) < args.parallel:
            name = pending.pop(0)
            context.Process(target=train_setting, args=(name, args.lr, args.minutes, args.batch, args.seed,
                                                        str(data_path), queue)).start()
            running.add(name)
        name, seconds, updates, acc = queue.get()
        if seconds is None:
            running.discard(name)
            continue
        results.setdefault(name, []).append((seconds, updates, acc))
        print(f"{name:>10}  {seconds / 60:4.2f} min  {updates:5d} updates  held-out accuracy {acc:.1%}", flush=True)

    columns = sorted({m for m in (0.5, 1, 2, 3, 5, 10) if m < args.minutes} | {args.minutes})
    print(f"\nheld-out accuracy (lr {args.lr:g}, batch {args.batch}; the commonest label alone: {baseline:.1%}):")
    print("| setting | updates in all | " + " | ".join(f"{m:g} min" for m in columns) + " |")
    print("|---|---:|" + "---:|" * len(columns))
    for name, points in results.items():
        cells = [f"{[a for s, _, a in points if s <= 60 * m + 1][-1]:.1%}" for m in columns]
        print(f"| {name} | {points[-1][1]} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
