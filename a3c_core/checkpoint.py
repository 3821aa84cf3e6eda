"""Run storage, the files: checkpoints (save, load, migrate, resume) and the exported agents with
their records.

A checkpoint is one ``torch.save`` dict: ``format``, ``config`` (a plain dict), ``model`` and
``optimizer`` state dicts, ``counters`` (steps, elapsed seconds) and ``history`` (the reward curves
so far, plain lists). An *exported* agent (:func:`export_agent`, the files in ``data/``) keeps only
what playing needs: no optimizer state, and the weights in float16 unless asked to keep float32 (a
greedy policy can lose points to the rounding: benchmarks/HISTORY.md); its record, ``<name>.json``
beside it (:func:`read_record`), says how it was trained and, once evaluated, how well it plays. A
checkpoint or a record is written to a temporary file in the same folder and then renamed, so a
crash mid-save never leaves a half-written file under the real name. Loading uses
``torch.load(weights_only=True)``: tensors and plain containers only, so a checkpoint from a
stranger cannot run code on your machine. Older formats are migrated on loading
(:data:`MIGRATIONS`), keyed on the format version they carry.

Where a run's checkpoints go (their names, their rotation, the folder's lock) is
:mod:`a3c_core.run_folder`'s.
"""

from __future__ import annotations

import errno
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any, Callable

import torch

from .config import A3CConfig
from .curves import curve_from_evals, curve_path, write_curve
from .files import atomic_write, check_writable
from .model import ActorCritic

FORMAT = "a3c-lab/2"
REQUIRED_KEYS = ("format", "config", "model", "counters", "history")


def _from_format_1(payload: dict[str, Any]) -> dict[str, Any]:
    """Format 1 (before 2026-11-26) had no input centring, no max-pooled frames, cropped every game to
    rows 35..194 and evaluated on deterministic games."""
    config = {"center_input": False, "eval_sticky_action_prob": 0.0, "max_pool_frames": False,
              "crop_top": 35, "crop_bottom": 195, **payload["config"]}
    return {**payload, "config": config, "format": FORMAT}


#: format version -> the function that lifts a payload of that version to the next one.
MIGRATIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {"a3c-lab/1": _from_format_1}


class CheckpointError(RuntimeError):
    """A file that is not a readable a3c-lab checkpoint or agent record, or that cannot be written."""


def _write_atomically(path: Path, data: bytes | memoryview, what: str, kept: str) -> Path:
    """Write ``data`` to ``path`` whole or not at all (:func:`files.atomic_write`). ``what`` and ``kept``
    make the one-sentence ``CheckpointError``: "could not write {what} PATH: REASON; {kept}"."""
    try:
        with atomic_write(path) as tmp:
            tmp.write_bytes(data)
    except OSError as error:
        reason = "no space left on the device" if error.errno == errno.ENOSPC else error.strerror or str(error)
        raise CheckpointError(f"could not write {what} {path}: {reason}; {kept}") from error
    return path


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (with ``format`` added) to ``path`` atomically; return the path.

    Raises ``CheckpointError`` with one sentence (the disk is full, the folder is not writable)
    and leaves every earlier file as it was.
    """
    buffer = io.BytesIO()  # serialised first, so that a write error is the operating system's own
    torch.save({"format": FORMAT, **payload}, buffer)
    return _write_atomically(Path(path), buffer.getbuffer(), "the checkpoint",
                             "the earlier checkpoints are untouched")


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is truncated, corrupt, unsafe to unpickle, or not an a3c-lab checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    unreadable = f"{path} is not a readable a3c-lab checkpoint (truncated, corrupt, or"
    if not zipfile.is_zipfile(path):  # torch.save writes zip archives; torch's own error would be cryptic
        raise CheckpointError(f"{unreadable} another kind of file, such as a curve's CSV): it is not a whole "
                              "zip archive, which torch.save writes")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f"{unreadable} it holds objects other than tensors and plain data): {error}") from error
    while isinstance(payload, dict) and payload.get("format") in MIGRATIONS and "config" in payload:
        payload = MIGRATIONS[payload["format"]](payload)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path} is not an a3c-lab checkpoint (expected format {FORMAT!r}, found {found!r})")
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise CheckpointError(f"{path} is not a complete a3c-lab checkpoint: it lacks {', '.join(missing)}")
    damaged = damaged_parts(payload)
    if damaged:
        raise CheckpointError(f"{path} is damaged: {', '.join(damaged)} {'is' if len(damaged) == 1 else 'are'} "
                              "not what an a3c-lab checkpoint holds there")
    return payload


def damaged_parts(payload: dict[str, Any]) -> list[str]:
    """The parts of a checkpoint's ``payload`` whose kind is wrong (a hand-edited or damaged file)."""
    kinds = {"config": dict, "model": dict, "counters": dict, "history": dict, "optimizer": dict}
    damaged = [key for key, kind in kinds.items() if key in payload and not isinstance(payload[key], kind)]
    if "counters" not in damaged:
        damaged += [f"counters[{key!r}]" for key in ("steps", "elapsed")
                    if not isinstance(payload["counters"].get(key), (int, float))]
    if "history" not in damaged:
        damaged += [f"history[{key!r}]" for key, value in payload["history"].items() if not isinstance(value, list)]
    if "optimizer" in payload and "optimizer" not in damaged and not (
            isinstance(payload["optimizer"].get("state"), dict) and isinstance(payload["optimizer"].get("param_groups"), list)):
        damaged.append("optimizer")
    return damaged


