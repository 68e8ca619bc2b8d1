"""The pretrain-finetune baseline: pretrained once, shipped with the package or cached, and read back."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from .. import zoo
from ..algorithms import MetaLearner
from ..baselines import PixelNearestNeighbour, PretrainFinetune, Pretraining, pretrain
from ..data import ClassImages
from ..errors import DataError
from ..evaluation import mean_ci95
from ..io import atomic_save
from .entries import score

PRETRAIN_STEPS = 3000  # batches of 64 for the zoo's pretrain-finetune (about 10 minutes on a laptop CPU core)
BASELINE_CACHE = Path("runs") / "baselines"
SHIPPED_BASELINES = zoo.store.WEIGHTS / "baselines"  # package data: the default pretrain-finetune, pretrained once
LAKE_TEST_SHAPE = "protonet-lake-20w1s"  # the recipe whose test tasks a `lake` baseline is measured on
LAKE_BASELINE = "pretrain-finetune-omniglot-lake0-28px-3000steps.pt"  # zoo train pretrain-finetune --protocol lake


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
    then in BASELINE_CACHE; else pretrained here and kept in BASELINE_CACHE. The returned dict is the pretraining
    record, plus the shipped model's measured "result" on the fixed test tasks when there is one.
    """
    if name == PixelNearestNeighbour.name:
        return baseline(name, splits["train"])[0], {}
    file = baseline_file(name, splits, steps)
    for place in (SHIPPED_BASELINES, BASELINE_CACHE):
        if (place / file).is_file():
            learner, record = read_baseline(place / file)
            return learner, {**record["pretraining"], **({"result": record["result"]} if "result" in record else {})}
    learner, done = baseline(name, splits["train"], steps=steps)
    return learner, save_baseline(learner, done, BASELINE_CACHE / file)["pretraining"]


def ship_baseline(
    splits: dict[str, ClassImages], steps: int = PRETRAIN_STEPS, tasks: int = 600, folder: Path | None = None
) -> dict:
    """Pretrain pretrain-finetune from scratch (seed 0) and write it into the package, with its accuracy on the
    first `tasks` fixed test tasks measured on the saved float16 weights: the zoo's 5-way 1-shot tasks, or on the
    `lake` split the challenge's (20-way 1-shot within one alphabet, plus the 20 official runs). Returns the record."""
    learner, done = baseline(PretrainFinetune.name, splits["train"], steps=steps)
    learner.load_state_dict(zoo.store.expand(zoo.store.compact(learner.state_dict())))  # measure what ships
    learner.eval()
    extra: dict = {}
    if splits["train"].meta.get("protocol") == "lake":
        settings = zoo.recipe(LAKE_TEST_SHAPE).settings  # the challenge models' test tasks
        shape = {"ways": settings.ways, "shots": settings.shots, "queries": settings.eval_queries}
        accuracies = zoo.measure(learner, settings, tasks, splits).task_accuracies
        extra = zoo.challenge_measurements(learner, settings, splits)
        shape["within_alphabet"] = True
    else:
        shape = {"ways": 5, "shots": 1, "queries": 15}  # the zoo's test tasks
        accuracies = score(learner, splits["test"], **shape, tasks=tasks)[0]
    mean, ci = mean_ci95(torch.tensor(accuracies))
    result = {"accuracy": round(mean, 3), "ci95": round(ci, 3), "n_tasks": tasks, **shape}
    result["task_accuracies"] = accuracies
    path = (folder or SHIPPED_BASELINES) / baseline_file(learner.name, splits, steps)
    return save_baseline(learner, done, path, result=result, torch=str(torch.__version__), **extra)
