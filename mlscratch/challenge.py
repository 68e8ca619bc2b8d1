"""Humans against machines: scoring on Lake's one-shot challenge (the 20 official within-alphabet runs).

Every model is scored the same way: one 20-way 1-shot task per run (support = the run's 20 training images,
queries = its 20 test images), the nearest or highest-scoring training image wins, and the error rate is over
all 400 test images. Models may learn from the background set only (the `lake` protocol); a model trained on the
`paper` split has seen evaluation characters and is refused.

The official baseline is the modified Hausdorff distance (Dubuisson & Jain 1994) between the ink points of two
105x105 drawings, as in the official demo (demo_classification.py: points centred on their mean, a cost, the
smallest wins): 38.8% errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .data.lake_runs import WAYS, LakeRun
from .device import module_device
from .errors import ConfigError


@dataclass(frozen=True)
class Reference:
    """A published error rate on the 20 runs (percent) and where it is from."""

    who: str
    error: float
    source: str


LAKE_2015 = "Lake, Salakhutdinov & Tenenbaum 2015, Science 350:1332 (one-shot classification, 20 runs)"
HUMANS = Reference("people", 4.5, LAKE_2015)
BPL = Reference("Bayesian Program Learning", 3.3, LAKE_2015)
HAUSDORFF_DEMO = Reference("modified Hausdorff distance", 38.8, "brendenlake/omniglot demo_classification.py")
REFERENCES = (HUMANS, BPL)


def wilson_interval(errors: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval (percent) of an error rate of `errors` in `n` independent trials.

    Unlike mean +- 1.96 * sqrt(p(1-p)/n), it stays inside [0, 100] and is not empty at 0 errors; for 400 test
    images it spans about +-2 to +-5 points (about +-2.7 near 10% errors).
    """
    p = errors / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return 100 * (centre - half), 100 * (centre + half)


@dataclass
class ChallengeResult:
    """wrong: [runs, 20] bool, True where a test image was matched to the wrong training image; picks: [runs, 20]
    the training image chosen for each test image (None when only the errors are known)."""

    who: str
    wrong: Tensor
    runs: list[str]
    picks: Tensor | None = None

    @property
    def n_test(self) -> int:
        return self.wrong.numel()

    @property
    def error(self) -> float:
        """Percent of all test images classified wrongly (= the mean of the per-run error rates)."""
        return 100 * int(self.wrong.sum()) / self.n_test

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(int(self.wrong.sum()), self.n_test)

    def run_errors(self) -> list[float]:
        return [100 * int(row.sum()) / row.numel() for row in self.wrong]

    def __str__(self) -> str:
        low, high = self.interval
        return f"{self.error:.2f}% errors (95% CI {low:.1f}-{high:.1f}, {self.n_test} test images)"

    def to_record(self) -> dict:
        """What a zoo or baseline record keeps (JSON-ready): the error, its interval, each run's and each pick."""
        low, high = self.interval
        record = {"who": self.who, "error": self.error, "ci95": [round(low, 2), round(high, 2)],
                  "test_images": self.n_test, "run_errors": self.run_errors(), "runs": list(self.runs)}  # fmt: skip
        if self.picks is not None:
            record["picks"] = self.picks.tolist()
        return record

    @classmethod
    def from_record(cls, record: dict, runs: list[LakeRun]) -> ChallengeResult:
        """The result a record stores, checked against the runs' answers (its picks must give its error)."""
        result = score_predictions(record["who"], torch.tensor(record["picks"]), runs)
        if abs(result.error - record["error"]) > 1e-9:
            raise ConfigError(f"{record['who']}: the stored picks give {result.error}% errors, the record says "
                              f"{record['error']}%; the record is damaged, export the model again")  # fmt: skip
        return result


