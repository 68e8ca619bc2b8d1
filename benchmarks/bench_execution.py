"""Where batching tasks (vmap) beats the per-task loop, and whether execution="auto" picks the faster one.

    python benchmarks/bench_execution.py                  # the default grid below, 2 threads
    python benchmarks/bench_execution.py --threads 1 --repeats 5

MAML on Conv4, 5-way 1-shot; for each setting the two paths run round-robin in this process on the same
tasks (medians). "train": one meta-iteration (meta_loss + backward), second or first order; "eval":
adaptation_logits with test_inner_steps=3 in eval mode, no outer graph (what the evaluator runs).
Prints loop and vmap milliseconds, loop / vmap (> 1: vmap faster), auto's pick and its reason.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from mlscratch.algorithms import MetaLearner, build
from mlscratch.data import load_splits
from mlscratch.device import resolve_device
from mlscratch.tasks import TaskBatch, TaskSampler

# (mode, queries per class, tasks per batch, inner steps, order)
GRID = [
    ("train", 1, 32, 1, "second"),
    ("train", 1, 32, 5, "second"),
    ("train", 1, 32, 1, "first"),
    ("train", 1, 8, 1, "second"),
    ("train", 2, 32, 1, "second"),
    ("train", 3, 32, 1, "second"),
    ("train", 15, 32, 1, "second"),
    ("eval", 1, 25, 3, "second"),
    ("eval", 15, 25, 3, "second"),
]


def runner(learner: MetaLearner, mode: str):
    if mode == "eval":
        learner.eval()
        return lambda batch: learner.adaptation_logits(*batch[:3])
    adam = torch.optim.Adam(learner.parameters(), 1e-3)

    def step(batch: TaskBatch) -> None:
        adam.zero_grad()
        learner.meta_loss(batch)[0].backward()
        adam.step()

    return step


def auto_pick(learner: MetaLearner, batch: TaskBatch, mode: str) -> str:
    learner = copy.deepcopy(learner)
    learner.execution = "auto"
    with torch.set_grad_enabled(mode == "train"):  # as meta_loss / adaptation_logits call it
        learner.resolved_execution(batch.support_x, batch.query_x)
    return learner.execution_reason


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="auto")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per path (after 1 warm-up)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    train = load_splits(args.dataset, "paper")["train"]
    print(f"device {device} ({torch.get_num_threads()} threads), torch {torch.__version__}; MAML, 5-way 1-shot")
    columns = ("mode", 5), ("queries", 7), ("tasks", 5), ("steps", 5), ("order", 6), ("loop ms", 9), ("vmap ms", 9)
    print(" ".join(f"{name:>{width}}" for name, width in columns) + f" {'loop/vmap':>9}  auto")
    for mode, queries, tasks, steps, order in GRID:
        sampler = TaskSampler(train, 5, 1, queries, tasks, seed=0, device=device)
        batches = [sampler.sample() for _ in range(args.repeats + 1)]
        torch.manual_seed(0)
        base = build("maml", inner_steps=steps, test_inner_steps=steps, first_order=order == "first").to(device)
        paths = {}
        for execution in ("loop", "vmap"):
            learner = copy.deepcopy(base)
            learner.execution = execution
            paths[execution] = runner(learner, mode)
        times: dict[str, list[float]] = {e: [] for e in paths}
        for i, batch in enumerate(batches):
            for execution, run in paths.items():
                sync()
                tic = time.perf_counter()
                run(batch)
                sync()
                if i > 0:
                    times[execution].append(1000 * (time.perf_counter() - tic))
        loop, vmap = (statistics.median(times[e]) for e in ("loop", "vmap"))
        pick = auto_pick(base, batches[0], mode)
        verdict = "ok" if pick.startswith("vmap" if vmap < loop else "loop") else "SLOWER PICK"
        print(
            f"{mode:>5} {queries:>7} {tasks:>5} {steps:>5} {order:>6} {loop:>9,.0f} {vmap:>9,.0f} {loop / vmap:>9.2f}  "
            f"{pick} [{verdict}]",
            flush=True,
        )


if __name__ == "__main__":
    main()
