"""One experiment path: settings -> data -> learner -> training -> test accuracy.

`python -m mlscratch train`, the notebooks' `train_and_evaluate`, the model zoo and `compare` all call
`run(settings)`, so the same settings and seed give the same tasks, the same training and the same
reported accuracy everywhere.

Task streams: training tasks follow the run `seed`; validation and test tasks use fixed seeds
(VAL_SEED, TEST_SEED) and a fixed batch size, so every run, seed and algorithm is scored on the
same test tasks (paired comparisons). The class split has its own `split_seed`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from .algorithms import MetaLearner, build, learner_class
from .data import ClassImages, load_splits
from .device import resolve_device
from .errors import ConfigError
from .evaluation import EvaluationResult, evaluate
from .tasks import TaskSampler
from .training import History, fit

VAL_SEED = 1
TEST_SEED = 2
EVAL_BATCH = 25  # tasks drawn at a time in validation and test: part of what fixes the task stream


@dataclass
class Settings:
    """Everything that defines one experiment (a zoo recipe is one of these with a name)."""

    algo: str = "maml"
    hparams: dict[str, Any] = field(default_factory=dict)  # the learner's own settings: build(algo, **hparams)
    dataset: str = "omniglot"
    protocol: str = "paper"
    image_size: int = 28
    split_seed: int = 0
    ways: int = 5
    shots: int = 1
    queries: int = 15  # per class, in training tasks
    eval_queries: int = 15  # per class, in validation and test tasks
    train_ways: int | None = None  # ways of training tasks if not `ways` (ProtoNets train 60-way)
    within_alphabet: bool = False  # every task draws all its classes from one alphabet (Lake's challenge)
    # Quarter turns. None: the split's own (paper: every task turns its classes, lake: none). True: training tasks
    # turn (augmentation). False: no task turns, training or test (a control: everything upright).
    rotate: bool | None = None
    meta_batch: int = 32
    iterations: int = 1000
    outer_lr: float = 1e-3
    clip_grad: float | None = None
    seed: int = 0
    val_every: int = 500
    val_tasks: int = 100
    eval_tasks: int = 600

    def __post_init__(self) -> None:
        learner_class(self.algo)  # unknown algorithm -> ConfigError listing the choices
        for name in ("ways", "shots", "queries", "eval_queries", "meta_batch", "val_every", "val_tasks", "eval_tasks"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.iterations, int) or self.iterations < 0:
            raise ConfigError(f"iterations must be an integer >= 0, got {self.iterations!r}")

    @property
    def training_ways(self) -> int:
        return self.train_ways or self.ways

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, strict: bool = True) -> Settings:
        """Settings from a dict; strict=False ignores keys that are not settings (e.g. a checkpoint's extras)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if not strict:
            data = {key: value for key, value in data.items() if key in known}
        elif unknown:
            raise ConfigError(f"unknown experiment settings {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**data)


@dataclass
class Experiment:
    """What `run` returns: the trained learner, its training history, its test result and its settings."""

    learner: MetaLearner
    history: History
    result: EvaluationResult | None
    settings: Settings

    def summary(self) -> str:
        s = self.settings
        return (
            f"{s.algo} {s.ways}-way {s.shots}-shot, {s.iterations} iterations in "
            f"{self.history.training_seconds:.0f} s: test {self.result}"
        )


def load_data(settings: Settings, root: str | None = None) -> dict[str, ClassImages]:
    """The train / val / test classes the settings name."""
    return load_splits(
        settings.dataset, settings.protocol, root=root, image_size=settings.image_size, split_seed=settings.split_seed
    )


def build_learner(settings: Settings, image_shape: tuple[int, ...]) -> MetaLearner:
    """build(algo, **hparams), with n_way, in_channels and image_size from the tasks where the learner takes them."""
    accepted = learner_class(settings.algo).hyperparameters()
    shape = {"n_way": settings.training_ways, "in_channels": image_shape[0], "image_size": image_shape[-1]}
    defaults = {name: value for name, value in shape.items() if name in accepted}
    return build(settings.algo, **{**defaults, **settings.hparams})


def evaluation_tasks(
    classes: ClassImages,
    ways: int,
    shots: int,
    queries: int,
    device: torch.device | str = "cpu",
    within_alphabet: bool = False,
    upright: bool = False,
) -> TaskSampler:
    """The fixed stream of test tasks (TEST_SEED, EVAL_BATCH): every model sees the same tasks.

    upright: no quarter turns even where the split turns its classes (the `paper` split): the same classes and
    drawings as the turned stream, task for task, so results with and without turns pair."""
    sampler = TaskSampler(
        classes, ways, shots, queries, EVAL_BATCH, seed=TEST_SEED, device=device, within_alphabet=within_alphabet
    )
    if upright and sampler.rotate:  # draw the turns as usual (same random stream), but every turn is no turn
        sampler.upright()
    return sampler


def samplers(settings: Settings, splits: dict[str, ClassImages], device: torch.device) -> dict[str, TaskSampler]:
    """Training tasks (run seed), validation and test tasks (fixed seeds)."""
    s = settings
    return {
        "train": TaskSampler(
            splits["train"],
            s.training_ways,
            s.shots,
            s.queries,
            s.meta_batch,
            seed=s.seed,
            device=device,
            within_alphabet=s.within_alphabet,
            rotate=s.rotate,
        ),
        "val": TaskSampler(
            splits["val"],
            s.ways,
            s.shots,
            s.eval_queries,
            EVAL_BATCH,
            seed=VAL_SEED,
            device=device,
            within_alphabet=s.within_alphabet,
            rotate=False if s.rotate is False else None,
        ),
        "test": evaluation_tasks(
            splits["test"], s.ways, s.shots, s.eval_queries, device, s.within_alphabet, upright=s.rotate is False
        ),
    }


def run(
    settings: Settings,
    splits: dict[str, ClassImages] | None = None,
    *,
    root: str | None = None,
    device: str | torch.device = "auto",
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 250,
    validate: bool = True,
    progress: bool = True,
    learner: MetaLearner | None = None,
    test: bool = True,
    until: int | None = None,
    max_seconds: float | None = None,
) -> Experiment:
    """Train `settings.algo` as the settings say, then test it on `eval_tasks` fixed test tasks.

    splits: the data (default: loaded from the settings). checkpoint: resumed if it exists, written while
    training. validate: record validation accuracy every `val_every` iterations. learner: start from this
    one instead of building a new one (it must match the settings). test=False: skip the test (result None).
    until / max_seconds: stop early, after that iteration / once that much training time is spent; the schedules
    still span `settings.iterations`, so a later call continues the same run from the checkpoint.
    """
    device = resolve_device(device)
    splits = splits if splits is not None else load_data(settings, root)
    tasks = samplers(settings, splits, device)
    torch.manual_seed(settings.seed)  # the initial weights follow the run seed
    learner = learner if learner is not None else build_learner(settings, splits["train"].image_shape)
    history = fit(
        learner,
        tasks["train"],
        settings.iterations,
        outer_lr=settings.outer_lr,
        val_sampler=tasks["val"] if validate else None,
        val_every=settings.val_every,
        val_tasks=settings.val_tasks,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        clip_grad=settings.clip_grad,
        device=device,
        seed=settings.seed,
        progress=progress,
        metadata={**settings.to_dict(), "device": str(device)},
        until=until,
        max_seconds=max_seconds,
    )
    result = evaluate(learner, tasks["test"], settings.eval_tasks, progress=progress) if test else None
    return Experiment(learner, history, result, settings)


__all__ = [
    "EVAL_BATCH",
    "TEST_SEED",
    "VAL_SEED",
    "Experiment",
    "Settings",
    "build_learner",
    "evaluation_tasks",
    "load_data",
    "run",
    "samplers",
]
