"""Conv4's internals, each against the form it replaced: is every speed change worth keeping?

    python benchmarks/bench_conv4.py                 # 2 threads, 3 timed runs per variant
    python benchmarks/bench_conv4.py --threads 1 --repeats 5

MAML, 5-way 1-shot, meta-batch 32 (25 for evaluation); variants run round-robin on the same tasks in this
process; medians and each variant's speed-up over the first of its group (> 1: faster).
- bn="support" (ProtoNet's, the Meta Network's): statistics by the two-pass `batch_stats` vs torch.var_mean;
- vmap: BatchNorm as BatchNormFunction (fused kernels, written-out second derivative, exact) vs the
  written-out form the vmap path used before (exact, autograd through var_mean and elementwise ops) vs
  F.batch_norm (fast but its second derivative is wrong under vmap: a timing reference only).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F
from bench_execution import runner
from torch import Tensor

from mlscratch.algorithms import MAML, build
from mlscratch.data import load_splits
from mlscratch.models.conv4 import ConvBlock, TaskBatchNorm
from mlscratch.tasks import TaskSampler


class WrittenOutNorm(TaskBatchNorm):
    """The written-out BatchNorm as it was: var_mean and elementwise ops through autograd (under vmap and for
    bn="support" statistics; BatchNormFunction and the two-pass `batch_stats` replaced it)."""

    def forward(self, x: Tensor, stats_rows: int | None = None) -> Tensor:
        if self.fused and stats_rows is None:
            return super().forward(x, stats_rows)
        reference = x if stats_rows is None else x[:stats_rows]
        var, mean = torch.var_mean(reference, dim=(0, 2, 3), unbiased=False, keepdim=True)
        return (x - mean) * (self.weight[:, None, None] * torch.rsqrt(var + self.eps)) + self.bias[:, None, None]


class FusedNorm(TaskBatchNorm):
    """F.batch_norm everywhere, also under vmap (wrong second derivative there in torch 2.14)."""

    def forward(self, x: Tensor, stats_rows: int | None = None) -> Tensor:
        if stats_rows is not None:
            return super().forward(x, stats_rows)
        return F.batch_norm(x, None, None, self.weight, self.bias, training=True, eps=self.eps)


def variant(base: MAML, execution: str, norm: type[TaskBatchNorm] = TaskBatchNorm) -> MAML:
    learner = copy.deepcopy(base)
    learner.execution = execution
    for block in learner.backbone.modules():
        if isinstance(block, ConvBlock):
            block.norm.__class__ = norm  # same parameters, another forward
    return learner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="auto")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train = load_splits(args.dataset, "paper")["train"]
    torch.manual_seed(0)
    base = build("maml", inner_steps=1, test_inner_steps=3)
    support_bn = build("maml", inner_steps=1, test_inner_steps=3, bn="support")
    groups = {  # title -> (mode, queries, tasks, {variant name: learner})
        'loop, eval, 15 queries, bn="support"': (
            "eval",
            15,
            25,
            {"var_mean": variant(support_bn, "loop", WrittenOutNorm), "batch_stats": variant(support_bn, "loop")},
        ),
        "vmap, train, 1 query": (
            "train",
            1,
            32,
            {
                "written-out": variant(base, "vmap", WrittenOutNorm),
                "BatchNormFunction": variant(base, "vmap"),
                "F.batch_norm (inexact)": variant(base, "vmap", FusedNorm),
            },
        ),
    }
    print(f"cpu ({torch.get_num_threads()} threads), torch {torch.__version__}; MAML 5-way 1-shot; median ms")
    for title, (mode, queries, tasks, learners) in groups.items():
        sampler = TaskSampler(train, 5, 1, queries, tasks, seed=0)
        batches = [sampler.sample() for _ in range(args.repeats + 1)]
        runs = {name: runner(learner, mode) for name, learner in learners.items()}
        times: dict[str, list[float]] = {name: [] for name in runs}
        for i, batch in enumerate(batches):
            for name, run in runs.items():
                tic = time.perf_counter()
                run(batch)
                if i > 0:
                    times[name].append(1000 * (time.perf_counter() - tic))
        medians = {name: statistics.median(t) for name, t in times.items()}
        first = next(iter(medians.values()))
        cells = ", ".join(f"{name} {ms:,.0f} ({first / ms:.2f}x)" for name, ms in medians.items())
        print(f"{title}: {cells}", flush=True)


if __name__ == "__main__":
    main()
