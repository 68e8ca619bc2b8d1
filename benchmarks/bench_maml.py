"""Milliseconds per MAML meta-iteration: mlscratch vs a plain torch.func MAML vs learn2learn vs higher, one process.

    python benchmarks/bench_maml.py                  # 1 and 15 queries, 1 and 5 inner steps, second and first order
    python benchmarks/bench_maml.py --queries 1 --steps 1 --orders second --repeats 5 --threads 1

A meta-iteration = inner loop on each of the meta-batch's tasks, query loss, backward, Adam step.
5-way 1-shot, meta-batch 32, inner lr 0.4 by default. Methods run round-robin (one iteration of each
per repeat) so a change in machine load hits all of them alike; medians and speed-ups of ours
(their time / ours) are printed. Methods:
    ours          what execution="auto" picks for the batch (its reason is printed), mlscratch's MAML
    ours-loop, ours-vmap   mlscratch forced to one path (benchmarks/bench_execution.py compares the two)
    reference     a plain torch.func MAML, vmap over tasks (benchmarks/reference_maml.py; not exact, see there)
    learn2learn, higher    the peers' documented per-task usage, on mlscratch's Conv4
Peers that are not installed are skipped (and named):
    PATH=$PWD/.venv/bin:$PATH bash ../shared/tools/install-learn2learn.sh   # learn2learn 0.2.0
    pip install higher
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import reference_maml
import torch
import torch.nn.functional as F

from mlscratch.algorithms import build
from mlscratch.data import load_splits
from mlscratch.device import resolve_device
from mlscratch.tasks import TaskBatch, TaskSampler


def ours(execution: str) -> Callable:
    def make(learner, steps, first_order, lr, batch):
        learner = copy.deepcopy(learner)
        learner.execution, learner.inner_steps, learner.first_order = execution, steps, first_order
        learner.execution = learner.resolved_execution(batch.support_x, batch.query_x)  # "auto" -> its pick
        adam = torch.optim.Adam(learner.parameters(), 1e-3)

        def step(batch: TaskBatch) -> None:
            adam.zero_grad()
            learner.meta_loss(batch)[0].backward()
            adam.step()

        step.reason = learner.execution_reason
        return step

    return make


def reference(learner, steps, first_order, lr, batch):
    image = batch.support_x.shape[2:]
    model = reference_maml.conv4(learner.n_way, image[0], learner.hparams["width"], image[1]).to(batch.support_x.device)
    adam = torch.optim.Adam(model.parameters(), 1e-3)
    return lambda batch: reference_maml.meta_step(model, adam, tuple(batch), steps, lr, first_order)


def learn2learn(learner, steps, first_order, lr, batch):
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


def higher_(learner, steps, first_order, lr, batch):
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


SHORT = {"reference": "ref", "learn2learn": "l2l", "higher": "higher"}


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
    parser.add_argument("--queries", type=int, nargs="+", default=[1, 15], help="queries per class")
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--orders", nargs="+", choices=["second", "first"], default=["second", "first"])
    parser.add_argument("--methods", nargs="+", default=["ours", "reference", "learn2learn", "higher"])
    parser.add_argument("--meta-batch", type=int, default=32)
    parser.add_argument("--ways", type=int, default=5)
    parser.add_argument("--shots", type=int, default=1)
    parser.add_argument("--inner-lr", type=float, default=0.4)
    parser.add_argument("--repeats", type=int, default=5, help="timed meta-iterations per method (after 1 warm-up)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    train = load_splits(args.dataset, "paper")["train"]
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
        "reference": reference,
        "learn2learn": learn2learn,
        "higher": higher_,
    }
    skipped = [m for m in ("learn2learn", "higher") if m in args.methods and not installed(m)]
    for name in skipped:
        print(f"skipping {name}: not installed (see this script's docstring to install it)")
    methods = [m for m in args.methods if m in makers and m not in skipped]
    peers = [m for m in ("reference", "learn2learn", "higher") if m in methods]
    print(
        f"device {device} ({torch.get_num_threads()} threads), torch {torch.__version__}, dataset "
        f"{train.meta.get('dataset', train.source)}; {args.ways}-way {args.shots}-shot, meta-batch {args.meta_batch}; "
        f"median ms of {args.repeats} meta-iterations; speed-up = their time / ours"
    )
    print(
        f"{'queries':>7} {'steps':>5} {'order':>6} "
        + "".join(f"{m:>12}" for m in methods)
        + "".join(f"{SHORT[m] + '/ours':>16}" for m in peers if "ours" in methods)
        + "   ours = auto's pick"
    )
    for queries in args.queries:
        sampler = TaskSampler(train, args.ways, args.shots, queries, args.meta_batch, seed=0, device=device)
        batches = [sampler.sample() for _ in range(args.repeats + 1)]  # the same tasks for every method
        for steps in args.steps:
            for order in args.orders:
                runners = {m: makers[m](learner, steps, order == "first", args.inner_lr, batches[0]) for m in methods}
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
                ratios = "".join(f"{medians[p] / medians['ours']:>15.2f}x" for p in peers if "ours" in medians)
                reason = getattr(runners.get("ours"), "reason", "")
                print(
                    f"{queries:>7} {steps:>5} {order:>6} "
                    + "".join(f"{medians[m]:>12,.0f}" for m in methods)
                    + f"{ratios}   {reason}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
