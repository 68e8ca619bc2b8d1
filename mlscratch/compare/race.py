"""The training race: each algorithm trained from scratch for the same seconds (and seeds), then scored."""

from __future__ import annotations

import copy
import datetime
import json
import os
import statistics
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from .. import zoo
from ..algorithms import ALGORITHMS, MetaLearner
from ..baselines import BASELINES, PretrainFinetune, class_batch
from ..data import ClassImages
from ..errors import ConfigError, DataError
from ..evaluation import mean_ci95
from ..experiment import Settings, build_learner, load_data, samplers
from ..measure import cpu_name, peak_memory
from ..training import fit
from .entries import Entry, check_disjoint, score
from .shipped_baseline import baseline


def scratch_settings(
    algo: str, ways: int, shots: int, queries: int, seed: int, data: dict | None = None, **hparams: object
) -> Settings:
    """The algorithm's zoo recipe for the shape (or its 5-way 1-shot one), as an open-ended run from scratch.

    data: other settings to replace (e.g. {"dataset": "synthetic", "image_size": 16}, {"protocol": "lake"})."""
    recipes = [r.settings for r in zoo.RECIPES.values() if r.settings.algo == algo and r.settings.protocol == "paper"]
    base = next(
        (s for s in recipes if (s.ways, s.shots) == (ways, shots)), recipes[0] if recipes else Settings(algo=algo)
    )
    values = {**base.to_dict(), "ways": ways, "shots": shots, "eval_queries": queries, "seed": seed, **(data or {})}
    values["hparams"] = {**base.hparams, **hparams}
    values["iterations"] = 10**9  # the clock stops training
    if base.train_ways is not None and base.train_ways < ways:
        values["train_ways"] = None
    return Settings.from_dict(values)


def train_scratch(
    algo: str, splits: dict[str, ClassImages], seconds: float, seed: int, shape: tuple[int, int, int],
    data: dict | None, progress: bool, **hparams: object,
) -> tuple[MetaLearner, float, int, int]:  # fmt: skip
    """One algorithm or baseline trained for `seconds`: (learner, seconds spent, iterations, peak bytes of one)."""
    if algo in BASELINES:
        learner, done = baseline(algo, splits["train"], seconds=seconds, seed=seed)
        if not isinstance(learner, PretrainFinetune):
            return learner, done.seconds, done.iterations, 0
        images, labels = class_batch(splits["train"], 64, torch.Generator().manual_seed(seed))
        loss = lambda: torch.nn.functional.cross_entropy(learner.backbone(images), labels).backward()  # noqa: E731
        return learner, done.seconds, done.iterations, peak_memory(loss)
    settings = scratch_settings(algo, *shape, seed, data, **hparams)
    torch.manual_seed(seed)
    learner = build_learner(settings, splits["train"].image_shape)
    train = samplers(settings, splits, torch.device("cpu"))["train"]
    tic = time.perf_counter()
    history = fit(learner, train, settings.iterations, outer_lr=settings.outer_lr, clip_grad=settings.clip_grad,
                  device="cpu", seed=seed, progress=progress, max_seconds=seconds)  # fmt: skip
    spent = time.perf_counter() - tic
    batch = train.sample()
    twin = copy.deepcopy(learner)  # one more meta-iteration, by the algorithm's own outer step, on a copy
    optimizer, _ = twin.configure_optimizer(settings.outer_lr, settings.iterations)
    peak = peak_memory(lambda: twin.outer_step(batch, optimizer, settings.clip_grad))
    return learner, spent, history.iteration[-1] if history.iteration else 0, peak


