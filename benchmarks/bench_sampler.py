"""Tasks per second of TaskSampler: 5-way 1-shot, 15 queries, meta-batch 32, real Omniglot (paper split).

    python benchmarks/bench_sampler.py [--threads 2] [--seconds 5] [--dataset omniglot]

Target (issue 2): more than 5,000 tasks/s on 2 CPU cores, so sampling never limits training.
"""

from __future__ import annotations

import argparse
import time

import torch

from mlscratch.data import load_splits
from mlscratch.tasks import TaskSampler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="omniglot")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n-way", type=int, default=5)
    parser.add_argument("--k-shot", type=int, default=1)
    parser.add_argument("--k-query", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train = load_splits(args.dataset, "paper")["train"]
    sampler = TaskSampler(train, args.n_way, args.k_shot, args.k_query, args.batch_size, seed=0, device=args.device)
    for _ in range(5):  # warm-up
        sampler.sample()
    batches, start = 0, time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        batch = sampler.sample()
        batches += 1
    if args.device != "cpu":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    tasks_per_s = batches * args.batch_size / elapsed
    print(
        f"{args.n_way}-way {args.k_shot}-shot {args.k_query} queries, meta-batch {args.batch_size}, "
        f"rotate={sampler.rotate}, {args.threads} threads, device {args.device}: "
        f"{tasks_per_s:,.0f} tasks/s ({batches} batches in {elapsed:.2f} s; "
        f"support_x {tuple(batch.support_x.shape)})"
    )


if __name__ == "__main__":
    main()
