"""Every algorithm on the same test tasks, with the statistics a careful reader expects.

    rows = compare_zoo(["maml-5w1s", "protonet-5w1s", "pixel-nn"])    # the shipped trained models, baselines
    rows = compare_scratch(["maml", "fomaml"], seconds=60, seeds=3)     # equal wall-clock budget, from scratch
    print(format_table(rows))

Accuracy against the test task shape and across domains is in `mlscratch.generalisation`.
The two baselines of `mlscratch.baselines` ("pixel-nn", "pretrain-finetune") are entries like any algorithm.

Every entry is scored on the same fixed test tasks (`experiment.evaluation_tasks`), so two entries can be
compared task by task: the paired difference mean_t(acc_a(t) - acc_b(t)) with 1.96 std / sqrt(n) is much
tighter than two separate CIs. With several training seeds, the spread across seeds is reported next to
the task CI, which leaves seed variance out.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from . import zoo
from .algorithms import ALGORITHMS, MetaLearner
from .baselines import BASELINES, PixelNearestNeighbour, PretrainFinetune, Pretraining, class_batch, pretrain
from .data import ClassImages
from .errors import ConfigError, DataError
from .evaluation import evaluate, mean_ci95
from .experiment import Settings, build_learner, evaluation_tasks, load_data, samplers
from .io import atomic_save
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
    parameter = next(learner.parameters(), None)  # pixel-nn has none
    device = parameter.device if parameter is not None else torch.device("cpu")
    sampler = evaluation_tasks(classes, ways, shots, queries, device)
    result = evaluate(learner, sampler, tasks, per_step=False)
    one = sampler.sample(1)
    peak = peak_memory(lambda: learner.predict(*one[:3]), device)
    return result.task_accuracies, result.seconds_per_task, peak


PRETRAIN_STEPS = 3000  # batches of 64 for the zoo's pretrain-finetune (about 10 minutes on a laptop CPU core)
BASELINE_CACHE = Path("runs") / "baselines"
SHIPPED_BASELINES = zoo.store.WEIGHTS / "baselines"  # package data: the default pretrain-finetune, pretrained once
LATENCY_TASKS = 10  # test tasks timed when the accuracies come from the zoo's own measurement


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
    trained = [n for n, r in zoo.RECIPES.items() if r.settings.algo == entry]
    if not trained:
        raise ConfigError(f"the zoo has no {entry} model; use --source scratch to train one")
    return trained[0]  # learners that score any task shape are tested at the asked shape


def check_disjoint(splits: dict[str, ClassImages]) -> None:
    """ConfigError unless train, val and test share no class (and, under `lake`, no alphabet)."""
    names = {split: set(part.names) for split, part in splits.items()}
    levels = [("characters", names)]
    if splits["test"].meta.get("protocol") == "lake":
        levels.append(("alphabets", {split: {n.split("/")[0] for n in ns} for split, ns in names.items()}))
    for level, sets in levels:
        for first, second in (("train", "test"), ("val", "test"), ("train", "val")):
            shared = sets[first] & sets[second]
            if shared:
                raise ConfigError(
                    f"{first} and {second} share {len(shared)} {level} (e.g. {sorted(shared)[0]}): a model would be "
                    "tested on what it was trained on; use load_splits, whose protocols keep the splits disjoint"
                )


def baseline(
    name: str, train: ClassImages, steps: int | None = None, seconds: float | None = None, seed: int = 0
) -> tuple[MetaLearner, Pretraining]:
    """A baseline ready to test: pixel-nn as is, pretrain-finetune pretrained on `train` (steps or seconds)."""
    if name == PixelNearestNeighbour.name:
        return PixelNearestNeighbour(), Pretraining(0, 0.0, float("nan"))
    torch.manual_seed(seed)
    learner = PretrainFinetune(train.n_classes, train.image_shape[0], train.image_shape[-1])
    return learner, pretrain(learner, train, steps=steps, seconds=seconds, seed=seed)


def baseline_file(name: str, splits: dict[str, ClassImages], steps: int) -> str:
    """The file name of a pretrained baseline: the data it was pretrained on and its steps say which one it is."""
    meta = splits["train"].meta
    data = f"{meta.get('dataset')}-{meta.get('protocol')}{meta.get('split_seed')}-{splits['train'].image_shape[-1]}px"
    return f"{name}-{data}-{steps}steps.pt"


def read_baseline(path: Path) -> tuple[PretrainFinetune, dict]:
    """(learner, record) of a pretrained baseline file; DataError naming the file and the fix if unreadable."""
    fix = "delete it to pretrain again, or run `python -m mlscratch zoo train pretrain-finetune`"
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
        learner = PretrainFinetune(**record["hparams"])
        learner.load_state_dict(zoo.store.expand(record["state"]))
    except Exception as error:  # a damaged file raises many types
        raise DataError(f"pretrained baseline {path} is unreadable ({type(error).__name__}); {fix}") from error
    return learner.eval(), record


def save_baseline(learner: PretrainFinetune, done: Pretraining, path: Path, **extra: object) -> dict:
    """Write a pretrained baseline as float16 weights (atomically) and load those weights back into `learner`."""
    state = zoo.store.compact(learner.state_dict())
    record = {"name": learner.name, "hparams": learner.hparams, "state": state, "pretraining": asdict(done), **extra}
    atomic_save(record, path)
    learner.load_state_dict(zoo.store.expand(record["state"]))  # test exactly what was saved
    learner.eval()
    return record


def cached_baseline(name: str, splits: dict[str, ClassImages], steps: int = PRETRAIN_STEPS) -> tuple[MetaLearner, dict]:
    """`baseline` pretrained for `steps` batches once, then read back (same data, same steps: same weights).

    Looked up in the package's shipped weights (SHIPPED_BASELINES: the default 3,000 steps on Omniglot `paper`),
    then in BASELINE_CACHE; else pretrained here and kept in BASELINE_CACHE.
    """
    if name == PixelNearestNeighbour.name:
        return baseline(name, splits["train"])[0], {}
    file = baseline_file(name, splits, steps)
    for place in (SHIPPED_BASELINES, BASELINE_CACHE):
        if (place / file).is_file():
            learner, record = read_baseline(place / file)
            return learner, record["pretraining"]
    learner, done = baseline(name, splits["train"], steps=steps)
    return learner, save_baseline(learner, done, BASELINE_CACHE / file)["pretraining"]


def ship_baseline(
    splits: dict[str, ClassImages], steps: int = PRETRAIN_STEPS, tasks: int = 600, folder: Path | None = None
) -> dict:
    """Pretrain pretrain-finetune from scratch (seed 0) and write it into the package, with its accuracy on the
    first `tasks` fixed 5-way 1-shot test tasks measured on the saved float16 weights. Returns the record."""
    learner, done = baseline(PretrainFinetune.name, splits["train"], steps=steps)
    learner.load_state_dict(zoo.store.expand(zoo.store.compact(learner.state_dict())))  # measure what ships
    shape = {"ways": 5, "shots": 1, "queries": 15}  # the zoo's test tasks
    accuracies, _, _ = score(learner.eval(), splits["test"], **shape, tasks=tasks)
    mean, ci = mean_ci95(torch.tensor(accuracies))
    result = {"accuracy": round(mean, 3), "ci95": round(ci, 3), "n_tasks": tasks, **shape}
    result["task_accuracies"] = accuracies
    path = (folder or SHIPPED_BASELINES) / baseline_file(learner.name, splits, steps)
    return save_baseline(learner, done, path, result=result, torch=str(torch.__version__))


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
        return entry, learner, splits, {"iteration": done.get("iterations"), "train_seconds": done.get("seconds")}
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
    (remeasure=True scores it again); its latency is then timed on LATENCY_TASKS of them.
    splits: the data for every entry (default: each model's own; the baselines pretrain on its train split).
    """
    rows = []
    for entry in entries:
        name, learner, data, record = load_entry(entry, ways, shots, root, pretrain_steps, splits)
        test = splits["test"] if splits is not None else None
        stored = None if remeasure else stored_accuracies(record, ways, shots, queries, tasks, test)
        timed = min(tasks, LATENCY_TASKS) if stored is not None else tasks
        accuracies, latency, peak = score(learner, data["test"], ways, shots, queries, timed)
        accuracies = stored if stored is not None else accuracies
        mean, ci = mean_ci95(torch.tensor(accuracies))
        paper = zoo.recipe(name).paper if name in zoo.RECIPES else None
        iterations, seconds = record.get("iteration"), record.get("train_seconds")
        rows.append(Entry(name, learner.name, mean, ci, accuracies, latency, peak, paper=paper,
                          train_seconds=seconds, iterations=iterations))  # fmt: skip
    return rows


def scratch_settings(
    algo: str, ways: int, shots: int, queries: int, seed: int, data: dict | None = None, **hparams: object
) -> Settings:
    """The algorithm's zoo recipe for the shape (or its 5-way 1-shot one), as an open-ended run from scratch.

    data: other settings to replace (e.g. {"dataset": "synthetic", "image_size": 16}, {"protocol": "lake"})."""
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
                train_peak_bytes=train_peak or None,
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


def verdicts(rows: list[Entry], reference: str) -> list[str]:
    """One line per entry: its paired difference to `reference`, and a tie when the 95% CI contains zero."""
    lines = []
    for row in add_differences(rows, reference):
        if reference in (row.name, row.algo):
            continue
        low, high = row.difference - row.difference_ci95, row.difference + row.difference_ci95
        verdict = "a tie (the CI contains 0)" if low <= 0 <= high else "better" if low > 0 else "worse"
        lines.append(f"{row.name} vs {reference}: {row.difference:+.2f} ± {row.difference_ci95:.2f} points, {verdict}")
    return lines
