"""Checkpoints: atomic writes, weights-only loading, clear errors for bad files."""

import pickle

import pytest
import torch

from a3c_core import A3CConfig, ActorCritic
from a3c_core.checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from a3c_core.shared import SharedAdam


def payload():
    config = A3CConfig.preset("fast", game="catch")
    model = ActorCritic.from_config(config, 3)
    return {"config": config.to_dict(), "model": model.state_dict(),
            "optimizer": SharedAdam(model.parameters()).state_dict(), "counters": {"steps": 12, "elapsed": 3.5},
            "history": {"evals": [{"steps": 10, "elapsed": 3.0, "score": 1.0, "reward": 1.0, "length": 45}]},
            "action_names": ["NOOP", "LEFT", "RIGHT"]}


def test_round_trip_and_no_temporary_files_left(tmp_path):
    path = save_checkpoint(tmp_path / "a.pt", payload())
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]
    loaded = load_checkpoint(path)
    assert loaded["counters"] == {"steps": 12, "elapsed": 3.5}
    assert loaded["history"]["evals"][0]["score"] == 1.0
    model, config, names = load_model(path)
    assert config == A3CConfig.preset("fast", game="catch") and names == ["NOOP", "LEFT", "RIGHT"]
    assert not model.training


def test_truncated_checkpoint_gives_a_clear_error(tmp_path):
    path = save_checkpoint(tmp_path / "a.pt", payload())
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable a3c-lab checkpoint"):
        load_checkpoint(tmp_path / "cut.pt")


class Sneaky:
    def __reduce__(self):
        return (print, ("this would run on load",))


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    torch.save({"format": "a3c-lab/1", "model": Sneaky()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="objects other than tensors"):
        load_checkpoint(tmp_path / "evil.pt")
    (tmp_path / "plain.pkl").write_bytes(pickle.dumps({"hello": 1}))
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "plain.pkl")


def test_a_file_of_another_kind_is_named_as_such(tmp_path):
    (tmp_path / "curve.csv").write_text("steps,score\n0,-21\n")
    with pytest.raises(CheckpointError, match="such as a curve's CSV") as caught:
        load_checkpoint(tmp_path / "curve.csv")
    assert str(caught.value).endswith("not a whole zip archive, which torch.save writes")


def test_a_foreign_torch_file_and_a_missing_file(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="expected format 'a3c-lab/2'"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nothing.pt")


def test_a_format_1_checkpoint_is_migrated_when_it_is_loaded(tmp_path):
    from a3c_core.checkpoint import FORMAT
    old = payload()
    for name in ("center_input", "eval_sticky_action_prob", "max_pool_frames"):
        del old["config"][name]
    torch.save({**old, "format": "a3c-lab/1"}, tmp_path / "old.pt")
    loaded = load_checkpoint(tmp_path / "old.pt")
    assert loaded["format"] == FORMAT
    assert (loaded["config"]["center_input"], loaded["config"]["eval_sticky_action_prob"],
            loaded["config"]["max_pool_frames"]) == (False, 0.0, False)


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path):
    path = save_checkpoint(tmp_path / "a.pt", payload())
    before = path.read_bytes()
    with pytest.raises(Exception):
        save_checkpoint(path, {"config": Sneaky(), "unpicklable": lambda: None})
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["a.pt"]


def test_export_keeps_a_small_play_only_copy(tmp_path):
    import json

    from a3c_core.checkpoint import export_agent

    full = save_checkpoint(tmp_path / "full.pt", payload())
    summary = export_agent(full, tmp_path / "agent.pt", {"command": "python -m a3c_core train ..."})
    small = load_checkpoint(tmp_path / "agent.pt")
    assert "optimizer" not in small and small["model"]["policy.weight"].dtype == torch.float16
    assert (tmp_path / "agent.pt").stat().st_size < 0.6 * full.stat().st_size
    assert json.loads((tmp_path / "agent.json").read_text()) == summary
    assert summary["steps"] == 12 and summary["final_evaluator_scores"] == [1.0] and summary["weights"] == "float16"
    assert (tmp_path / "agent-curve.csv").read_text().splitlines() == [
        "episode,steps,frames,minutes,score,reward,length,mean10", "0,10,10,0.05,1.0,1.0,45,1.0"]
    model, _, _ = load_model(tmp_path / "agent.pt")
    original = load_checkpoint(full)["model"]
    for name, tensor in model.state_dict().items():
        assert tensor.dtype == torch.float32
        torch.testing.assert_close(tensor, original[name], atol=1e-3, rtol=1e-3)