def save_run(path: str | os.PathLike, config: A3CConfig, model: ActorCritic, optimizer: torch.optim.Optimizer,
             counters: dict[str, float], history: dict[str, Any], action_names: list[str]) -> Path:
    """A run's checkpoint: all that a resume needs. Weights that are not finite (a diverged run) are
    never written over the good checkpoints before them: ``CheckpointError``."""
    if not all(torch.isfinite(p).all() for p in model.parameters()):
        raise CheckpointError(f"the model's weights are not finite at step {counters['steps']:,} (the run diverged): "
                              "not saved, the earlier checkpoints are the good ones")
    return save_checkpoint(path, {"config": config.to_dict(), "model": model.state_dict(),
                                  "optimizer": optimizer.state_dict(), "counters": counters, "history": history,
                                  "action_names": action_names})


def load_run(path: str | os.PathLike, **overrides: Any) -> tuple[A3CConfig, dict[str, Any]]:
    """A run checkpoint's config with a resumed run's ``overrides`` (:meth:`A3CConfig.resumed`), and its payload."""
    payload = load_checkpoint(path)
    if "optimizer" not in payload:
        raise CheckpointError(f"{path} is a play-only export (no optimizer state): play it with "
                              f"checkpoint.load_model, or resume from a checkpoint in a run folder")
    return stored_config(path, payload).resumed(**overrides), payload


def restore_run(path: str | os.PathLike, payload: dict[str, Any], model: ActorCritic,
                optimizer: torch.optim.Optimizer) -> None:
    """Load a run checkpoint's weights and Adam state; what does not fit raises ``CheckpointError``."""
    load_weights(model, path, payload["model"])
    try:
        optimizer.load_state_dict(payload["optimizer"])
    except (ValueError, KeyError, RuntimeError, TypeError, AttributeError) as error:
        raise CheckpointError(f"{path}: its optimizer state does not fit the model: {error}") from error


def stored_config(path: str | os.PathLike, payload: dict[str, Any], **overrides: Any) -> A3CConfig:
    """The config a checkpoint was saved with (``overrides`` applied); a value that cannot work raises
    ``CheckpointError`` naming the file and the field."""
    try:
        return A3CConfig.from_dict({**payload["config"], **overrides})
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{path} holds a config that cannot be used: {error}") from error