def compare_scratch(
    algos: list[str],
    seconds: float,
    seeds: int = 1,
    ways: int = 5,
    shots: int = 1,
    queries: int = 15,
    tasks: int = 600,
    root: str | None = None,
    progress: bool = False,
    data: dict | None = None,
    splits: dict[str, ClassImages] | None = None,
    **hparams: object,
) -> list[Entry]:
    """Each algorithm (or baseline) trained from scratch for the same `seconds`, `seeds` times, then tested.

    data: settings that replace the recipes' for every entry alike, e.g. {"protocol": "lake"}; splits: the data
    (default: loaded as `data` says). The classes of the train, val and test splits are checked to be disjoint
    before anything trains.
    """
    if not seconds > 0:
        raise ConfigError(f"--seconds must be positive, got {seconds!r}")
    for algo in algos:
        if algo not in ALGORITHMS and algo not in BASELINES:
            raise ConfigError(f"unknown algorithm {algo!r}; choose from: {', '.join([*ALGORITHMS, *BASELINES])}")
    splits = splits or load_data(Settings.from_dict({**Settings().to_dict(), **(data or {})}), root)
    check_disjoint(splits)
    rows = []
    for algo in algos:
        per_seed, spent, iterations, train_peak = [], [], [], 0
        for seed in range(seeds):
            learner, used, its, peak = train_scratch(algo, splits, seconds, seed, (ways, shots, queries), data,
                                                     progress, **hparams)  # fmt: skip
            spent.append(used)
            iterations.append(its)
            train_peak = max(train_peak, peak)
            upright = (data or {}).get("rotate") is False  # no turns anywhere: test upright too
            per_seed.append(score(learner, splits["test"], ways, shots, queries, tasks, upright=upright))
        task_accuracies = [statistics.fmean(values) for values in zip(*(s[0] for s in per_seed), strict=True)]
        mean, ci = mean_ci95(torch.tensor(task_accuracies))
        rows.append(
            Entry(
                algo,
                algo,
                mean,
                ci,
                task_accuracies,
                statistics.fmean(s[1] for s in per_seed),
                max(s[2] for s in per_seed),
                seed_accuracies=[statistics.fmean(s[0]) for s in per_seed],
                train_seconds=statistics.fmean(spent),
                iterations=round(statistics.fmean(iterations)),
                train_peak_bytes=train_peak or None,
            )
        )
    return rows


def plot_race(scratch: list[Entry], converged: list[Entry] = (), ax: object = None) -> object:
    """Accuracy against training seconds: each scratch entry (seed spread as error bar), joined to the same
    algorithm's converged zoo model when there is one; returns the figure."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.4))
    for i, row in enumerate(scratch):
        colour = f"C{i}"
        xs, ys = [max(row.train_seconds or 0.0, 0.1)], [row.accuracy]
        ax.errorbar(xs, ys, yerr=row.seed_spread or 0.0, marker="o", color=colour, capsize=3, label=row.name)
        done = [c for c in converged if c.algo == row.algo and c.train_seconds]
        if done:
            ax.plot([xs[0], done[0].train_seconds], [ys[0], done[0].accuracy], "--", color=colour)
            ax.scatter([done[0].train_seconds], [done[0].accuracy], marker="s", color=colour)
    ax.set_xscale("log")
    ax.set_xlabel("training seconds (log; squares: the converged models)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax.figure


STORED = Path(__file__).resolve().parent / "stored"  # package data: races trained and scored once, with 3+ seeds


def machine() -> dict:
    """The machine a stored measurement ran on (a busy machine trains less in the same seconds)."""
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": str(torch.__version__),
        "load_average": [round(x, 1) for x in os.getloadavg()],
    }


def race_record(by_protocol: dict[str, list[Entry]], settings: dict) -> dict:
    """A race as a JSON-able record: the rows per protocol, the settings that made it, and the machine it ran on."""
    rows = {protocol: [row.to_dict() for row in rows] for protocol, rows in by_protocol.items()}
    return {"settings": settings, "machine": machine(), "created": datetime.date.today().isoformat(), "protocols": rows}


def load_race(path: Path | str) -> tuple[dict[str, list[Entry]], dict]:
    """(rows per protocol, the whole record) of a stored race (`compare --source scratch --json FILE`)."""
    path = Path(path)
    fix = "make it again with `python -m mlscratch compare --source scratch ... --json FILE`"
    try:
        record = json.loads(path.read_text())
        rows = {protocol: [Entry.from_dict(row) for row in rows] for protocol, rows in record["protocols"].items()}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DataError(f"stored race {path} is missing or unreadable ({type(error).__name__}); {fix}") from error
    return rows, record
