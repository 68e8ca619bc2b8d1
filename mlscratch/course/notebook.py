"""Small helpers the chapters share, so no notebook writes the same code twice.

- `report(**metrics)`: show a chapter's key numbers; `mlscratch chapters run` reads them back.
- `load_data(...)`, `load_characters(...)`: the splits / all characters, with a visible notice when
  they are synthetic glyphs rather than Omniglot.
- `setup(seed, device)`: seeds and the device to use; `mlscratch.measure.torch_threads(n)` for a fixed thread count.
- `train_and_evaluate(...)`: build, meta-train and test one algorithm: `mlscratch.experiment.run` in chapter terms.
"""

from __future__ import annotations

import os
import random

import torch

from ..data import load_splits
from ..data.splits import load_characters as load_all_characters
from ..device import resolve_device
from ..errors import ConfigError
from ..experiment import Experiment, Settings, run

METRICS_MIMETYPE = "application/vnd.mlscratch.metrics+json"


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where rich display works)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _plain(value: object) -> object:
    """Tensors and numpy scalars -> plain Python numbers, so the metrics are JSON."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        return value.item()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def format_metrics(metrics: dict) -> str:
    width = max(len(k) for k in metrics) if metrics else 0
    lines = []
    for name, value in metrics.items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        lines.append(f"{name:<{width}}  {shown}")
    return "\n".join(lines)


def report(**metrics: object) -> None:
    """Display key results of a chapter, e.g. `report(test_accuracy=91.3, train_seconds=180.2)`.

    In a notebook this is one output carrying both a readable text table and a JSON
    copy (mimetype `application/vnd.mlscratch.metrics+json`) that the chapter runner
    collects into its summary. Outside a notebook it prints the table.
    """
    clean = {name: _plain(value) for name, value in metrics.items()}
    text = format_metrics(clean)
    if in_notebook():
        from IPython.display import display

        display({METRICS_MIMETYPE: clean, "text/plain": text}, raw=True)
    else:
        print(text)


def notice(message: str, level: str = "warning") -> None:
    """A coloured box in a notebook (plain text elsewhere) that a reader cannot miss."""
    colours = {"warning": ("#fff3cd", "#856404"), "info": ("#e7f1ff", "#084298")}
    background, colour = colours.get(level, colours["info"])
    if in_notebook():
        from html import escape

        from IPython.display import display

        html = (
            f'<div style="background:{background};color:{colour};padding:8px 12px;border-radius:4px;'
            f'border:1px solid {colour}"><b>{level.upper()}:</b> {escape(message)}</div>'
        )
        display({"text/html": html, "text/plain": f"{level.upper()}: {message}"}, raw=True)
    else:
        print(f"{level.upper()}: {message}")


def is_synthetic(data: object) -> bool:
    """True for SyntheticGlyphs, or a dict of splits made from them."""
    parts = data.values() if isinstance(data, dict) else [data]
    return any(getattr(part, "meta", {}).get("dataset") == "synthetic" for part in parts)


def _say_where_from(data: object, dataset: str) -> None:
    if is_synthetic(data) and dataset != "synthetic":
        notice(
            "Omniglot was not found, so this chapter runs on the built-in SYNTHETIC glyphs. The code is the "
            "same, but the accuracies are not Omniglot results. Set MLSCRATCH_DATA to the folder with "
            "images_background.zip and images_evaluation.zip (or pass root=...) and rerun."
        )
    elif is_synthetic(data):
        notice("Running on the built-in synthetic glyphs (dataset='synthetic'), not on Omniglot.", level="info")


def load_data(
    dataset: str = "auto", protocol: str = "paper", root: str | None = None, image_size: int = 28, split_seed: int = 0
) -> dict:
    """Train/val/test `ClassImages` for a chapter (see `mlscratch.data.load_splits`).

    dataset: "auto" (real Omniglot when found, else synthetic glyphs), "omniglot",
    "synthetic", or a folder with one subfolder of images per class.
    When the result is synthetic, a notice says so: numbers from it are not Omniglot numbers.
    """
    splits = load_splits(dataset, protocol, root=root, image_size=image_size, split_seed=split_seed)
    _say_where_from(splits, dataset)
    return splits


def load_characters(dataset: str = "auto", root: str | None = None, image_size: int = 28):
    """All characters with their alphabets and drawers (`Omniglot` or `SyntheticGlyphs`), for a tour of the data."""
    characters = load_all_characters(dataset, root, image_size)
    if characters is None:
        raise ConfigError(f"{dataset!r} is a folder of class folders: it has no alphabets or drawers to tour")
    _say_where_from(characters, dataset)
    return characters


def describe_splits(splits: dict) -> str:
    """One line per split: classes (with rotations), images, image shape."""
    lines = []
    for name, split in splits.items():
        effective = f" ({split.n_effective_classes} with rotations)" if split.rotate else ""
        lines.append(
            f"{name:<5} {split.n_classes:>5} classes{effective}, {split.n_images:>6} images of "
            f"{'x'.join(map(str, split.image_shape))}"
        )
    return "\n".join(lines)


def setup(seed: int = 0, device: str = "auto", threads: int | None = None) -> torch.device:
    """Seed Python and torch and return the device ("auto": cuda when available, else cpu).

    Same seed -> the same tasks on every CPU (tasks drawn on a CUDA device differ) and the same initial weights;
    the same results on the same machine and build (another CPU's SIMD kernels round floats differently, so trained
    numbers move a little). On CUDA it also asks for deterministic kernels where they exist.
    """
    random.seed(seed)
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(device)
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    return device


def train_and_evaluate(
    splits: dict,
    algo: str = "maml",
    *,
    n_way: int = 5,
    k_shot: int = 1,
    k_query: int = 15,
    train_queries: int = 1,
    meta_batch: int = 32,
    iterations: int = 100,
    outer_lr: float = 1e-3,
    eval_tasks: int = 600,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    **hparams: object,
) -> Experiment:
    """Build `algo` with `hparams`, meta-train it on splits["train"] and test it on splits["test"].

    The chapters' name for `mlscratch.experiment.run`: the same settings and seed give the same numbers as
    `python -m mlscratch train`. train_queries: query images per class in training tasks (MAML's code uses
    k_shot); k_query: per class at test time.
    """
    settings = Settings(
        algo=algo,
        hparams=dict(hparams),
        ways=n_way,
        shots=k_shot,
        queries=train_queries,
        eval_queries=k_query,
        meta_batch=meta_batch,
        iterations=iterations,
        outer_lr=outer_lr,
        eval_tasks=eval_tasks,
        seed=seed,
    )
    setup(seed, device)
    return run(settings, splits, device=device, validate=False, progress=progress)
