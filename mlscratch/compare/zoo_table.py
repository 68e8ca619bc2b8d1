"""The shipped trained models and the baselines in one table, each scored on the same fixed test tasks."""

from __future__ import annotations

import torch

from .. import zoo
from ..algorithms import ALGORITHMS, MetaLearner
from ..baselines import BASELINES
from ..data import ClassImages
from ..errors import ConfigError
from ..evaluation import mean_ci95
from ..experiment import Settings, load_data
from .entries import Entry, score
from .shipped_baseline import PRETRAIN_STEPS, cached_baseline


def zoo_model_for(entry: str, ways: int, shots: int) -> str:
    """A zoo model name, or the model of algorithm `entry` for the task shape (e.g. maml -> maml-5w1s)."""
    if entry in zoo.RECIPES:
        return entry
    if entry not in ALGORITHMS:
        choices = ", ".join([*ALGORITHMS, *BASELINES])
        raise ConfigError(f"unknown algorithm or zoo model {entry!r}; choose from: {choices} (or a zoo model name)")
    name = f"{entry}-{ways}w{shots}s"
    if name in zoo.RECIPES:
        return name
    trained = [n for n, r in zoo.RECIPES.items() if r.settings.algo == entry and r.settings.protocol == "paper"]
    if not trained:
        raise ConfigError(f"the zoo has no {entry} model; use --source scratch to train one")
    return trained[0]  # learners that score any task shape are tested at the asked shape


def load_entry(
    entry: str,
    ways: int | None = 5,
    shots: int = 1,
    root: str | None = None,
    pretrain_steps: int = PRETRAIN_STEPS,
    splits: dict[str, ClassImages] | None = None,
) -> tuple[str, MetaLearner, dict[str, ClassImages], dict]:
    """(name, learner ready to test, its data splits, its record) for a zoo model, algorithm or baseline.

    ways=None: any model of the algorithm, whatever the ways of its output layer (for `generalisation.shape_sweep`).
    splits: the data to test on (default: the model's own, loaded from its settings).
    Every zoo model is trained on the `paper` split (split_seed 0); the baselines use the same split.
    The record has the zoo's "result" (accuracies on the fixed test tasks), "iteration" and "train_seconds".
    """
    if entry in BASELINES:
        splits = splits or load_data(Settings(), root)
        learner, done = cached_baseline(entry, splits, pretrain_steps)
        record = {"iteration": done.get("iterations"), "train_seconds": done.get("seconds")}
        if "result" in done:  # the shipped baseline was measured on the fixed test tasks of its data and shape
            shape = done["result"]
            meta, size = splits["train"].meta, splits["train"].image_shape[-1]
            data = {
                "dataset": meta.get("dataset"),
                "protocol": meta.get("protocol"),
                "split_seed": meta.get("split_seed"),
            }
            record["result"] = shape
            record["settings"] = {**data, "image_size": size, "ways": shape["ways"], "shots": shape["shots"],
                                  "eval_queries": shape["queries"]}  # fmt: skip
        return entry, learner, splits, record
    name = zoo_model_for(entry, ways, shots)
    learner = zoo.load(name)
    if ways is not None and learner.n_way not in (None, ways):
        raise ConfigError(
            f"zoo model {name} has a {learner.n_way}-way output layer and cannot be tested {ways}-way; "
            f"use --ways {learner.n_way} or train a {ways}-way model (zoo recipes: {', '.join(zoo.RECIPES)})"
        )
    settings = Settings.from_dict(learner.zoo["settings"])
    return name, learner, splits or load_data(settings, root), learner.zoo


def stored_accuracies(
    record: dict, ways: int, shots: int, queries: int, tasks: int, test: ClassImages | None = None
) -> list[float] | None:
    """The zoo's own per-task accuracies when they are this comparison's first `tasks` fixed test tasks, else None.

    The zoo scored its model on the fixed test tasks of its recipe's shape and data, and `evaluate` draws whole
    batches of them and cuts the last, so the first `tasks` of them are the tasks a new evaluation would draw.
    test: the classes this comparison tests on (None: the model's own), checked to be the zoo's.
    """
    result, settings = record.get("result"), record.get("settings")
    if not result or not settings or "task_accuracies" not in result:
        return None
    if test is not None:
        meta = test.meta
        data = (meta.get("dataset"), meta.get("protocol"), meta.get("split_seed"), test.image_shape[-1])
        if data != (settings["dataset"], settings["protocol"], settings["split_seed"], settings["image_size"]):
            return None
    same_shape = (settings["ways"], settings["shots"], settings["eval_queries"]) == (ways, shots, queries)
    stored = result["task_accuracies"]
    return list(stored[:tasks]) if same_shape and tasks <= len(stored) else None


def compare_zoo(
    entries: list[str],
    ways: int = 5,
    shots: int = 1,
    queries: int = 15,
    tasks: int = 600,
    root: str | None = None,
    pretrain_steps: int = PRETRAIN_STEPS,
    remeasure: bool = False,
    splits: dict[str, ClassImages] | None = None,
) -> list[Entry]:
    """The shipped trained models and the baselines, each tested on the same `tasks` fixed test tasks.

    A zoo model's accuracies are the zoo's own measurement on these tasks when its shape and data match
    (remeasure=True scores it again); its latency is timed the one way every chapter times it (`entries.score`).
    splits: the data for every entry (default: each model's own; the baselines pretrain on its train split).
    """
    rows = []
    for entry in entries:
        name, learner, data, record = load_entry(entry, ways, shots, root, pretrain_steps, splits)
        test = splits["test"] if splits is not None else None
        stored = None if remeasure else stored_accuracies(record, ways, shots, queries, tasks, test)
        accuracies, latency, peak = score(learner, data["test"], ways, shots, queries, tasks, scored=stored is None)
        accuracies = stored if stored is not None else accuracies
        mean, ci = mean_ci95(torch.tensor(accuracies))
        paper = zoo.recipe(name).paper if name in zoo.RECIPES else None
        iterations, seconds = record.get("iteration"), record.get("train_seconds")
        rows.append(Entry(name, learner.name, mean, ci, accuracies, latency, peak, paper=paper,
                          train_seconds=seconds, iterations=iterations))  # fmt: skip
    return rows
