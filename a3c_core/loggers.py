"""Optional experiment logs: TensorBoard event files and Weights & Biases (offline), neither required.

The trainer calls :func:`open_loggers` when it starts. Each logger is a listener
(:mod:`a3c_core.listeners`): it receives every report record from the trainer's reader thread and
writes the numbers :func:`scalars` names:

==========================  ====================================================================
``eval/score``              the greedy evaluator's game score per episode (``eval/reward``: shaped)
``train/reward``            a worker's training episode reward (``train/length``: its steps)
``loss/policy`` ...         a worker's averaged policy loss, value loss and entropy
``speed/frames_per_second`` emulator frames per second, which the trainer adds to every loss record
==========================  ====================================================================

The x axis is the number of emulator frames. TensorBoard files go to ``<run>/tensorboard`` when
the ``tensorboard`` package is installed (``tensorboard --logdir runs``); W&B runs in offline mode
under ``<run>/wandb`` when ``wandb`` is installed and ``config.wandb`` is true (``wandb sync`` uploads
them later, if you wish).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """The named numbers of one report record (none for frames and errors)."""
    kind = record["kind"]
    if kind == "eval":
        return {"eval/score": record["score"], "eval/reward": record["reward"], "eval/length": record["length"]}
    if kind == "episode":
        return {"train/reward": record["reward"], "train/length": record["length"]}
    if kind == "losses":
        values = {"loss/policy": record["policy_loss"], "loss/value": record["value_loss"],
                  "loss/entropy": record["entropy"]}
        if "grad_norm" in record:  # runs made before it was reported lack it
            values["loss/grad_norm"] = record["grad_norm"]
        if "frames_per_second" in record:
            values["speed/frames_per_second"] = record["frames_per_second"]
        return values
    return {}


class TensorBoardLogger:
    """Writes :func:`scalars` to TensorBoard event files in ``folder``."""

    def __init__(self, folder: Path, frames_per_step: int):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(folder))
        self.frames_per_step = frames_per_step

    def __call__(self, record: dict[str, Any]) -> None:
        frames = record.get("steps", 0) * self.frames_per_step
        for name, value in scalars(record).items():
            self.writer.add_scalar(name, value, frames)

    def close(self) -> None:
        self.writer.close()


class WandbLogger:
    """Logs :func:`scalars` to a Weights & Biases run in offline mode under ``folder``."""

    def __init__(self, folder: Path, frames_per_step: int, config: dict[str, Any], name: str):
        import wandb

        folder.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project="a3c-lab", name=name, config=config, dir=str(folder), mode="offline")
        self.frames_per_step = frames_per_step

    def __call__(self, record: dict[str, Any]) -> None:
        values = scalars(record)
        if values:
            self.run.log({**values, "frames": record.get("steps", 0) * self.frames_per_step})

    def close(self) -> None:
        self.run.finish()


def open_loggers(run_dir: Path, frames_per_step: int, config: dict[str, Any]) -> list[Any]:
    """The loggers available here: TensorBoard if installed, W&B if installed and ``config["wandb"]``."""
    loggers: list[Any] = []
    if importlib.util.find_spec("tensorboard") is not None:
        loggers.append(TensorBoardLogger(run_dir / "tensorboard", frames_per_step))
    if config.get("wandb"):
        if importlib.util.find_spec("wandb") is None:
            raise RuntimeError("wandb=True asks for Weights & Biases logging, but the wandb package is not "
                               "installed: pip install wandb (or leave wandb off)")
        loggers.append(WandbLogger(run_dir / "wandb", frames_per_step, config, run_dir.name))
    return loggers
