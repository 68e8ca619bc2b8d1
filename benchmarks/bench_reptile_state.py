"""What carrying Reptile's inner Adam state costs: the tasks of a meta-batch then run one after another.

    python benchmarks/bench_reptile_state.py                   # the zoo recipe's meta-batch (5) and a larger one (32)
    python benchmarks/bench_reptile_state.py --repeats 10 --threads 1

Milliseconds per Reptile meta-iteration on real Omniglot (5-way 1-shot, 1 + 9 images per class, 5 inner Adam
steps on mini-batches of 10), three ways, round-robin in one process so machine load hits all alike:
    carried        the official behaviour: moments carried from task to task, so a loop over tasks
    fresh-loop     moments restarted per task, loop over tasks
    fresh-vmap     moments restarted per task, the tasks batched by vmap (possible only when nothing is carried)
On a CPU `auto` already takes the loop for these 50-image tasks, so carried costs what fresh-loop costs; the
difference that matters is on a GPU, where vmap batches the tasks.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mlscratch.algorithms import build
from mlscratch.data import load_splits
from mlscratch.tasks import TaskSampler

VARIANTS = {"carried": ("carried", "loop"), "fresh-loop": ("fresh", "loop"), "fresh-vmap": ("fresh", "vmap")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meta-batch", type=int, nargs="+", default=[5, 32])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    train = load_splits("auto", "paper")["train"]
    print(f"torch threads: {torch.get_num_threads()}; ms per meta-iteration (median of {args.repeats})")
    for meta_batch in args.meta_batch:
        batch = TaskSampler(train, 5, 1, 9, meta_batch, seed=0).sample()
        learners = {}
        for name, (state, execution) in VARIANTS.items():
            torch.manual_seed(0)
            learner = build("reptile", inner_state=state, execution=execution)
            learners[name] = (learner, learner.configure_optimizer(1.0, 100)[0])
        times = {name: [] for name in VARIANTS}
        for _ in range(args.repeats + 1):  # the first round warms up
            for name, (learner, optimizer) in learners.items():
                tic = time.perf_counter()
                learner.outer_step(batch, optimizer)
                times[name].append(1000 * (time.perf_counter() - tic))
        medians = {name: statistics.median(t[1:]) for name, t in times.items()}
        row = ", ".join(f"{name} {ms:.0f}" for name, ms in medians.items())
        ratio = medians["carried"] / medians["fresh-vmap"]
        print(f"meta-batch {meta_batch:>3}: {row}; carried / fresh-vmap = {ratio:.2f}")


if __name__ == "__main__":
    main()
