"""One compared model (`Entry`), how it is scored on the fixed test tasks, and the table and bar plot."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field, fields

import matplotlib.pyplot as plt

from ..algorithms import MetaLearner
from ..data import ClassImages
from ..device import module_device
from ..errors import ConfigError
from ..evaluation import evaluate, quantile95
from ..experiment import evaluation_tasks
from ..measure import peak_memory, task_latency


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
        """Standard deviation of the accuracy across training seeds (None for one seed)."""
        return statistics.stdev(self.seed_accuracies) if len(self.seed_accuracies) > 1 else None

    @property
    def seed_ci95(self) -> float | None:
        """95% interval of the mean over training seeds (Student's t: seeds are few)."""
        n = len(self.seed_accuracies)
        return quantile95(n) * self.seed_spread / math.sqrt(n) if n > 1 else None

    def to_dict(self) -> dict:
        return {**asdict(self), "seed_spread": self.seed_spread, "seed_ci95": self.seed_ci95}

    @classmethod
    def from_dict(cls, data: dict) -> Entry:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


LATENCY_TASKS = 3  # test tasks timed one at a time (measure.task_latency), after one warm-up task


def score(
    learner: MetaLearner,
    classes: ClassImages,
    ways: int,
    shots: int,
    queries: int,
    tasks: int,
    *,
    scored: bool = True,
    upright: bool = False,
) -> tuple[list[float] | None, float, int]:
    """(per-task accuracies on the first `tasks` fixed test tasks, seconds per task, peak bytes of one task).

    Latency is the one measurement every chapter uses (`measure.task_latency`: LATENCY_TASKS tasks one at a time,
    one thread, after a warm-up). scored=False: only latency and memory (the accuracies come from a record).
    upright: the test tasks without the split's quarter turns (the same classes and drawings)."""
    device = module_device(learner)
    sampler = evaluation_tasks(classes, ways, shots, queries, device, upright=upright)
    accuracies = evaluate(learner, sampler, tasks, per_step=False).task_accuracies if scored else None
    first = sampler.sample(LATENCY_TASKS)
    latency = task_latency(learner, first) / 1000
    peak = peak_memory(lambda: learner.predict(*first.task(0)[:3]), device)
    return accuracies, latency, peak


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
