"""How accuracy moves when the test tasks change: their shape (ways, shots) and their domain (unseen alphabets).

    results = shape_sweep(learners, test_classes, [(5, 1), (5, 5), (20, 1)])   # the same fixed tasks per shape
    plot_shapes(results)                                                      # accuracy against shots and ways
    print(format_shift(domain_shift(paper_rows, lake_rows)))                  # `paper` beside `lake`
    turn_effect(learners, test_classes, 5, 1, 15, tasks=100)                  # upright - turned, paired

Both build on `mlscratch.compare`: the fixed test tasks of `entries.score` and the rows of `race.compare_scratch`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import torch

from .algorithms import MetaLearner
from .compare.entries import Entry, score
from .compare.paired import paired_difference
from .data import ClassImages
from .device import module_device
from .evaluation import evaluate, mean_ci95
from .experiment import evaluation_tasks


@dataclass
class ShapeResult:
    """Accuracy (percent) of one model at one test task shape; accuracy None when the model cannot take it."""

    name: str
    ways: int
    shots: int
    accuracy: float | None
    ci95: float | None
    note: str = ""
    task_accuracies: list[float] = field(default_factory=list)  # per fixed test task of this shape
    difference: float | None = None  # paired, to the reference model on the same tasks (`pair_shapes`)
    difference_ci95: float | None = None


def shape_sweep(
    learners: dict[str, MetaLearner],
    classes: ClassImages,
    shapes: list[tuple[int, int]],
    queries: int = 5,
    tasks: int = 100,
) -> list[ShapeResult]:
    """Each learner on the same fixed test tasks of each (ways, shots) shape.

    A learner with a fixed output layer (MAML's n_way) is skipped at other ways, with the reason in `note`.
    queries: per class; Omniglot has 20 drawings per character, so shots + queries <= 20.
    """
    results = []
    for ways, shots in shapes:
        for name, learner in learners.items():
            if learner.n_way not in (None, ways):
                note = f"{learner.n_way}-way output layer"
                results.append(ShapeResult(name, ways, shots, None, None, note))
                continue
            accuracies = score(learner, classes, ways, shots, queries, tasks)[0]
            mean, ci = mean_ci95(torch.tensor(accuracies))
            results.append(ShapeResult(name, ways, shots, mean, ci, task_accuracies=accuracies))
    return results


def pair_shapes(results: list[ShapeResult], reference: str) -> list[ShapeResult]:
    """Fill each result's paired difference to `reference` at the same shape (the same fixed tasks)."""
    base = {(r.ways, r.shots): r for r in results if r.name == reference and r.accuracy is not None}
    for r in results:
        other = base.get((r.ways, r.shots))
        if r.accuracy is not None and other is not None:
            r.difference, r.difference_ci95 = paired_difference(r.task_accuracies, other.task_accuracies)
    return results


def plot_shapes(results: list[ShapeResult], ways: int = 5, shots: int = 1) -> object:
    """Two panels: accuracy against shots at `ways` ways, and against ways at `shots` shot; returns the figure."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    names = list(dict.fromkeys(r.name for r in results))
    for ax, (axis, fixed, label) in zip(axes, (("shots", ways, "ways"), ("ways", shots, "shots")), strict=True):
        for name in names:
            points = [r for r in results if r.name == name and getattr(r, label) == fixed and r.accuracy is not None]
            points.sort(key=lambda r: getattr(r, axis))
            if points:
                xs = [getattr(r, axis) for r in points]
                ax.errorbar(xs, [r.accuracy for r in points], yerr=[r.ci95 for r in points], marker="o",
                            capsize=3, label=name)  # fmt: skip
        ax.set_xscale("log")
        ticks = sorted({getattr(r, axis) for r in results if getattr(r, label) == fixed})
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel(f"{axis} at test ({fixed} {label if fixed > 1 else label[:-1]})")
    axes[0].set_ylabel("test accuracy (%)")
    axes[1].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


@dataclass
class Shift:
    """One model trained and tested within `paper` and within `lake`: the drop is paper - lake (points)."""

    name: str
    paper: float
    paper_ci95: float
    lake: float
    lake_ci95: float

    @property
    def drop(self) -> float:
        return self.paper - self.lake

    @property
    def drop_ci95(self) -> float:
        """Different test tasks under the two protocols, so not paired: the two CIs add in quadrature."""
        return math.hypot(self.paper_ci95, self.lake_ci95)


def domain_shift(paper: list[Entry], lake: list[Entry]) -> list[Shift]:
    """Match the rows of two `compare_scratch` runs (protocol paper and lake) by name."""
    by_name = {r.name: r for r in lake}
    return [Shift(r.name, r.accuracy, r.ci95, by_name[r.name].accuracy, by_name[r.name].ci95)
            for r in paper if r.name in by_name]  # fmt: skip


def format_shift(shifts: list[Shift]) -> str:
    """A plain-text table of `domain_shift`."""
    lines = [f"{'model':<18}  {'paper':<13}  {'lake':<13}  drop (paper - lake)"]
    for s in shifts:
        lines.append(f"{s.name:<18}  {s.paper:5.2f} ± {s.paper_ci95:4.2f}  {s.lake:5.2f} ± {s.lake_ci95:4.2f}  "
                     f"{s.drop:+.2f} ± {s.drop_ci95:.2f}")  # fmt: skip
    return "\n".join(lines)


@dataclass
class TurnEffect:
    """One model on the same tasks with and without the `paper` split's quarter turns: accuracy upright and turned
    (percent, 95% CI over tasks) and the paired difference upright - turned."""

    name: str
    upright: float
    upright_ci95: float
    turned: float
    turned_ci95: float
    difference: float
    difference_ci95: float


def turn_effect(
    learners: dict[str, MetaLearner], classes: ClassImages, ways: int, shots: int, queries: int, tasks: int
) -> list[TurnEffect]:
    """Each learner on the first `tasks` fixed test tasks turned (as the `paper` split draws them) and on their upright
    twins (same classes and drawings): how much a model's score depends on having learned the turns."""
    rows = []
    for name, learner in learners.items():
        device = module_device(learner)
        per_task = {}
        for upright in (True, False):
            sampler = evaluation_tasks(classes, ways, shots, queries, device, upright=upright)
            per_task[upright] = evaluate(learner, sampler, tasks, per_step=False).task_accuracies
        (up, up_ci), (turned, turned_ci) = (mean_ci95(torch.tensor(per_task[u])) for u in (True, False))
        difference, ci = paired_difference(per_task[True], per_task[False])
        rows.append(TurnEffect(name, up, up_ci, turned, turned_ci, difference, ci))
    return rows


def format_turns(rows: list[TurnEffect]) -> str:
    """A plain-text table of `turn_effect`."""
    lines = [f"{'model':<22}  {'upright':<13}  {'turned':<13}  upright - turned (paired)"]
    for r in rows:
        lines.append(f"{r.name:<22}  {r.upright:5.2f} ± {r.upright_ci95:4.2f}  {r.turned:5.2f} ± {r.turned_ci95:4.2f}  "
                     f"{r.difference:+.2f} ± {r.difference_ci95:.2f}")  # fmt: skip
    return "\n".join(lines)
