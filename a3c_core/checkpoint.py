"""Save and load training state safely.

A checkpoint is one ``torch.save`` dict: ``format``, ``config`` (a plain dict), ``model`` and
``optimizer`` state dicts, ``counters`` (steps, elapsed seconds) and ``history`` (the reward curves
so far, plain lists). An *exported* agent (:func:`export_agent`, the files in ``data/``) keeps only
what playing needs: no optimizer state, and the weights in float16. It is written to a temporary file in the same folder and then renamed, so a
crash mid-save never leaves a half-written checkpoint under the real name. Loading uses
``torch.load(weights_only=True)``: tensors and plain containers only, so a checkpoint from a
stranger cannot run code on your machine.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .config import A3CConfig
from .curves import curve_from_evals, curve_path, write_curve
from .model import ActorCritic

FORMAT = "a3c-lab/1"
REQUIRED_KEYS = ("format", "config", "model", "counters", "history")


class CheckpointError(RuntimeError):
    """A file that is not a readable a3c-lab checkpoint."""


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (with ``format`` added) to ``path`` atomically; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            torch.save({"format": FORMAT, **payload}, file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; a checkpoint is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is truncated, corrupt, unsafe to unpickle, or not an a3c-lab checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f"{path} is not a readable a3c-lab checkpoint (truncated, corrupt, or it holds "
                              f"objects other than tensors and plain data): {error}") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path} is not an a3c-lab checkpoint (expected format {FORMAT!r}, found {found!r})")
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise CheckpointError(f"{path} is missing {', '.join(missing)}")
    return payload


def load_model(path: str | os.PathLike) -> tuple[ActorCritic, A3CConfig, list[str]]:
    """The trained model of a checkpoint (in eval mode), its config and the game's action names."""
    payload = load_checkpoint(path)
    config = A3CConfig.from_dict(payload["config"])
    names = list(payload.get("action_names", []))
    n_actions = payload["model"]["policy.bias"].shape[0]
    model = ActorCritic.from_config(config, n_actions)
    model.load_state_dict(payload["model"])
    return model.eval(), config, names


def export_agent(checkpoint: str | os.PathLike, path: str | os.PathLike, extra: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
    """Write a small play-only copy of ``checkpoint``: float16 weights, config, counters, the evaluator's
    curve; no optimizer state. Beside ``path`` it also writes ``<name>-curve.csv`` (the evaluator's
    curve, :mod:`a3c_core.curves`) and ``<name>.json``: the summary it returns (config, steps,
    minutes, final evaluator scores, plus ``extra``, e.g. the command and the machine).
    """
    payload = load_checkpoint(checkpoint)
    evals = payload["history"].get("evals", [])
    small = {
        "config": payload["config"],
        "model": {name: tensor.half() if tensor.is_floating_point() else tensor
                  for name, tensor in payload["model"].items()},
        "counters": payload["counters"],
        "history": {"evals": evals},
        "action_names": payload.get("action_names", []),
    }
    save_checkpoint(path, small)
    config = A3CConfig.from_dict(payload["config"])
    write_curve(curve_path(path), curve_from_evals(evals, config.frames_per_step))
    summary = {
        "file": Path(path).name,
        "game": payload["config"]["game"],
        "steps": payload["counters"]["steps"],
        "minutes": round(payload["counters"]["elapsed"] / 60, 1),
        "evaluator_episodes": len(evals),
        "final_evaluator_scores": [e["score"] for e in evals[-10:]],
        "config": payload["config"],
        **(extra or {}),
    }
    Path(path).with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
