"""Checkpoints: everything needed to rebuild a learner, and to resume training exactly.

A checkpoint is one `torch.save`d dict:
    algo, hparams            -> `mlscratch.algorithms.build(algo, **hparams)` rebuilds the learner
    model                    -> its state_dict
    optimizer, schedule      -> the outer optimizer's and learning-rate schedule's states
    samplers, rng            -> the task-sampler generators and torch RNG
    iteration, history       -> where training stopped and what it saw
    metadata                 -> free-form settings (dataset, ways, shots, ...) the CLI records
Files are written atomically: a temporary file in the same folder, then `os.replace`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .algorithms import build
from .errors import ConfigError, DataError
from .io import atomic_save, write_json  # noqa: F401  (write_json: re-exported for the commands)

FORMAT_VERSION = 1


def save_checkpoint(
    path: str | Path,
    learner: torch.nn.Module,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    schedule: torch.optim.lr_scheduler.LRScheduler | None = None,
    samplers: dict[str, Any] | None = None,
    rng: dict | None = None,
    iteration: int = 0,
    history: dict | None = None,
    metadata: dict | None = None,
) -> Path:
    """Write a checkpoint (see the module docstring). `samplers` maps names to objects with `state_dict()`."""
    state = {
        "format": FORMAT_VERSION,
        "algo": learner.name,
        "hparams": dict(learner.hparams),
        "model": learner.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "schedule": schedule.state_dict() if schedule is not None else None,
        "samplers": {name: s.state_dict() for name, s in (samplers or {}).items()},
        "rng": rng,
        "iteration": iteration,
        "history": history,
        "metadata": dict(metadata or {}),
    }
    return atomic_save(state, path)


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """The raw checkpoint dict; ConfigError if missing, DataError if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"checkpoint {str(path)!r} not found; train one first "
            f"(python -m mlscratch train --checkpoint {path}) or fix the path"
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        raise DataError(
            f"checkpoint {str(path)!r} is unreadable ({type(error).__name__}); delete it and train again"
        ) from error
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise DataError(
            f"{str(path)!r} is not an mlscratch checkpoint (format {FORMAT_VERSION}); "
            "point to a file written by mlscratch train / save_checkpoint"
        )
    return state


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu", **overrides: Any) -> torch.nn.Module:
    """The trained learner, in eval mode on `device`, ready for `predict`.

    overrides: settings that replace the recorded ones (e.g. backbone=MyNet() for a custom backbone).
    Its `checkpoint_info` attribute holds the checkpoint's iteration, history and metadata.
    """
    state = read_checkpoint(path)
    learner = build(state["algo"], **{**state["hparams"], **overrides})
    learner.load_state_dict(state["model"])
    learner.checkpoint_info = {key: state[key] for key in ("iteration", "history", "metadata")}
    return learner.to(device).eval()
