"""The numbers that notebooks 00, 01 and 05-09 state in their prose, checked on their own smoke runs.

Each test executes one notebook in smoke mode, as ``tests/test_notebooks.py`` does (same injected
parameters, same kernel, cwd ``notebooks/``), then runs one more cell in the same kernel that prints
the notebook's own variables as JSON, and checks them against what the text says. A claim that only
a full run can show (a whole Pong game, 30 games of section 3 in notebook 08) is not checked here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from a3c_core import A3CConfig, make_env
from a3c_core.curves import read_curve
from a3c_core.checkpoint import load_model, read_record
from a3c_core.evaluator import play_episode
from a3c_core.resources import core_limits
from test_notebooks import smoke_run

pytestmark = pytest.mark.slow  # pytest -m "not slow" leaves the notebook and browser runs out

ROOT = Path(__file__).resolve().parents[1]


def run_smoke(name: str, query: str, **options: Any) -> tuple[Any, str]:
    """The value of ``query`` after notebook ``name``'s smoke run, and everything the notebook printed
    (:func:`test_notebooks.smoke_run`, which ``options`` go to)."""
    run = smoke_run(name, query, **options)
    return run.value, run.text


def test_00_uses_one_torch_thread_as_it_says_and_shows_raw_frames(kernel_dir: Path) -> None:
    values, text = run_smoke("00_setup.ipynb", "{'threads': torch.get_num_threads(), "
                             "'shapes': {g: list(f.shape) for g, f in frames.items()}}")
    assert values["threads"] == 1
    assert "torch uses 1 thread in this kernel" in text
    assert f"this kernel may use {core_limits().describe()}" in text  # the cores the training cells' defaults use
    assert values["shapes"] == {"pong": [210, 160, 3], "space_invaders": [210, 160, 3], "catch": [210, 160, 3]}


def test_01_measures_the_rows_its_text_gives_and_each_crop_keeps_the_play(kernel_dir: Path) -> None:
    query = ("{'spans': {g: {thing: preprocess.row_spans(measured[g], colour) for thing, colour in "
             "preprocess.GAME_COLOURS[g].items()} for g in measured}, 'crops': preprocess.GAME_CROPS, "
             "'activity': activity, 'state': list(state.shape), 'observation': list(observation.shape), "
             "'mothership': mothership}")
    values, text = run_smoke("01_observations.ipynb", query)
    pong, invaders = values["spans"]["pong"], values["spans"]["space_invaders"]
    crops = {game: tuple(rows) for game, rows in values["crops"].items()}
    # Pong: "the score is in rows 1..20 and the top wall in rows 24..33 ... the bottom wall starts at row 194"
    assert pong["our paddle, our score"][0] == [1, 20] and pong["walls and ball"][0] == [24, 33]
    assert pong["walls and ball"][-1] == [194, 209]
    assert crops["pong"] == crops["catch"] == (35, 195)
    # Space Invaders: "the score ... in rows 10..19; the six rows of aliens start at row 31; the cannon
    # is in rows 185..194 and the ground from row 195"; rows 20..194 keep every alien row and the cannon
    assert invaders["left score"][0] == [10, 19]
    # "(and so is the mothership: not in that frame, but when it crosses the screen, in rows 12..19)"
    assert invaders["mothership"] == [] and values["mothership"][1] == [[12, 19]]
    assert f"first crosses at step {values['mothership'][0]:,}, rows 12..19" in text
    aliens = invaders["aliens"]
    assert len(aliens) == 6 and aliens[0][0] == 31
    assert [185, 194] in invaders["cannon, right score"] and invaders["ground"][0] == [195, 209]
    top, bottom = crops["space_invaders"]
    assert (top, bottom) == (20, 195)
    assert 19 < top <= aliens[0][0] and aliens[-1][1] < 185 and 194 < bottom
    assert aliens[0][0] < 35  # "Pong's crop, starting at row 35, would cut off the top of the first alien row"
    # "The play happens between the two dashed lines": the kept rows change most
    activity = values["activity"]
    assert activity["kept"] > 5 * max(activity["above"], activity["below"]), activity
    assert f"rows 0..34 change on average by {activity['above']:.2f}" in text
    assert values["state"] == values["observation"] == [3, 160, 160]


def test_05_the_pong_reference_is_a_sticky_action_run_that_breaks_out_where_the_text_says() -> None:
    # Section 3 trains Pong only when opted in; its text is about the reference curve it names, which
    # is read here: "sticky actions as in your run ... passed -15 only after about 3 million frames
    # (730,000 agent steps)".
    cells = ["".join(cell["source"]) for cell in json.loads(
        (ROOT / "notebooks" / "05_training_live.ipynb").read_text())["cells"]]
    path = re.search(r'reference=\{"shipped agent": "\.\./(data/[^"]+)"\}', "".join(cells))[1]
    record = read_record(ROOT / path.replace("-curve.csv", ".pt"))
    assert record["config"]["sticky_action_prob"] == A3CConfig.preset("fast", game="pong").sticky_action_prob == 0.25
    curve = read_curve(ROOT / path)
    first = int(np.flatnonzero(curve["mean10"] > -15)[0])
    assert round(curve["frames"][first] / 1e6) == 3 and round(curve["steps"][first], -4) == 730_000
    assert "passed -15 only after about 3 million frames (730,000 agent steps)" in " ".join("".join(cells).split())


def test_05_every_cell_after_a_stop_press_works_and_the_resumed_run_continues_the_checkpoint(
        kernel_dir: Path) -> None:
    press_stop = ("from a3c_core.dashboard import _OPEN\n"
                  "_OPEN[id(catch)].stop_button.click()  # a student presses Stop right after the start")
    query = ("{'checkpoint': str(checkpoint), 'exists': checkpoint.exists(), 'last': str(catch.last_checkpoint), "
             "'run_is_catch': run is catch, 'saved_steps': payload['counters']['steps'], "
             "'saved_evals': payload['history']['evals'], 'resumed_evals': resumed.history.evals, "
             "'resumed_steps': resumed.steps, 'resumed_state': resumed.status()['state'], 'pong': pong is None}")
    values, text = run_smoke("05_training_live.ipynb", query, after_tag="catch-dashboard", insert=press_stop,
                             parameters={"TRAIN_PONG": False})
    assert values["pong"] and values["run_is_catch"]  # Pong is opt-in: Run All trains only Catch
    assert values["exists"] and values["checkpoint"] == values["last"]  # stop() after Stop: the same checkpoint
    # "The curve continues where it stopped instead of starting over"
    assert f"resuming at {values['saved_steps']:,} steps" in text
    assert values["resumed_steps"] >= values["saved_steps"]
    saved = values["saved_evals"]
    assert values["resumed_evals"][:len(saved)] == saved
    assert values["resumed_state"] == "stopped"  # the last cell leaves no run behind
    assert "Traceback" not in text and "TypeError" not in text


def test_05_shows_each_workers_losses_and_gradient_norm_averaged_as_the_text_says(kernel_dir: Path) -> None:
    from a3c_core import A3CConfig, worker

    run = smoke_run("05_training_live.ipynb")  # the plain smoke run, shared with test_notebooks.py
    assert run.error is None, run.error
    prose = " ".join(cell.source for cell in run.nb.cells if cell.cell_type == "markdown")
    assert f"each averaged over {worker.LOSS_REPORT_EVERY} updates" in " ".join(prose.split())
    (cell,) = [cell for cell in run.nb.cells if cell.cell_type == "code" and "losses_figure(" in cell.source]
    assert [output.output_type for output in cell.outputs if "image/png" in output.get("data", {})] == ["display_data"]
    printed = "".join(output.get("text", "") for output in cell.outputs if output.output_type == "stream")
    reports = re.findall(r"worker (\d) at [\d,]+ steps: .* gradient norm ([\d.]+) \(max_grad_norm ([\d.]+)\)", printed)
    assert reports, printed  # 24 s of Catch make several reports per worker, even on a busy machine
    assert all(float(norm) > 0 and float(clip) == A3CConfig.preset("catch").max_grad_norm for _, norm, clip in reports)


def test_06_reads_its_own_game_and_your_checkpoint_of_the_game_it_names(kernel_dir: Path) -> None:
    query = ("{'sums': probs.sum(axis=1).tolist(), 'zoom': [int(zoom[0]), int(zoom[-1])], 'T': len(actions), "
             "'scored': scored.tolist(), 'names': names, 'found': [str(p) for p in found], "
             "'picked': my_config.game if found else None, 'MY_GAME': MY_GAME, 'ZOOM_STEPS': ZOOM_STEPS, "
             "'distinct': {' / '.join(row): n for row, n in distinct.items()}, 'GAMES': GAMES, "
             "'chosen': float(probs.max(axis=1).mean()), 'steps': record['steps'], 'minutes': record['minutes'], "
             "'final': record['evaluation']['agent']['mean'], 'sticky': [config.sticky_action_prob, "
             "memoriser_config.sticky_action_prob], 'AGENT': AGENT, 'SEED': SEED, "
             "'settled': curve['mean10'][-40:].tolist(), 'first': float(curve['frames'][curve['mean10'] > -15][0])}")
    values, text = run_smoke("06_watching_an_agent.ipynb", query)
    # "trained with sticky actions ... 4 million steps in about an hour ... it scores +18 on average"
    assert values["sticky"] == [0.25, 0.0]
    assert round(values["steps"] / 1e6) == 4 and 45 <= values["minutes"] <= 75 and round(values["final"]) == 18
    assert "final evaluation: 30 greedy games with sticky actions 0.25" in text
    # the curve: "for a long while nothing happens ... the mean of 10 settles between +15 and +18"
    assert values["first"] > 1.5e6 and 15 <= min(values["settled"]) and max(values["settled"]) < 18
    # "the same seed gives the same game every time, and another seed another game" (sticky actions on)
    model, config, _ = load_model(ROOT / "notebooks" / values["AGENT"])
    env = make_env(config)
    games = [[], [], []]
    for game, seed in zip(games, (values["SEED"], values["SEED"], values["SEED"] + 1)):
        play_episode(model, env, seed=seed, max_steps=300, on_step=lambda t, action, game=game: game.append(action))
    assert config.sticky_action_prob == 0.25 and games[0] == games[1] != games[2]
    assert values["names"] == ["NOOP", "FIRE", "RIGHT", "LEFT", "RIGHTFIRE", "LEFTFIRE"]
    assert all(abs(total - 1) < 1e-4 for total in values["sums"])  # a probability per action, stacked to 1
    first, last = values["zoom"]
    assert last - first + 1 <= values["ZOOM_STEPS"]  # the stacked plot shows a readable window ...
    assert last == (values["scored"][0] if values["scored"] else values["T"] - 1)  # ... up to the first point
    line = next(line for line in text.splitlines() if line.startswith("how often each action was chosen"))
    assert "np." not in line and "{'NOOP': " in line  # plain numbers, not NumPy reprs
    # "the newest checkpoint of your runs of MY_GAME": never a run of another game
    assert all(Path(path).parts[1].startswith(values["MY_GAME"] + "-") for path in values["found"])
    assert values["picked"] in (None, values["MY_GAME"])
    # section 3: "the chosen action has about a third on average"
    assert 0.25 <= values["chosen"] <= 0.42
    # section 5: "without sticky actions, every seed gave the same game, for both agents"; "with them, every
    # game was a different one" (the scores the text compares: tests/test_pretrained.py)
    assert values["GAMES"] >= 3 and len(values["distinct"]) == 4
    for row, count in values["distinct"].items():
        assert count == (1 if row.endswith("deterministic") else values["GAMES"]), row


def test_07_the_shaped_reward_is_what_the_text_says_and_the_agent_sees_its_own_crop(kernel_dir: Path) -> None:
    query = ("{'raw': raw.tolist(), 'shaped': shaped.tolist(), 'lives': lives.tolist(), "
             "'legend': [t.get_text() for t in axes[2].get_legend().get_texts()], "
             "'agent_rows': list(agent_env.get_wrapper_attr('rows')), 'old_rows': list(old_env.get_wrapper_attr('rows')), "
             "'new_rows': list(new_crop_env.get_wrapper_attr('rows')), 'own': own is not None, "
             "'agent': [agent_config.sticky_action_prob, agent_config.use_max_pool, record['evaluation']['episodes']], "
             "'returns_raw': [float(returns_raw.min()), float(returns_raw.max()), float(returns_raw.std())], "
             "'returns_shaped': [float(returns_shaped.min()), float(returns_shaped.max()), float(returns_shaped.std())]}")
    values, text = run_smoke("07_space_invaders.ipynb", query)
    raw, shaped, lives = values["raw"], values["shaped"], values["lives"]
    # "+0.1 per alien destroyed, -1 per life lost"; "The game score only goes up"
    for t, (points, reward) in enumerate(zip(raw, shaped)):
        assert reward == pytest.approx(0.1 * (points > 0) - (lives[t] - lives[t + 1]))
    assert min(raw) >= 0
    assert values["legend"] == ["game score (raw points)", "shaped return"]  # both lines of the twin axes
    line = next(line for line in text.splitlines() if line.startswith("points per hit"))
    assert "np." not in line
    # "the targets R_t are in the tens ... The shaped targets stay within about +-2"; "many times" the spread
    (raw_min, raw_max, raw_std), (shaped_min, shaped_max, shaped_std) = values["returns_raw"], values["returns_shaped"]
    assert raw_min >= 0 and raw_max >= 10 and -2 <= shaped_min and shaped_max <= 2
    assert raw_std > 10 * shaped_std
    # section 4: the shipped agent was trained with sticky actions, the max of two frames and the game's own
    # crop, and its record holds a 30-game final evaluation; the old agent keeps Pong's crop
    assert values["agent"] == [0.25, True, 30] and values["agent_rows"] == [20, 195]
    assert values["old_rows"] == [35, 195] and values["new_rows"] == [20, 195]
    assert values["own"]  # the smoke run covers the opt-in training too


def test_08_the_model_table_the_reference_numbers_and_the_progress_of_its_games(kernel_dir: Path) -> None:
    query = ("{'rows': [[p, f, first, total] for p, f, _, first, _, _, total in rows], "
             "'moved': [float(y0), float(x0)] != [float(y1), float(x1)], "
             "'progress': [progress.n, progress.total, len(agents), GAMES], "
             "'reach': {label: {str(level): None if (i := first_reach(c, level)) is None else "
             "[float(c['frames'][i]) / 1e6, float(c['minutes'][i])] for level in (-10, 0, 10, 18)} for label, c in curves.items()}, "
             "'best': {label: float(c['mean10'].max()) for label, c in curves.items()}, 'own': list(own_curves)}")
    values, text = run_smoke("08_one_frame_or_four.ipynb", query)
    table = {(preset, frames): (first, total) for preset, frames, first, total in values["rows"]}
    assert table["seed", 1][0] == "Conv2d(3, 8)" and table["seed", 4][0] == "Conv2d(12, 16)"
    assert table["fast", 4][0] == "Conv2d(4, 16)"
    for preset in ("seed", "fast"):  # "The 4-frame model is less than 1 % larger"
        assert table[preset, 1][1] < table[preset, 4][1] < 1.01 * table[preset, 1][1]
    assert values["moved"]  # section 1: the ball is in two places one step apart
    done, total, agents, games = values["progress"]
    assert done == total == agents * 2 * games and agents == 5
    reach, best = values["reach"], values["best"]

    def frames_at(label: str, level: int, digits: int = 1) -> float:
        """Millions of frames at which the mean of 10 first reached ``level``, as the text rounds them."""
        return round(reach[label][str(level)][0], digits)

    # section 4's text, from the mean of 10 games
    assert frames_at("fast, 4 frames", -10) == 5.0
    assert [frames_at("fast, 1 frame, seed 1", -10), frames_at("fast, 1 frame, seed 0", -10)] == [2.7, 3.3]
    assert reach["fast, 4 frames"]["10"] is None
    assert [frames_at("seed, 1 frame", level, 2) for level in (-10, 0, 10)] == [2.37, 3.05, 4.26]
    assert [frames_at("seed, 4 frames", level, 2) for level in (-10, 0, 10, 18)] == [2.32, 3.70, 6.02, 9.34]
    assert [label for label in reach if reach[label]["18"] is not None] == ["seed, 4 frames"]  # the only one
    assert [best["seed, 1 frame"], best["seed, 4 frames"]] == [pytest.approx(16.2), pytest.approx(19.6)]
    assert max(frames_at(label, -10) for label in reach if label.startswith("seed")) < \
        min(frames_at(label, -10) for label in reach if label.startswith("fast"))  # seed broke out sooner
    # the records' table: which games each agent trained on, the budget and the final evaluations
    rows = {line[:22].strip(): line[22:] for line in text.splitlines()
            if line[:22].strip() in reach and "x86_64" in line}  # the machine column
    for label in reach:
        trained_on = "sticky games" if label.startswith("seed") else "one game"
        assert trained_on in rows[label] and "not measured" not in rows[label], rows[label]
    assert "3.81M" in rows["seed, 1 frame"] and "3.81M" in rows["seed, 4 frames"]
    assert "+13.8 [" in rows["seed, 1 frame"] and "+17.6 [" in rows["seed, 4 frames"]
    assert "16-core" in rows["seed, 1 frame"] and "16-core" in rows["seed, 4 frames"]
    assert values["own"] == ["yours, 1 frame", "yours, 4 frames"]  # the smoke run covers the opt-in runs


def test_09_only_the_transport_differs_and_the_checkpoint_moves_between_backends(kernel_dir: Path) -> None:
    query = ("{'sizes': sizes, 'steps': [saved['counters']['steps'], resumed['counters']['steps']], "
             "'adam': [adam_steps_on_ray, adam_steps_after], 'evals': [len(ray_evals), len(local.history.evals)], "
             "'cores': cores_in_use, 'per_update': per_update, 'ratios': [speed_ratio, cpu_ratio]}")
    values, text = run_smoke("09_beyond_one_machine.ipynb", query)
    # section 2: the Ray worker runs the one loop with a ServerLink; the three transport changes are
    # in the two links' methods, each shown
    assert "while link.pull(model):" in text and "link.push(model, steps)" in text
    assert "return train(self.rank, self.config, ServerLink(self.server), self.queue)" in text
    for local_line, ray_line in (("model.load_state_dict(self.shared_model.state_dict())", "load_flat(model, self.weights)"),
                                 ("copy_gradients(model, self.shared_model)",
                                  "self.server.push.remote(flat_gradient(model), n_steps)"),
                                 ("count_steps(self.counter, n_steps)", "self.weights, self.steps, self.going = ray.get(")):
        assert local_line in text and ray_line in text, (local_line, ray_line)
    # section 3 and exercise 1's message: 4 bytes per parameter, 1.78 MB for the fast preset's 445,511 parameters
    assert values["sizes"]["fast"] == 445_511 and "1.78 MB each way" in text
    # section 4: the step count and Adam's update count go on, and the history came along
    assert values["steps"][1] > values["steps"][0] > 0
    assert values["adam"][1] > values["adam"][0] > 0
    assert values["evals"][1] >= values["evals"][0]
    # section 5, where the CPU goes: both backends keep the 2 cores busy, so speed follows CPU per update;
    # the Ray workers spend more per update than the local ones although the server does their Adam step,
    # and the server, the raylet and the mailbox each add a few milliseconds
    assert min(values["cores"].values()) >= 1.9
    speed_ratio, cpu_ratio = values["ratios"]
    assert speed_ratio < 0.9 and abs(speed_ratio - cpu_ratio) < 0.05
    local, on_ray = values["per_update"]["local"], values["per_update"]["ray"]
    assert on_ray["workers"] > local["workers"] and "parameter server" not in local
    assert all(1 <= on_ray[role] <= 10 for role in ("parameter server", "raylet", "mailbox"))
    # "the 16-core runs above are slower than local at every worker count"
    sixteen = json.loads((ROOT / "benchmarks" / "results" / "ray_overhead_16core.json").read_text())["rates"]
    assert "ray_overhead_16core.json: 16 cores" in text and len(sixteen) == 5
    assert all(max(rates["ray"]) < min(rates["local"]) for rates in sixteen.values())
