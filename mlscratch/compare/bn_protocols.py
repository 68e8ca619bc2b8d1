"""BatchNorm at test time, both ways: the largest confound of a few-shot comparison table.

The MAML family normalises a task's queries with the statistics of the query batch itself ("transductive", as
Finn et al.'s code does): every query is scored knowing the others. ProtoNet, Matching Networks, the embedding
Meta Network and pretrain-finetune normalise queries with the support set's statistics ("support"), so each query
is scored on its own. Transduction alone is worth about 2 points on Omniglot 5-way 1-shot (Nichol et al. 2018).
Every Conv4-based model can run either way, so `score_both` scores each under both protocols on the same tasks,
and the table can be read with the confound removed.

    rows = score_both({"maml-5w1s": maml, "protonet-5w1s": protonet}, test_classes, 5, 1, 15, tasks=200)
    print(format_rows(rows))
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ..algorithms.base import MetaLearner
from ..data import ClassImages
from ..device import module_device
from ..errors import ConfigError
from ..evaluation import evaluate, mean_ci95
from ..experiment import evaluation_tasks
from ..models.conv4 import BN_MODES, Conv4
from .paired import paired_difference, verdict


def conv4s(learner: MetaLearner) -> list[Conv4]:
    return [module for module in learner.modules() if isinstance(module, Conv4)]


def native_protocol(learner: MetaLearner) -> str | None:
    """The BatchNorm protocol a model was trained and is scored with, or None if it has no Conv4 to switch."""
    modes = {module.bn for module in conv4s(learner)}
    return modes.pop() if len(modes) == 1 else None


@contextmanager
def bn_protocol(learner: MetaLearner, mode: str) -> Iterator[MetaLearner]:
    """Within the block, every Conv4 of `learner` normalises queries the `mode` way; restored afterwards."""
    if mode not in BN_MODES:
        raise ConfigError(f"unknown BatchNorm protocol {mode!r}; use one of {', '.join(BN_MODES)}")
    modules = conv4s(learner)
    if not modules:
        raise ConfigError(f"{learner.name or type(learner).__name__} has no Conv4 BatchNorm to switch")
    before = [module.bn for module in modules]
    try:
        for module in modules:
            module.bn = mode
        yield learner
    finally:
        for module, mode_before in zip(modules, before, strict=True):
            module.bn = mode_before


@dataclass
class BnRow:
    """One model under both protocols on the same tasks: accuracy and 95% CI per protocol (percent), and the paired
    difference support - transductive."""

    name: str
    native: str
    accuracy: dict[str, float]
    ci95: dict[str, float]
    difference: float
    difference_ci95: float
    n_tasks: int


def score_both(
    learners: Mapping[str, MetaLearner],
    classes: ClassImages,
    ways: int,
    shots: int,
    queries: int,
    tasks: int,
    native_accuracies: Mapping[str, list[float]] | None = None,
) -> list[BnRow]:
    """Each Conv4 model under "transductive" and "support" on the first `tasks` fixed test tasks.

    native_accuracies: per-task accuracies a record already holds for a model's own protocol (same tasks, same
    weights); only the other protocol is then measured. Models without a Conv4 are left out."""
    rows = []
    for name, learner in learners.items():
        native = native_protocol(learner)
        if native is None:
            continue
        per_task = {}
        for mode in BN_MODES:
            stored = (native_accuracies or {}).get(name)
            if mode == native and stored is not None and len(stored) >= tasks:
                per_task[mode] = torch.tensor(stored[:tasks], dtype=torch.float64)
                continue
            sampler = evaluation_tasks(classes, ways, shots, queries, module_device(learner))
            with bn_protocol(learner, mode):
                result = evaluate(learner, sampler, tasks, per_step=False)
            per_task[mode] = torch.tensor(result.task_accuracies, dtype=torch.float64)
        stats = {mode: mean_ci95(values) for mode, values in per_task.items()}
        difference, ci = paired_difference(per_task["support"].tolist(), per_task["transductive"].tolist())
        rows.append(BnRow(name, native, {m: s[0] for m, s in stats.items()}, {m: s[1] for m, s in stats.items()},
                          difference, ci, tasks))  # fmt: skip
    return rows


def ranks(rows: list[BnRow], mode: str) -> dict[str, int]:
    """1 for the most accurate model under `mode`, 2 for the next, ..."""
    order = sorted(rows, key=lambda r: -r.accuracy[mode])
    return {r.name: i + 1 for i, r in enumerate(order)}


def format_rows(rows: list[BnRow]) -> str:
    """A Markdown table: both protocols, the paired change, and each model's rank both ways."""
    by_t, by_s = ranks(rows, "transductive"), ranks(rows, "support")
    lines = ["| model | trained with | transductive | support | support − transductive (paired) | rank T | rank S |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in sorted(rows, key=lambda r: by_t[r.name]):
        change = verdict(r.difference, r.difference_ci95, "higher", "lower", why=False)
        lines.append(f"| {r.name} | {r.native} | {r.accuracy['transductive']:.2f} ± {r.ci95['transductive']:.2f} | "
                     f"{r.accuracy['support']:.2f} ± {r.ci95['support']:.2f} | {r.difference:+.2f} ± "
                     f"{r.difference_ci95:.2f} ({change}) | {by_t[r.name]} | {by_s[r.name]} |")  # fmt: skip
    return "\n".join(lines)


def rank_changes(rows: list[BnRow]) -> list[tuple[str, int, int]]:
    """(model, rank transductive, rank support) for the models whose rank differs between the protocols."""
    by_t, by_s = ranks(rows, "transductive"), ranks(rows, "support")
    return [(r.name, by_t[r.name], by_s[r.name]) for r in rows if by_t[r.name] != by_s[r.name]]


__all__ = ["BnRow", "bn_protocol", "format_rows", "native_protocol", "rank_changes", "ranks", "score_both"]
