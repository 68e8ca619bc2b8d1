"""Milliseconds per MAML meta-iteration: mlscratch vs learn2learn vs higher, same Conv4, same tasks, one process.

    python benchmarks/bench_maml.py                          # 1 and 5 inner steps, second and first order
    python benchmarks/bench_maml.py --steps 1 --orders second --repeats 5

A meta-iteration = inner loop on each of the meta-batch's tasks, query loss, backward, Adam step.
5-way 1-shot, 15 queries, meta-batch 32, inner lr 0.4 by default. Methods run round-robin (one
iteration of each per repeat) so a change in machine load hits all of them alike; medians and
ratios to learn2learn are printed. Peers that are not installed are skipped (and named):
    bash ../shared/tools/install-learn2learn.sh     # learn2learn 0.2.0 (its PyPI build fails on 3.11+)
    pip install higher
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from mlscratch.algorithms import build
from mlscratch.data import load_splits
from mlscratch.device import resolve_device
from mlscratch.tasks import TaskBatch, TaskSampler


def ours(execution: str) -> Callable:
    def make(learner, steps, first_order, lr):
        learner = copy.deepcopy(learner)
        learner.execution, learner.inner_steps, learner.first_order = execution, steps, first_order
        adam = torch.optim.Adam(learner.parameters(), 1e-3)

        def step(batch: TaskBatch) -> None:
            adam.zero_grad()
            learner.meta_loss(batch)[0].backward()
            adam.step()

        return step

    return make


def learn2learn(learner, steps, first_order, lr):
    import learn2learn as l2l

    maml = l2l.algorithms.MAML(copy.deepcopy(learner.backbone), lr=lr, first_order=first_order)
    adam = torch.optim.Adam(maml.parameters(), 1e-3)

    def step(batch: TaskBatch) -> None:  # learn2learn's documented usage: clone, adapt, backward per task
        adam.zero_grad()
        for sx, sy, qx, qy in zip(*batch, strict=True):
            clone = maml.clone()
            for _ in range(steps):
                clone.adapt(F.cross_entropy(clone(sx), sy))
            (F.cross_entropy(clone(qx), qy) / len(sx)).backward()
        adam.step()

    return step


def higher_(learner, steps, first_order, lr):
    import higher

    model = copy.deepcopy(learner.backbone)
    adam, sgd = torch.optim.Adam(model.parameters(), 1e-3), torch.optim.SGD(model.parameters(), lr=lr)
    detach = (lambda grads: [g.detach() for g in grads]) if first_order else None

    def step(batch: TaskBatch) -> None:  # higher's documented usage: innerloop_ctx per task
        adam.zero_grad()
        for sx, sy, qx, qy in zip(*batch, strict=True):
            with higher.innerloop_ctx(model, sgd, copy_initial_weights=False) as (fmodel, diffopt):
                for _ in range(steps):
                    diffopt.step(F.cross_entropy(fmodel(sx), sy), grad_callback=detach)
                (F.cross_entropy(fmodel(qx), qy) / len(sx)).backward()
        adam.step()

    return step


def installed(module: str) -> bool:
    try:
        __import__(module)
    except Exception:  # learn2learn's import can fail in many ways (gym, numpy versions)
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="auto", help="omniglot, synthetic or auto (timing does not depend on it)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=2, help="torch threads on CPU")
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--orders", nargs="+", choices=["second", "first"], default=["second", "first"])
    parser.add_argument("--methods", nargs="+", default=["ours", "ours-vmap", "ours-loop", "learn2learn", "higher"])
    parser.add_argument("--meta-batch", type=int, default=32)
    parser.add_argument("--ways", type=int, default=5)
    parser.add_argument("--shots", type=int, default=1)
    parser.add_argument("--queries", type=int, default=15)
    parser.add_argument("--inner-lr", type=float, default=0.4)
    parser.add_argument("--repeats", type=int, default=5, help="timed meta-iterations per method (after 1 warm-up)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    train = load_splits(args.dataset, "paper")["train"]
    sampler = TaskSampler(train, args.ways, args.shots, args.queries, args.meta_batch, seed=0, device=device)
    batches = [sampler.sample() for _ in range(args.repeats + 1)]  # the same tasks for every method
    torch.manual_seed(0)
    learner = build(
        "maml",
        n_way=args.ways,
        in_channels=train.image_shape[0],
        image_size=train.image_shape[1],
        inner_lr=args.inner_lr,
    ).to(device)

    makers = {
        "ours": ours("auto"),
        "ours-vmap": ours("vmap"),
        "ours-loop": ours("loop"),
        "learn2learn": learn2learn,
        "higher": higher_,
    }
    skipped = [m for m in ("learn2learn", "higher") if m in args.methods and not installed(m)]
    for name in skipped:
        print(f"skipping {name}: not installed (see this script's docstring to install it)")
    methods = [m for m in args.methods if m in makers and m not in skipped]
    print(
        f"device {device} ({torch.get_num_threads()} threads), torch {torch.__version__}, dataset "
        f"{train.meta.get('dataset', train.source)}; {args.ways}-way {args.shots}-shot, {args.queries} queries, "
        f"meta-batch {args.meta_batch}; median of {args.repeats} meta-iterations; ours = "
        f"{'vmap' if device.type == 'cuda' else 'loop'} on this device"
    )
    print(f"{'steps':>5} {'order':>6} " + "".join(f"{m:>13}" for m in methods) + "   ratio learn2learn / ours")
    for steps in args.steps:
        for order in args.orders:
            runners = {m: makers[m](learner, steps, order == "first", args.inner_lr) for m in methods}
            times: dict[str, list[float]] = {m: [] for m in methods}
            for i, batch in enumerate(batches):
                for m in methods:
                    sync()
                    tic = time.perf_counter()
                    runners[m](batch)
                    sync()
                    if i > 0:  # the first iteration is a warm-up
                        times[m].append(1000 * (time.perf_counter() - tic))
            medians = {m: statistics.median(t) for m, t in times.items()}
            ratio = (
                f"{medians['learn2learn'] / medians['ours']:.2f}x"
                if "learn2learn" in medians and "ours" in medians
                else "-"
            )
            print(
                f"{steps:>5} {order:>6} " + "".join(f"{medians[m]:>13,.0f}" for m in methods) + f"   {ratio}",
                flush=True,
            )


if __name__ == "__main__":
    main()
