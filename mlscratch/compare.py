"""Every algorithm on the same test tasks, with the statistics a careful reader expects.

    rows = compare_zoo(["maml-5w1s", "protonet-5w1s"])                 # the shipped trained models
    rows = compare_scratch(["maml", "fomaml"], seconds=60, seeds=3)     # equal wall-clock budget, from scratch
    print(format_table(rows))

Every entry is scored on the same fixed test tasks (`experiment.evaluation_tasks`), so two entries can be
compared task by task: the paired difference mean_t(acc_a(t) - acc_b(t)) with 1.96 std / sqrt(n) is much
tighter than two separate CIs. With several training seeds, the spread across seeds is reported next to
the task CI, which leaves seed variance out.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass, field

import matplotlib.pyplot as plt
import torch

from . import zoo
from .algorithms import ALGORITHMS, MetaLearner
from .data import ClassImages
from .errors import ConfigError
from .evaluation import evaluate, mean_ci95
from .experiment import Settings, build_learner, evaluation_tasks, load_data, samplers
from .notebook import peak_memory
from .training import fit


@dataclass
class Entry:
    """One compared model. Accuracies in percent; task_accuracies per fixed test task (mean over seeds)."""

    name: str
    algo: str
    accuracy: float
    ci95: float
    task_accuracies: list[float]
    latency: float  # seconds per test task
    peak_bytes: int  # test-time tensor memory of one task
    paper: float | None = None
    seed_accuracies: list[float] = field(default_factory=list)  # one per training seed (scratch)
    train_seconds: float | None = None
    iterations: int | None = None
    train_peak_bytes: int | None = None  # tensor memory of one meta-iteration (scratch)
    difference: float | None = None  # paired, to the reference, percentage points
    difference_ci95: float | None = None

    @property
    def seed_spread(self) -> float | None:
        return statistics.stdev(self.seed_accuracies) if len(self.seed_accuracies) > 1 else None

    def to_dict(self) -> dict:
        return {**asdict(self), "seed_spread": self.seed_spread}


def paired_difference(a: list[float], b: list[float]) -> tuple[float, float]:
    """Mean and 95% CI of the per-task differences a - b on the same tasks."""
    if len(a) != len(b) or not a:
        raise ConfigError(f"paired differences need results on the same tasks, got {len(a)} and {len(b)}")
    return mean_ci95(torch.tensor(a) - torch.tensor(b))


def score(
    learner: MetaLearner, classes: ClassImages, ways: int, shots: int, queries: int, tasks: int
) -> tuple[list[float], float, int]:
    """(per-task accuracies, seconds per task, peak bytes of one task) on the fixed test tasks."""
    device = next(learner.parameters()).device
    sampler = evaluation_tasks(classes, ways, shots, queries, device)
    result = evaluate(learner, sampler, tasks, per_step=False)
    one = sampler.sample(1)
    peak = peak_memory(lambda: learner.predict(*one[:3]), device)
    return result.task_accuracies, result.seconds_per_task, peak


def zoo_model_for(entry: str, ways: int, shots: int) -> str:
    """A zoo model name, or the model of algorithm `entry` for the task shape (e.g. maml -> maml-5w1s)."""
    if entry in zoo.RECIPES:
        return entry
    if entry not in ALGORITHMS:
        raise ConfigError(f"unknown algorithm or zoo model {entry!r}; choose from: {', '.join(ALGORITHMS)}")
    name = f"{entry}-{ways}w{shots}s"
    if name in zoo.RECIPES:
        return name
    trained = [n for n, r in zoo.RECIPES.items() if r.settings.algo == entry]
    if not trained:
        raise ConfigError(f"the zoo has no {entry} model; use --source scratch to train one")
    return trained[0]  # learners that score any task shape are tested at the asked shape


def compare_zoo(
    entries: list[str], ways: int = 5, shots: int = 1, queries: int = 15, tasks: int = 600, root: str | None = None
) -> list[Entry]:
    """The shipped trained models, each tested on the same `tasks` fixed test tasks of the given shape."""
    rows, splits = [], None
    for entry in entries:
        name = zoo_model_for(entry, ways, shots)
        learner = zoo.load(name)
        if learner.n_way not in (None, ways):
            raise ConfigError(
                f"zoo model {name} has a {learner.n_way}-way output layer and cannot be tested {ways}-way; "
                f"use --ways {learner.n_way} or train a {ways}-way model (zoo recipes: {', '.join(zoo.RECIPES)})"
            )
        splits = splits or load_data(Settings.from_dict(learner.zoo["settings"]), root)
        accuracies, latency, peak = score(learner, splits["test"], ways, shots, queries, tasks)
        mean, ci = mean_ci95(torch.tensor(accuracies))
        rows.append(
            Entry(
                name,
                learner.name,
                mean,
                ci,
                accuracies,
                latency,
                peak,
                paper=zoo.recipe(name).paper,
                train_seconds=learner.zoo.get("train_seconds"),
                iterations=learner.zoo.get("iteration"),
            )
        )
    return rows


def scratch_settings(
    algo: str, ways: int, shots: int, queries: int, seed: int, data: dict | None = None, **hparams: object
) -> Settings:
    """The algorithm's zoo recipe for the shape (or its 5-way 1-shot one), as an open-ended run from scratch.

    data: other settings to replace (e.g. {"dataset": "synthetic", "image_size": 16})."""
    recipes = [r.settings for r in zoo.RECIPES.values() if r.settings.algo == algo]
    base = next(
        (s for s in recipes if (s.ways, s.shots) == (ways, shots)), recipes[0] if recipes else Settings(algo=algo)
    )
    values = {**base.to_dict(), "ways": ways, "shots": shots, "eval_queries": queries, "seed": seed, **(data or {})}
    values["hparams"] = {**base.hparams, **hparams}
    values["iterations"] = 10**9  # the clock stops training
    if base.train_ways is not None and base.train_ways < ways:
        values["train_ways"] = None
    return Settings.from_dict(values)


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
    **hparams: object,
) -> list[Entry]:
    """Each algorithm trained from scratch for the same `seconds` of training, `seeds` times, then tested."""
    if not seconds > 0:
        raise ConfigError(f"--seconds must be positive, got {seconds!r}")
    rows, splits = [], None
    for algo in algos:
        if algo not in ALGORITHMS:
            raise ConfigError(f"unknown algorithm {algo!r}; choose from: {', '.join(ALGORITHMS)}")
        per_seed, spent, iterations, train_peak = [], [], [], 0
        for seed in range(seeds):
            settings = scratch_settings(algo, ways, shots, queries, seed, data, **hparams)
            splits = splits or load_data(settings, root)
            torch.manual_seed(seed)
            learner = build_learner(settings, splits["train"].image_shape)
            train = samplers(settings, splits, torch.device("cpu"))["train"]
            tic = time.perf_counter()
            history = fit(learner, train, settings.iterations, outer_lr=settings.outer_lr, clip_grad=settings.clip_grad,
                          device="cpu", seed=seed, progress=progress, max_seconds=seconds)  # fmt: skip
            spent.append(time.perf_counter() - tic)
            iterations.append(history.iteration[-1] if history.iteration else 0)
            batch = train.sample()
            train_peak = max(train_peak, peak_memory(lambda: learner.meta_loss(batch)[0].backward()))  # noqa: B023
            per_seed.append(score(learner, splits["test"], ways, shots, queries, tasks))
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
                train_peak_bytes=train_peak,
            )
        )
    return rows


def add_differences(rows: list[Entry], reference: str) -> list[Entry]:
    """Fill each entry's paired difference to the entry named (or of algorithm) `reference`."""
    match = [r for r in rows if reference in (r.name, r.algo)]
    if not match:
        raise ConfigError(f"reference {reference!r} is not among the compared: {', '.join(r.name for r in rows)}")
    for row in rows:
        row.difference, row.difference_ci95 = paired_difference(row.task_accuracies, match[0].task_accuracies)
    return rows


