"""Evaluation speed: test tasks per second through `mlscratch.evaluation.evaluate`, as the experiments run it.

    python benchmarks/bench_eval.py                   # 2 threads, 50 tasks per timed run, 3 runs
    python benchmarks/bench_eval.py --threads 1 --tasks 100

5-way 1-shot, 15 queries per class, tasks drawn EVAL_BATCH (25) at a time, as in validation and test.
Learners are untrained (speed does not depend on the weights). Variants run round-robin in this process;
median tasks/s. MAML adapts with 3 test steps, with the per-step curve (adaptation_logits: the query
pass after every step) and without (predict: the query pass once), by "auto" (its pick is printed),
the per-task loop and vmap. ProtoNet and the embedding Meta Network run their tasks one by one.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from mlscratch.algorithms import ALGORITHMS, MetaLearner, build
from mlscratch.data import load_splits
from mlscratch.evaluation import evaluate
from mlscratch.experiment import EVAL_BATCH
from mlscratch.tasks import TaskSampler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="auto")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=50, help="tasks per timed evaluation")
    parser.add_argument("--repeats", type=int, default=3, help="timed evaluations per variant (after 1 warm-up)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    test = load_splits(args.dataset, "paper")["test"]
    sampler = TaskSampler(test, 5, 1, 15, EVAL_BATCH, seed=0)
    torch.manual_seed(0)
    maml = build("maml", test_inner_steps=3)
    variants: dict[str, tuple[MetaLearner, bool]] = {}  # name -> (learner, per-step curve)
    for execution in ("auto", "loop", "vmap"):
        learner = copy.deepcopy(maml)
        learner.execution = execution
        for curve in (True, False):
            variants[f"maml {execution}, {'with' if curve else 'without'} curve"] = (learner, curve)
    for name in ("protonet", "metanet-embedding"):
        if name in ALGORITHMS:
            variants[name] = (build(name), False)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for i in range(args.repeats + 1):
        for name, (learner, curve) in variants.items():
            tic = time.perf_counter()
            evaluate(learner, sampler, args.tasks, per_step=curve)
            if i > 0:  # the first evaluation is a warm-up
                times[name].append(time.perf_counter() - tic)
    batch = sampler.sample()
    with torch.no_grad():
        variants["maml auto, with curve"][0].resolved_execution(batch.support_x, batch.query_x)
    print(
        f"cpu ({torch.get_num_threads()} threads), torch {torch.__version__}; 5-way 1-shot, 15 queries, "
        f"{args.tasks} tasks per evaluation, median of {args.repeats}; maml auto = "
        f"{variants['maml auto, with curve'][0].execution_reason}"
    )
    for name, seconds in times.items():
        median = statistics.median(seconds)
        print(f"{name:>28}: {args.tasks / median:7.1f} tasks/s ({1000 * median / args.tasks:6.1f} ms per task)")


if __name__ == "__main__":
    main()
