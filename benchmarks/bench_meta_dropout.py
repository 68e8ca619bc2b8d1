"""Overhead of Meta Dropout per meta-iteration (and per evaluated task) against plain MAML.

    python benchmarks/bench_meta_dropout.py [--threads 2] [--repeats 5] [--meta-batch 32] [--device cpu]

Same tasks for every variant (Omniglot, paper split; 5-way 1-shot, 15 queries per class by default).
Prints the median milliseconds (wall clock and this process's CPU time) of one meta-iteration
(meta_loss + backward) and of evaluating one task (adapt with test_inner_steps + score, in eval mode),
and each variant's ratio to plain MAML. The learned variant is timed at evaluation both with the
paper's 30 noise samples and with none.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import torch

from mlscratch.algorithms import MetaLearner, build
from mlscratch.data import load_splits
from mlscratch.tasks import TaskBatch, TaskSampler

VARIANTS = {  # name -> MAML hparams
    "maml": {},
    "consistent": {"meta_dropout": "consistent"},
    "learned": {"meta_dropout": "learned"},
    "learned, 0 eval samples": {"meta_dropout": "learned", "meta_dropout_options": {"eval_samples": 0}},
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def meta_iteration(learner: MetaLearner, batch: TaskBatch) -> None:
    learner.train()
    learner.zero_grad(set_to_none=True)
    loss, _ = learner.meta_loss(batch)
    loss.backward()


def evaluate_batch(learner: MetaLearner, batch: TaskBatch) -> None:
    learner.eval()
    learner.predict(*batch[:3])


def median_ms(fn, repeats: int, device: torch.device) -> tuple[float, float]:
    """Median (wall-clock ms, CPU ms of this process) of `repeats` calls after one warm-up call.

    CPU time is the fairer number on a shared machine (it does not count waiting for a core).
    """
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        sync(device)
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        sync(device)
        wall.append(1000 * (time.perf_counter() - start))
        cpu.append(1000 * (time.process_time() - start_cpu))
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="omniglot")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--execution", default="auto", choices=["auto", "vmap", "loop"])
    parser.add_argument("--n-way", type=int, default=5)
    parser.add_argument("--k-shot", type=int, default=1)
    parser.add_argument("--k-query", type=int, default=15)
    parser.add_argument("--meta-batch", type=int, default=32)
    parser.add_argument("--inner-steps", type=int, default=1)
    parser.add_argument("--test-inner-steps", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    train = load_splits(args.dataset, "paper")["train"]
    sampler = TaskSampler(train, args.n_way, args.k_shot, args.k_query, args.meta_batch, seed=0, device=device)
    batch = sampler.sample()
    print(
        f"{args.n_way}-way {args.k_shot}-shot, {args.k_query} queries, meta-batch {args.meta_batch}, "
        f"{args.inner_steps} inner step(s) ({args.test_inner_steps} at test), device {device}, "
        f"{args.threads} threads, median of {args.repeats}"
    )
    print(
        f"{'variant':<26}{'meta-iteration ms (wall / cpu)':>32}{'ratio':>7}"
        f"{'eval ms/task (wall / cpu)':>28}{'ratio':>7}"
    )
    base_train = base_eval = None
    for name, hparams in VARIANTS.items():
        torch.manual_seed(0)
        learner = build(
            "maml",
            n_way=args.n_way,
            inner_steps=args.inner_steps,
            test_inner_steps=args.test_inner_steps,
            execution=args.execution,
            **hparams,
        ).to(device)
        train_wall, train_cpu = median_ms(partial(meta_iteration, learner, batch), args.repeats, device)
        eval_wall, eval_cpu = (
            t / args.meta_batch for t in median_ms(partial(evaluate_batch, learner, batch), args.repeats, device)
        )
        train_ref, eval_ref = (train_cpu, eval_cpu) if device.type == "cpu" else (train_wall, eval_wall)
        base_train, base_eval = base_train or train_ref, base_eval or eval_ref
        print(
            f"{name:<26}{train_wall:>20,.0f} / {train_cpu:>9,.0f}{train_ref / base_train:>7.2f}"
            f"{eval_wall:>16,.1f} / {eval_cpu:>9,.1f}{eval_ref / base_eval:>7.2f}"
        )
    print("ratios: CPU time on cpu, wall time on cuda")


if __name__ == "__main__":
    main()
