"""How fast can a MAML meta-iteration get on this CPU? The one-thread cost sets a floor that no execution beats.

    python benchmarks/bench_ceiling.py                   # 15 queries, 1 inner step, second order, 2 cores
    python benchmarks/bench_ceiling.py --queries 1 --steps 5

The same meta-iteration (bench_maml.py's: 5-way 1-shot, meta-batch 32, inner loop, query loss, backward, Adam)
timed round-robin as
    ours / learn2learn            with `--threads` torch threads (what the package and the peer do),
    ours@1 / learn2learn@1        with one torch thread (the work itself, without parallelism),
    task-threads                  an experiment, not in the package: the meta-batch split over `--threads` Python
                                  threads, each running its half of the tasks on one torch thread (per-thread
                                  copies of the model, per-task gradients summed in task order).
With c cores the best any execution can do is the one-thread time divided by c; the script prints that floor
and the speed-up over learn2learn it would give. The package and learn2learn run the same convolutions, so a
speed-up over learn2learn larger than that ceiling cannot come from scheduling, only from doing less work.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F
from bench_maml import installed, learn2learn, ours

from mlscratch.algorithms import build
from mlscratch.data import load_splits
from mlscratch.tasks import TaskBatch, TaskSampler


def one_thread(make: Callable) -> Callable:
    """The same runner, timed with a single torch thread."""

    def make_one(*args):
        step = make(*args)

        def run(batch: TaskBatch) -> None:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                step(batch)
            finally:
                torch.set_num_threads(threads)

        return run

    return make_one


def task_threads(workers: int) -> Callable:
    """The experiment: `workers` Python threads, each on one torch thread, each scoring a share of the tasks."""

    def make(learner, steps, first_order, lr, batch):
        learner = copy.deepcopy(learner)
        learner.execution, learner.inner_steps, learner.first_order = "loop", steps, first_order
        replicas = [copy.deepcopy(learner) for _ in range(workers)]  # functional_call swaps a module's weights
        adam = torch.optim.Adam(learner.parameters(), 1e-3)
        pool = ThreadPoolExecutor(workers)

        def share(replica, batch: TaskBatch, tasks: slice) -> list[torch.Tensor]:
            replica.load_state_dict(learner.state_dict())
            logits = replica.run_tasks(batch.support_x[tasks], batch.support_y[tasks], batch.query_x[tasks])
            loss = F.cross_entropy(logits.flatten(0, 1), batch.query_y[tasks].flatten(), reduction="sum")
            return torch.autograd.grad(loss, list(replica.parameters()))

        def step(batch: TaskBatch) -> None:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            size = -(-len(batch.support_x) // workers)
            try:
                futures = [
                    pool.submit(share, replica, batch, slice(i * size, (i + 1) * size))
                    for i, replica in enumerate(replicas)
                ]
                shares = [future.result() for future in futures]
            finally:
                torch.set_num_threads(threads)
            queries = batch.query_y.numel()
            for p, *grads in zip(learner.parameters(), *shares, strict=True):
                p.grad = sum(grads) / queries
            adam.step()

        return step

    return make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic", help="omniglot, synthetic or auto (timing: the same)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (and cores) to use")
    parser.add_argument("--queries", type=int, default=15)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--order", choices=["second", "first"], default="second")
    parser.add_argument("--meta-batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="timed meta-iterations per method (after 1 warm-up)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train = load_splits(args.dataset, "paper")["train"]
    torch.manual_seed(0)
    learner = build("maml", n_way=5, in_channels=train.image_shape[0], image_size=train.image_shape[1])
    makers = {"ours": ours("auto"), "ours@1": one_thread(ours("auto")), "task-threads": task_threads(args.threads)}
    if installed("learn2learn"):
        makers |= {"learn2learn": learn2learn, "learn2learn@1": one_thread(learn2learn)}
    else:
        print("learn2learn is not installed: see bench_maml.py's docstring")
    sampler = TaskSampler(train, 5, 1, args.queries, args.meta_batch, seed=0)
    batches = [sampler.sample() for _ in range(args.repeats + 1)]
    runners = {name: make(learner, args.steps, args.order == "first", 0.4, batches[0]) for name, make in makers.items()}
    times: dict[str, list[float]] = {name: [] for name in runners}
    for i, batch in enumerate(batches):
        for name, run in runners.items():
            tic = time.perf_counter()
            run(batch)
            if i > 0:
                times[name].append(1000 * (time.perf_counter() - tic))
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(
        f"{args.queries} queries, {args.steps} inner step(s), {args.order} order, meta-batch {args.meta_batch}, "
        f"torch {torch.__version__}; median ms of {args.repeats}"
    )
    for name, ms in medians.items():
        print(f"  {name:<14}{ms:>9,.0f} ms")
    floor = medians["ours@1"] / args.threads
    print(f"  floor: ours@1 / {args.threads} cores = {floor:,.0f} ms")
    if "learn2learn" in medians:
        print(
            f"  learn2learn / ours: {medians['learn2learn'] / medians['ours']:.2f}x; at most "
            f"{medians['learn2learn'] / floor:.2f}x for any execution of the same work on {args.threads} cores "
            f"(task-threads reaches {medians['learn2learn'] / medians['task-threads']:.2f}x)"
        )


if __name__ == "__main__":
    main()