def score_predictions(who: str, predictions: Tensor, runs: list[LakeRun]) -> ChallengeResult:
    """predictions [runs, 20]: the training image chosen for each test image -> the result against the answers."""
    answers = torch.stack([run.answer for run in runs])
    if predictions.shape != answers.shape:
        raise ConfigError(f"need one prediction per test image, shape {tuple(answers.shape)}, "
                          f"got {tuple(predictions.shape)}")  # fmt: skip
    return ChallengeResult(who, predictions.cpu() != answers, [run.name for run in runs], predictions.cpu())


def ink_points(image: Tensor) -> Tensor:
    """[1, H, W] drawing (ink = 1) -> [n, 2] float64 (row, column) of its ink pixels, centred on their mean."""
    points = (image[0] > 0.5).nonzero().double()
    return points - points.mean(0)


def modified_hausdorff(queries: list[Tensor], references: list[Tensor]) -> Tensor:
    """Costs [len(queries), len(references)]: max(mean nearest distance a->b, b->a) between point sets [n_i, 2].

    One torch.cdist per pair (float64, a few hundred points each): small enough to stay in cache, which beats
    padding all references into one tensor of the largest set's size.
    """
    costs = torch.empty(len(queries), len(references), dtype=torch.float64)
    for q, a in enumerate(queries):
        for r, b in enumerate(references):
            d = torch.cdist(a, b)  # [n_a, n_b]
            costs[q, r] = torch.maximum(d.min(1).values.mean(), d.min(0).values.mean())
    return costs


def hausdorff_predictions(runs: list[LakeRun]) -> Tensor:
    """[runs, 20]: for each test image the training image at the smallest modified Hausdorff distance."""
    picks = []
    for run in runs:
        costs = modified_hausdorff([ink_points(x) for x in run.test], [ink_points(x) for x in run.train])
        picks.append(costs.argmin(1))
    return torch.stack(picks)


def score_hausdorff(runs: list[LakeRun]) -> ChallengeResult:
    """The official baseline; on the original 105x105 drawings (load_lake_runs(image_size=105)): 38.8% errors."""
    return score_predictions("modified Hausdorff distance", hausdorff_predictions(runs), runs)


def learner_predictions(learner: torch.nn.Module, runs: list[LakeRun]) -> Tensor:
    """[runs, 20]: the learner's `predict` on one 20-way 1-shot task per run, all runs as one batch of tasks."""
    device = module_device(learner)
    support_x = torch.stack([run.train for run in runs]).to(device)
    query_x = torch.stack([run.test for run in runs]).to(device)
    support_y = torch.arange(WAYS, device=device).expand(len(runs), -1)
    return learner.predict(support_x, support_y, query_x).argmax(-1).cpu()


def score_learner(learner: torch.nn.Module, runs: list[LakeRun], who: str | None = None) -> ChallengeResult:
    """A meta-learner on the 20 runs (images must be the size it was trained on; check_trained_on first)."""
    n_way = getattr(learner, "n_way", None)
    if n_way not in (None, WAYS):
        raise ConfigError(f"this {learner.name} has a {n_way}-way output layer, but the challenge is {WAYS}-way; "
                          f"train it with --ways {WAYS}")  # fmt: skip
    return score_predictions(who or learner.name, learner_predictions(learner, runs), runs)


def check_trained_on(settings: dict, what: str) -> None:
    """ConfigError unless the recorded settings say the model learned from the background set only (`lake`)."""
    protocol = settings.get("protocol")
    if protocol == "lake":
        return
    why = (
        "the paper split trains on characters of the evaluation alphabets the challenge tests on"
        if protocol == "paper"
        else f"its record names no background-only training (protocol {protocol!r})"
    )
    raise ConfigError(f"{what} cannot enter the challenge: {why}; train on the background set only "
                      "(python -m mlscratch train --protocol lake ...)")  # fmt: skip


__all__ = [
    "BPL",
    "HAUSDORFF_DEMO",
    "HUMANS",
    "REFERENCES",
    "ChallengeResult",
    "Reference",
    "check_trained_on",
    "hausdorff_predictions",
    "ink_points",
    "learner_predictions",
    "modified_hausdorff",
    "score_hausdorff",
    "score_learner",
    "score_predictions",
    "wilson_interval",
]