def format_table(rows: list[Entry], reference: str | None = None) -> str:
    """A plain-text table: accuracy ± CI, seed spread, paired difference, paper, latency, memory, training."""
    header = ["model", "accuracy", "seeds sd", f"vs {reference or 'ref'} (paired)", "paper", "ms/task", "MB"]
    header += ["training", "s/it", "train MB"]
    lines = [header]
    for r in rows:
        lines.append(
            [
                r.name,
                f"{r.accuracy:.2f} ± {r.ci95:.2f}",
                f"{r.seed_spread:.2f}" if r.seed_spread is not None else "-",
                f"{r.difference:+.2f} ± {r.difference_ci95:.2f}" if r.difference is not None else "-",
                f"{r.paper:.2f}" if r.paper is not None else "-",
                f"{1000 * r.latency:.1f}",
                f"{r.peak_bytes / 2**20:.1f}",
                f"{r.iterations:,} it, {r.train_seconds:.0f} s" if r.train_seconds is not None else "-",
                f"{r.train_seconds / r.iterations:.2f}" if r.train_seconds and r.iterations else "-",
                f"{r.train_peak_bytes / 2**20:.1f}" if r.train_peak_bytes else "-",
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def plot(rows: list[Entry], ax: object = None) -> object:
    """Accuracy with its task CI (and paper figures as crosses), one bar per model; returns the figure."""
    if ax is None:
        _, ax = plt.subplots(figsize=(1.2 * len(rows) + 2, 3.2))
    names = [r.name for r in rows]
    ax.bar(names, [r.accuracy for r in rows], yerr=[r.ci95 for r in rows], color="#4c72b0", capsize=3)
    papers = [(i, r.paper) for i, r in enumerate(rows) if r.paper is not None]
    if papers:
        ax.scatter(*zip(*papers, strict=True), marker="x", color="black", zorder=3, label="paper")
        ax.legend(loc="lower right")
    low = min(r.accuracy - r.ci95 for r in rows)
    ax.set_ylim(max(0, math.floor(low / 5) * 5 - 5), 100)
    ax.set_ylabel("test accuracy (%)")
    ax.tick_params(axis="x", rotation=30)
    ax.figure.tight_layout()
    return ax.figure
