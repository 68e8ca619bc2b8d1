"""The model zoo: every algorithm trained on the `paper` protocol, shipped with its recipe and measured accuracy.

    learner = mlscratch.zoo.load("maml-5w1s")        # ready to predict, in eval mode
    python -m mlscratch zoo list                      # accuracy +- CI beside the paper's figure, budget, device
    python -m mlscratch zoo train maml-5w1s           # (re)train from the recipe, resuming its checkpoint
    python -m mlscratch zoo export maml-5w1s          # ship the last checkpoint now (a time-boxed CPU run)
    python -m mlscratch zoo verify [NAME] --tasks 100 # re-measure shipped models on the fixed test tasks

Training writes a resumable checkpoint under runs/zoo/NAME/ and, at the end, the package's weights file:
float16 weights, the recipe, the budget, and the accuracy on 600 fixed test tasks measured by the
evaluator on those float16 weights (never typed in).
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ..algorithms import MetaLearner, build
from ..checkpoint import read_checkpoint
from ..data import ClassImages
from ..device import resolve_device
from ..errors import ConfigError
from ..evaluation import EvaluationResult, evaluate
from ..experiment import Settings, evaluation_tasks, load_data, run
from . import store
from .recipes import RECIPES, Recipe, add

CHECKPOINTS = Path("runs") / "zoo"


def recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ConfigError(f"no zoo model named {name!r}; choose one of: {', '.join(RECIPES)}")
    return RECIPES[name]


def available(ways: int | None = None, shots: int | None = None) -> list[str]:
    """Names of the recipes whose weights ship with the package; given ways/shots, only those trained at that shape."""
    return [
        name
        for name, r in RECIPES.items()
        if store.weights_path(name).is_file() and ways in (None, r.settings.ways) and shots in (None, r.settings.shots)
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
) -> EvaluationResult:
    """Accuracy on the first `tasks` of the fixed test tasks for the recipe's task shape."""
    splits = splits if splits is not None else load_data(settings)
    device = next(learner.parameters()).device
    sampler = evaluation_tasks(splits["test"], settings.ways, settings.shots, settings.eval_queries, device)
    return evaluate(learner, sampler, tasks, per_step=False, progress=progress)


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
    result = measure(learner, settings, settings.eval_tasks, splits, progress)
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
        "result": {
            "accuracy": round(result.accuracy, 3),
            "ci95": round(result.ci95, 3),
            "n_tasks": result.n_tasks,
            "task_accuracies": [round(a, 3) for a in result.task_accuracies],
        },
        "torch": str(torch.__version__),
        "created": datetime.date.today().isoformat(),
    }
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


@dataclass
class Verification:
    name: str
    recorded: float  # accuracy of the recorded first `tasks` tasks
    measured: float
    tolerance: float  # 1.96 * std / sqrt(tasks) of the recorded per-task accuracies

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
    return Verification(name, recorded.mean().item(), result.accuracy, max(1.96 * spread / math.sqrt(tasks), 0.5))


__all__ = ["RECIPES", "Recipe", "Verification", "add", "available", "export", "load", "recipe", "train", "verify"]