def load_weights(model: ActorCritic, path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Load ``state`` into ``model``; weights of another shape or game raise ``CheckpointError``."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError) as error:
        raise CheckpointError(f"{path}: its weights do not fit the model its config describes (another game "
                              f"or model size?): {str(error).splitlines()[0]}") from error


def load_model(path: str | os.PathLike) -> tuple[ActorCritic, A3CConfig, list[str]]:
    """The trained model of a checkpoint (in eval mode), its config and the game's action names."""
    payload = load_checkpoint(path)
    config = stored_config(path, payload)
    names = list(payload.get("action_names", []))
    if "policy.bias" not in payload["model"]:
        raise CheckpointError(f"{path}: its weights are not an a3c-lab model's (no policy layer)")
    model = ActorCritic.from_config(config, payload["model"]["policy.bias"].shape[0])
    load_weights(model, path, payload["model"])
    return model.eval(), config, names


def export_agent(checkpoint: str | os.PathLike, path: str | os.PathLike, extra: dict[str, Any] | None = None,
                 float32: bool = False) -> dict[str, Any]:
    """Write a small play-only copy of ``checkpoint``: the weights (float16, or as trained with
    ``float32``), config, counters, the evaluator's curve; no optimizer state. Beside ``path`` it also
    writes ``<name>-curve.csv`` (the evaluator's curve, :mod:`a3c_core.curves`) and ``<name>.json``:
    the summary it returns (config, steps, minutes, final evaluator scores, the weights' precision,
    plus ``extra``, e.g. the command and the machine).
    """
    if Path(path).suffix != ".pt":
        raise CheckpointError(f"an agent is written as a .pt file (its record goes beside it as .json), got {path}")
    if Path(path).resolve() == Path(checkpoint).resolve():
        raise CheckpointError(f"{path} is the checkpoint itself: an export replaces it with a play-only copy "
                              "(the run could not resume); choose another name")
    check_writable(path, "the agent")
    load_model(checkpoint)  # refuses a checkpoint whose weights do not fit its config before anything is written
    payload = load_checkpoint(checkpoint)
    evals = payload["history"].get("evals", [])
    small = {
        "config": payload["config"],
        "model": {name: tensor.half() if tensor.is_floating_point() and not float32 else tensor
                  for name, tensor in payload["model"].items()},
        "counters": payload["counters"],
        "history": {"evals": evals},
        "action_names": payload.get("action_names", []),
    }
    save_checkpoint(path, small)
    config = stored_config(checkpoint, payload)
    write_curve(curve_path(path), curve_from_evals(evals, config.frames_per_step))
    summary = {
        "file": Path(path).name,
        "game": payload["config"]["game"],
        "steps": payload["counters"]["steps"],
        "minutes": round(payload["counters"]["elapsed"] / 60, 1),
        "evaluator_episodes": len(evals),
        "final_evaluator_scores": [e["score"] for e in evals[-10:]],
        "weights": "float32" if float32 else "float16",
        "config": payload["config"],
        **(extra or {}),
    }
    write_record(path, summary)
    return summary


def record_path(agent: str | os.PathLike) -> Path:
    """Where an exported agent's record lies: ``data/pong-fast.pt`` -> ``data/pong-fast.json``."""
    return Path(agent).with_suffix(".json")


def read_record(agent: str | os.PathLike) -> dict[str, Any]:
    """The record of an exported agent: :func:`export_agent`'s summary (config, steps, minutes, the
    evaluator's last scores, machine, command), with ``evaluation`` once ``python -m a3c_core evaluate
    AGENT --save-record`` has written its final evaluation into it."""
    path = record_path(agent)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{agent} has no record {path}: export the checkpoint first (python -m a3c_core "
                              "export CHECKPOINT AGENT.pt writes the agent and its record)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is not an agent's record (not valid JSON: {error})") from None
    if not isinstance(record, dict) or "config" not in record:
        raise CheckpointError(f"{path} is not an agent's record (it has no 'config')")
    return record


def write_record(agent: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Write ``record`` as ``agent``'s record (:func:`record_path`), atomically; return its path."""
    return _write_atomically(record_path(agent), (json.dumps(record, indent=2) + "\n").encode(), "the record",
                             "the record as it was is untouched")
