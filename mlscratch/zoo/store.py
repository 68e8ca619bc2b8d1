"""Shipped weights: one small file per model, inside the package, with its recipe, budget and measured accuracy.

A weights file is one `torch.save`d dict:
    name, algo, hparams        -> `build(algo, **hparams)` rebuilds the learner
    state                      -> its state_dict, floating tensors stored as float16
    settings                   -> the recipe's `experiment.Settings` as a dict
    iteration, train_seconds   -> the training budget it had (iterations done, seconds on `device`)
    result                     -> the evaluator's measurement after training, on the float16 weights:
                                  accuracy, ci95, n_tasks, task_accuracies (per test task, for paired checks)
Files are written atomically (`mlscratch.io`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import DataError
from ..io import atomic_save

FORMAT = 1
WEIGHTS = Path(__file__).resolve().parent / "weights"


def weights_path(name: str, folder: Path | None = None) -> Path:
    return (folder or WEIGHTS) / f"{name}.pt"


FULL_PRECISION = ("inner_adam_",)  # optimizer moments (~1e-8) would underflow in float16: kept in float32


def compact(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """float16 copies of the floating weights (half the size; the recorded accuracy is measured on them)."""

    def small(key: str, v: torch.Tensor) -> torch.Tensor:
        half = v.is_floating_point() and not any(marker in key for marker in FULL_PRECISION)
        return v.detach().cpu().half() if half else v.detach().cpu()

    return {k: small(k, v) for k, v in state.items()}


def expand(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def write(record: dict[str, Any], path: Path) -> Path:
    return atomic_save({"format": FORMAT, **record}, path)


def read(name: str, folder: Path | None = None) -> dict[str, Any]:
    """The weights record of zoo model `name`; DataError naming the file and the command that makes it."""
    path = weights_path(name, folder)
    fix = f"run `python -m mlscratch zoo train {name}` to (re)make it"
    if not path.is_file():
        raise DataError(f"zoo model {name!r} has no weights file at {path}; {fix}")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        raise DataError(f"zoo weights {path} are unreadable ({type(error).__name__}); {fix}") from error
    if not isinstance(record, dict) or record.get("format") != FORMAT or "state" not in record:
        raise DataError(f"{path} is not an mlscratch zoo weights file (format {FORMAT}); {fix}")
    return record
