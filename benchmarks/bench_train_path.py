"""Seconds per meta-iteration of the whole training path (`mlscratch.experiment.run`, what `train` calls) against a
plain torch.func + vmap MAML loop on the same tasks, in one process.

    MLSCRATCH_DATA=/path/to/omniglot python benchmarks/bench_train_path.py              # 2 threads
    python benchmarks/bench_train_path.py --threads 1 --repeats 3 --iterations 30

Chapter 02's settings: MAML, 5-way 1-shot, 1 query per class, meta-batch 32, 1 inner step, second order.
"path": `run(settings, splits)` as `python -m mlscratch train` calls it (validation at the last iteration on
`--val-tasks` tasks, progress bars to stderr unless --no-progress, no checkpoint, no final test); its wall time
from the call to its return, per iteration, and the in-loop time its History records. "plain": the same number of
iterations of `reference_maml.meta_step` (a 40-line torch.func MAML) on batches drawn by the same sampler and seed,
wall time including the sampling. The two alternate `--repeats` times (medians), so machine load hits both alike;
ratio = plain / path (1.0: as fast as the plain loop; below: slower). The data are loaded once, outside the timing.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import reference_maml
import torch

from mlscratch.data import ClassImages
from mlscratch.experiment import Settings, load_data, run
from mlscratch.tasks import TaskSampler

Splits = dict[str, ClassImages]


def chapter_settings(iterations: int, val_tasks: int) -> Settings:
    """Chapter 02's training settings; validation once, at the end (the CLI's val_every=250 > iterations)."""
    return Settings(
        algo="maml",
        hparams={"inner_steps": 1, "first_order": False},
        ways=5,
        shots=1,
        queries=1,
        eval_queries=1,
        meta_batch=32,
        iterations=iterations,
        val_every=250,
        val_tasks=val_tasks,
    )


def time_path(settings: Settings, splits: Splits, validate: bool, progress: bool) -> tuple[float, float, str]:
    """(wall seconds, in-loop seconds, execution reason) of one `run` without the final test."""
    tic = time.perf_counter()
    experiment = run(settings, splits, device="cpu", validate=validate, progress=progress, test=False)
    wall = time.perf_counter() - tic
    return wall, experiment.history.training_seconds, experiment.history.execution


def time_plain(settings: Settings, splits: Splits) -> float:
    """Wall seconds of `settings.iterations` reference_maml meta-steps on the run's task stream."""
    s = settings
    sampler = TaskSampler(splits["train"], s.ways, s.shots, s.queries, s.meta_batch, seed=s.seed, device="cpu")
    channels, side = splits["train"].image_shape[0], splits["train"].image_shape[-1]
    tic = time.perf_counter()
    torch.manual_seed(s.seed)
    model = reference_maml.conv4(s.ways, channels, 64, side)
    adam = torch.optim.Adam(model.parameters(), s.outer_lr)
    for _ in range(s.iterations):
        reference_maml.meta_step(model, adam, tuple(sampler.sample()), steps=1, lr=0.4)
    return time.perf_counter() - tic


def alternate(runs: dict[str, Callable[[], None]], repeats: int) -> None:
    """Call each runner once per repeat, in turn."""
    for _ in range(repeats):
        for runner in runs.values():
            runner()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the same for both)")
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each (medians)")
    parser.add_argument("--val-tasks", type=int, default=100, help="validation tasks at the last iteration")
    parser.add_argument("--no-validation", action="store_true", help="run(validate=False), as the chapters do")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument("--dataset", default="omniglot")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = chapter_settings(args.iterations, args.val_tasks)
    settings.dataset = args.dataset
    splits = load_data(settings)
    path: list[tuple[float, float, str]] = []
    plain: list[float] = []
    validate, progress = not args.no_validation, not args.no_progress
    runs = {
        "path": lambda: path.append(time_path(settings, splits, validate, progress)),
        "plain": lambda: plain.append(time_plain(settings, splits)),
    }
    alternate(runs, args.repeats)
    n = args.iterations
    wall = statistics.median(p[0] for p in path) / n
    loop = statistics.median(p[1] for p in path) / n
    reference = statistics.median(plain) / n
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.dataset}; 5-way 1-shot, 1 query, "
        f"meta-batch 32, 1 inner step, second order, {n} iterations, median of {args.repeats}; "
        f"validation {'off' if args.no_validation else f'{args.val_tasks} tasks at the end'}"
    )
    print(f"path  (experiment.run, wall): {wall:.3f} s/it   [{path[-1][2]}]")
    print(f"path  (in-loop, History)    : {loop:.3f} s/it")
    print(f"plain (reference_maml)      : {reference:.3f} s/it")
    print(f"ratio plain / path: {reference / wall:.2f}x wall, {reference / loop:.2f}x in-loop")


if __name__ == "__main__":
    main()
