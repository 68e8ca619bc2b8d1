"""The model zoo: every algorithm trained on the `paper` protocol, shipped with its recipe and measured accuracy.

    learner = mlscratch.zoo.load("maml-5w1s")        # ready to predict, in eval mode
    python -m mlscratch zoo list                      # accuracy +- CI beside the paper's figure, budget, device
    python -m mlscratch zoo train maml-5w1s           # (re)train from the recipe, resuming its checkpoint
    python -m mlscratch zoo export maml-5w1s          # ship the last checkpoint now (a time-boxed CPU run)
    python -m mlscratch zoo verify [NAME] --tasks 100 # re-measure shipped models on the fixed test tasks
    python -m mlscratch zoo remeasure [NAME]          # rewrite a shipped record's measurement (weights unchanged)

Training writes a resumable checkpoint under runs/zoo/NAME/ and, at the end, the package's weights file:
float16 weights, the recipe, the budget, the training history (seconds, validation accuracy), and the
accuracy on 600 fixed test tasks measured by the evaluator on those float16 weights (never typed in): per task,
and for learners that adapt by gradient steps per task and inner step (`step_correct`), with the definition of
the task stream, so chapters pair models on the same tasks from the records instead of re-scoring them.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..algorithms import MetaLearner, build
from ..challenge import score_learner
from ..checkpoint import read_checkpoint
from ..data import ClassImages
from ..data.lake_runs import load_lake_runs
from ..device import resolve_device
from ..errors import ConfigError
from ..evaluation import EvaluationResult, evaluate, quantile95
from ..experiment import EVAL_BATCH, TEST_SEED, Settings, evaluation_tasks, load_data, run
from . import store
from .recipes import RECIPES, Recipe, add

CHECKPOINTS = Path("runs") / "zoo"
CURVE_STEPS = 5  # inner steps recorded per test task (at least; a learner's own test_inner_steps if more)
BETWEEN_TASKS = 200  # random between-alphabet test tasks a Lake-challenge model is also scored on


def recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ConfigError(f"no zoo model named {name!r}; choose one of: {', '.join(RECIPES)}")
    return RECIPES[name]


def available(ways: int | None = None, shots: int | None = None, protocol: str | None = "paper") -> list[str]:
    """Names of the recipes whose weights ship with the package; given ways/shots, only those trained at that shape.

    protocol: only models trained on that split ("paper" by default, so that no Lake-challenge model is scored on
    paper tasks by accident; "lake" for the challenge's; None for all).
    """
    return [
        name
        for name, r in RECIPES.items()
        if store.weights_path(name).is_file()
        and ways in (None, r.settings.ways)
        and shots in (None, r.settings.shots)
        and protocol in (None, r.settings.protocol)
    ]


def load(name: str, device: str | torch.device = "cpu") -> MetaLearner:
    """The trained zoo model `name`, in eval mode on `device`; its record (recipe, budget, accuracy) is `.zoo`."""
    recipe(name)
    record = store.read(name)
    learner = build(record["algo"], **record["hparams"])
    learner.load_state_dict(store.expand(record["state"]))
    learner.zoo = {key: value for key, value in record.items() if key != "state"}
    return learner.to(resolve_device(device)).eval()


def checkpoint_path(name: str, folder: Path | None = None) -> Path:
    return (folder or CHECKPOINTS) / name / "checkpoint.pt"


def measure(
    learner: MetaLearner,
    settings: Settings,
    tasks: int,
    splits: dict[str, ClassImages] | None = None,
    progress: bool = False,
    per_step: bool = False,
) -> EvaluationResult:
    """Accuracy on the first `tasks` of the fixed test tasks for the recipe's task shape; per_step: also each task's
    accuracy after every inner step up to max(CURVE_STEPS, test_inner_steps) (learners that adapt by steps)."""
    splits = splits if splits is not None else load_data(settings)
    device = next(learner.parameters()).device
    shape = settings.ways, settings.shots, settings.eval_queries
    sampler = evaluation_tasks(
        splits["test"], *shape, device, within_alphabet=settings.within_alphabet, upright=settings.rotate is False
    )
    steps = max(CURVE_STEPS, getattr(learner, "test_inner_steps", 0))
    return evaluate(learner, sampler, tasks, per_step=per_step, steps=steps, progress=progress)


def result_record(result: EvaluationResult, settings: Settings) -> dict:
    """What a weights record keeps of a measurement: mean, CI, per-task accuracies, per-step correct counts, and
    the task stream they were measured on (same seed, shape and data: the same tasks, on any CPU)."""
    record = {
        "accuracy": round(result.accuracy, 6),  # not 3: a figure quoted at 2 digits must not be rounded twice
        "ci95": round(result.ci95, 6),
        "n_tasks": result.n_tasks,
        "task_accuracies": [round(a, 3) for a in result.task_accuracies],
        "task_stream": {
            "seed": TEST_SEED,
            "batch_size": EVAL_BATCH,
            "ways": settings.ways,
            "shots": settings.shots,
            "queries": settings.eval_queries,
            "dataset": settings.dataset,
            "protocol": settings.protocol,
            "split_seed": settings.split_seed,
            "image_size": settings.image_size,
            **({"within_alphabet": True} if settings.within_alphabet else {}),
        },  # fmt: skip
    }
    if result.task_step_accuracies:  # exact: correct queries per task [n_tasks, steps + 1]
        queries = settings.ways * settings.eval_queries
        correct = torch.tensor(result.task_step_accuracies) * queries / 100
        record["step_correct"] = correct.round().to(torch.int16)
        record["queries_per_task"] = queries
    return record


def challenge_measurements(
    learner: MetaLearner,
    settings: Settings,
    splits: dict[str, ClassImages] | None = None,
    who: str | None = None,
    progress: bool = False,
) -> dict:
    """A Lake-challenge model's two extra results: the 20 official runs (errors and every pick) and BETWEEN_TASKS
    random 20-way tasks drawn across the evaluation alphabets (the easier task most papers report)."""
    runs = load_lake_runs(image_size=settings.image_size)
    between = replace(settings, within_alphabet=False)
    return {
        "challenge": score_learner(learner, runs, who or learner.name).to_record(),
        "between_alphabet": result_record(measure(learner, between, BETWEEN_TASKS, splits, progress), between),
    }


def step_accuracies(record: dict, tasks: int | None = None) -> torch.Tensor | None:
    """A record's accuracy (percent) of each test task after each inner step: [tasks, steps + 1], or None."""
    result = record.get("result") or {}
    if "step_correct" not in result:
        return None
    return result["step_correct"][:tasks].double() * 100 / result["queries_per_task"]


def export(
    name: str,
    checkpoint: Path | None = None,
    *,
    splits: dict[str, ClassImages] | None = None,
    folder: Path | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> dict:
    """Write the package weights of `name` from its training checkpoint: float16 weights, measured on 600 tasks."""
    settings = recipe(name).settings
    checkpoint = checkpoint or checkpoint_path(name)
    state = read_checkpoint(checkpoint)
    if state["algo"] != settings.algo:
        raise ConfigError(f"{checkpoint} holds a {state['algo']} model, but recipe {name} trains {settings.algo}")
    learner = build(state["algo"], **state["hparams"])
    compact = store.compact(state["model"])
    learner.load_state_dict(store.expand(compact))  # measure exactly what ships
    learner.to(resolve_device(device))
    result = measure(learner, settings, settings.eval_tasks, splits, progress, per_step=True)
    history = state.get("history") or {}
    record = {
        "name": name,
        "algo": state["algo"],
        "hparams": state["hparams"],
        "state": compact,
        "settings": settings.to_dict(),
        "iteration": state["iteration"],
        "train_seconds": round(history["seconds"][-1], 1) if history.get("seconds") else None,
        "device": (state.get("metadata") or {}).get("device", "cpu"),
        "history": training_curve(history),
        "result": result_record(result, settings),
        "torch": str(torch.__version__),
        "created": datetime.date.today().isoformat(),
    }
    if settings.protocol == "lake":
        record.update(challenge_measurements(learner, settings, splits, name, progress))
    store.write(record, store.weights_path(name, folder))
    return record


def train(
    name: str,
    *,
    until: int | None = None,
    seconds: float | None = None,
    device: str | torch.device = "auto",
    checkpoint_folder: Path | None = None,
    weights_folder: Path | None = None,
    progress: bool = True,
) -> dict:
    """Train recipe `name` (resuming its checkpoint exactly), then export the weights; returns their record.

    until: stop after this iteration; seconds: stop after this many more seconds of training. Either way the
    recipe's schedule still spans all its iterations (Reptile anneals its step to 0 at the recipe's end, not at
    `until`), so a later call continues the very same run.
    """
    settings = recipe(name).settings
    if until is not None and (not isinstance(until, int) or until < 1):
        raise ConfigError(f"--until must be a positive number of iterations, got {until!r}")
    if seconds is not None and not seconds > 0:
        raise ConfigError(f"--seconds must be a positive number of seconds, got {seconds!r}")
    path = checkpoint_path(name, checkpoint_folder)
    max_seconds = None
    if seconds is not None:  # fit counts the training seconds of the whole run, earlier sessions included
        spent = read_checkpoint(path)["history"]["seconds"] if path.is_file() else []
        max_seconds = (spent[-1] if spent else 0.0) + seconds
    device = resolve_device(device)
    splits = load_data(settings)
    run(settings, splits, device=device, checkpoint=path, checkpoint_every=100, progress=progress, test=False,
        until=until, max_seconds=max_seconds)  # fmt: skip
    return export(name, path, splits=splits, folder=weights_folder, device=device, progress=progress)


def training_curve(history: dict) -> dict:
    """The part of a training history a record keeps: validation accuracy against iterations and seconds."""
    seconds = dict(zip(history.get("iteration", []), history.get("seconds", []), strict=False))
    iterations = history.get("val_iteration", [])
    return {
        "val_iteration": list(iterations),
        "val_seconds": [round(seconds.get(i, float("nan")), 1) for i in iterations],
        "val_accuracy": [round(a, 3) for a in history.get("val_accuracy", [])],
        "iterations": history["iteration"][-1] if history.get("iteration") else 0,
        "seconds": round(history["seconds"][-1], 1) if history.get("seconds") else None,
    }


def remeasure(name: str, splits: dict[str, ClassImages] | None = None, progress: bool = False) -> dict:
    """Measure a shipped model again on its 600 fixed test tasks, per task and per step, and rewrite its record's
    result (weights, recipe and budget unchanged): for records written before a measurement field existed."""
    learner, record = load(name), store.read(name)
    settings = Settings.from_dict(record["settings"])
    result = measure(learner, settings, settings.eval_tasks, splits, progress, per_step=True)
    record["result"] = result_record(result, settings)
    record.pop("format")
    store.write(record, store.weights_path(name))
    return record


@dataclass
class Verification:
    name: str
    recorded: float  # accuracy of the recorded first `tasks` tasks
    measured: float
    tolerance: float  # the 95% CI (quantile95(tasks) * std / sqrt(tasks)) of the recorded per-task accuracies

    @property
    def ok(self) -> bool:
        return abs(self.measured - self.recorded) <= self.tolerance


def verify(name: str, tasks: int = 600, splits: dict[str, ClassImages] | None = None) -> Verification:
    """Re-measure a shipped model on the first `tasks` fixed test tasks, against what its record says for them."""
    learner = load(name)
    settings = Settings.from_dict(learner.zoo["settings"])
    recorded = torch.tensor(learner.zoo["result"]["task_accuracies"][:tasks])
    if len(recorded) < tasks:
        raise ConfigError(f"{name} was measured on {len(recorded)} tasks; use --tasks {len(recorded)} or fewer")
    result = measure(learner, settings, tasks, splits)
    spread = recorded.std().item() if tasks > 1 else 0.0
    return Verification(
        name, recorded.mean().item(), result.accuracy, max(quantile95(tasks) * spread / math.sqrt(tasks), 0.5)
    )


__all__ = [
    "RECIPES",
    "Recipe",
    "Verification",
    "add",
    "available",
    "export",
    "load",
    "recipe",
    "remeasure",
    "step_accuracies",
    "train",
    "verify",
]