def test_export_can_keep_the_weights_as_trained(tmp_path):
    from a3c_core.checkpoint import export_agent

    full = save_checkpoint(tmp_path / "full.pt", payload())
    summary = export_agent(full, tmp_path / "agent.pt", float32=True)
    assert summary["weights"] == "float32" and "optimizer" not in load_checkpoint(tmp_path / "agent.pt")
    model, _, _ = load_model(tmp_path / "agent.pt")
    original = load_checkpoint(full)["model"]
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, original[name]), name


def test_an_agents_record_is_read_and_rewritten_whole(tmp_path, monkeypatch):
    import errno
    import os

    from a3c_core.checkpoint import export_agent, read_record, record_path, write_record

    full = save_checkpoint(tmp_path / "full.pt", payload())
    summary = export_agent(full, tmp_path / "agent.pt")
    assert record_path(tmp_path / "agent.pt") == tmp_path / "agent.json"
    assert read_record(tmp_path / "agent.pt") == summary
    write_record(tmp_path / "agent.pt", {**summary, "evaluation": {"episodes": 30}})
    assert read_record(tmp_path / "agent.pt")["evaluation"] == {"episodes": 30}
    before = (tmp_path / "agent.json").read_bytes()

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("a3c_core.checkpoint.os.fsync", no_space)
    with pytest.raises(CheckpointError, match="could not write the record .*agent.json: no space left on the "
                                              "device; the record as it was is untouched"):
        write_record(tmp_path / "agent.pt", {**summary, "evaluation": {"episodes": 31}})
    assert (tmp_path / "agent.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent-curve.csv", "agent.json", "agent.pt", "full.pt"]


def test_a_missing_or_foreign_record_is_one_sentence(tmp_path):
    from a3c_core.checkpoint import read_record

    with pytest.raises(CheckpointError, match=r"has no record .*none\.json: export the checkpoint first"):
        read_record(tmp_path / "none.pt")
    (tmp_path / "half.json").write_text('{"config": {"game": "pong"')
    with pytest.raises(CheckpointError, match=r"half\.json is not an agent's record \(not valid JSON"):
        read_record(tmp_path / "half.pt")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match=r"list\.json is not an agent's record \(it has no 'config'\)"):
        read_record(tmp_path / "list.pt")


@pytest.mark.parametrize("damage, named", [
    (lambda p: p["counters"].pop("steps"), "counters['steps'] is"),
    (lambda p: p.update(history=[1, 2]), "history is"),
    (lambda p: p["history"].update(evals=5), "history['evals'] is"),
    (lambda p: p.update(optimizer="garbage"), "optimizer is"),
    (lambda p: p.update(optimizer={"state": [], "param_groups": 7}), "optimizer is"),
])
def test_a_damaged_checkpoint_is_one_sentence_naming_the_part(tmp_path, damage, named):
    broken = payload()
    damage(broken)
    path = save_checkpoint(tmp_path / "a.pt", broken)
    with pytest.raises(CheckpointError, match=f"a.pt is damaged: {named.replace('[', '.').replace(']', '.')}"):
        load_checkpoint(path)


def test_an_optimizer_state_of_the_wrong_shape_is_refused_when_a_run_resumes(tmp_path):
    from a3c_core import Trainer
    broken = payload()
    broken["optimizer"]["state"] = {0: {"step": None, "exp_avg": "x"}}  # torch raises TypeError for this
    path = save_checkpoint(tmp_path / "run" / "checkpoints" / "step-000000000012.pt", broken)
    with pytest.raises(CheckpointError, match="its optimizer state does not fit the model"):
        Trainer.from_checkpoint(path, verbose=False)
