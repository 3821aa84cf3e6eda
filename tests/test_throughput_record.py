"""Several games per worker, as measured: what notebook 04, the README and ``benchmarks/README.md`` say
about it is what ``benchmarks/throughput.py --games`` wrote to ``benchmarks/results/throughput_games.json``."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "benchmarks" / "results" / "throughput_games.json"


def two_workers() -> dict[int, int]:
    """games per worker -> agent steps/s of the fast preset's two workers on Pong, from the record."""
    record = json.loads(RECORD.read_text())
    assert record["game"] == "pong" and record["cores"] == 2 and record["repeats"] >= 3
    return {row["games_per_worker"]: row["steps_per_second"] for row in record["rows"]
            if row["preset"] == "fast" and row["processes"] == "2 workers"}


def test_the_record_measured_one_game_against_several_side_by_side():
    rates = two_workers()
    assert sorted(rates) == [1, 4, 8, 16]
    for games in (4, 8, 16):  # every measurement of one repeat alternates the game counts
        assert len([m for m in json.loads(RECORD.read_text())["measurements"] if m["games_per_worker"] == games]) >= 3


def test_notebook_04_states_the_measured_ratios():
    rates = two_workers()
    cells = json.loads((ROOT / "notebooks" / "04_loss.ipynb").read_text())["cells"]
    text = " ".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown").replace("\n", " ")
    found = re.search(r"played (\d\.\d)x as many Pong steps per second with eight games each as with one, "
                      r"and (\d\.\d)x with sixteen", text)
    assert found, "notebook 04 no longer states the measured ratios"
    assert found.groups() == (f"{rates[8] / rates[1]:.1f}", f"{rates[16] / rates[1]:.1f}")


def test_the_readmes_state_the_measured_steps_per_second():
    rates = [f"{steps:,}" for games, steps in sorted(two_workers().items())]
    for readme, joined in ((ROOT / "README.md", " | "), (ROOT / "benchmarks" / "README.md", " / ")):
        assert joined.join(rates) in readme.read_text(), f"{readme.name} does not give the measured rates {rates}"
