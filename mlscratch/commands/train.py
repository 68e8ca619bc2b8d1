"""`python -m mlscratch train` and `python -m mlscratch evaluate`.

train:    meta-train an algorithm on a dataset's training classes, validate on its validation classes,
          then report accuracy on test tasks (JSON with --json).
evaluate: score a saved checkpoint on test tasks.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import time

import torch

from ..algorithms import ALGORITHMS, build
from ..checkpoint import load_checkpoint, write_json
from ..device import resolve_device
from ..errors import require
from ..evaluation import EvaluationResult, evaluate
from ..tasks import TaskSampler
from ..training import fit


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train", help="meta-train an algorithm, then evaluate it on test tasks", description=__doc__.splitlines()[0]
    )
    train.add_argument("--algo", choices=sorted(ALGORITHMS), default="maml")
    add_data_arguments(train)
    train.add_argument("--ways", type=int, default=5, help="classes per task (N)")
    train.add_argument("--shots", type=int, default=1, help="support images per class (K)")
    train.add_argument("--queries", type=int, default=15, help="query images per class in training")
    train.add_argument(
        "--eval-queries", type=int, default=None, help="query images per class in evaluation (default: --queries)"
    )
    train.add_argument("--meta-batch", type=int, default=32, help="tasks per meta-iteration")
    train.add_argument("--inner-steps", type=int, default=1, help="inner SGD steps in training")
    train.add_argument("--test-inner-steps", type=int, default=3, help="inner SGD steps at test time")
    train.add_argument("--inner-lr", type=float, default=0.4)
    train.add_argument("--outer-lr", type=float, default=1e-3, help="Adam learning rate")
    train.add_argument(
        "--bn",
        choices=["transductive", "support"],
        default=None,
        help="BatchNorm statistics for queries: their own batch (MAML) or the support set's "
        "(default: the algorithm's own, e.g. transductive for MAML, support for metanet-embedding)",
    )
    train.add_argument("--width", type=int, default=64, help="filters per conv layer")
    train.add_argument("--iterations", type=int, default=1000, help="meta-iterations")
    train.add_argument(
        "--meta-dropout",
        choices=["none", "consistent", "learned"],
        default="none",
        help="feature noise while adapting: per-task dropout masks, or Lee et al.'s learned noise",
    )
    train.add_argument("--dropout-rates", default=None, help="consistent: drop rate per block, e.g. 0.05,0.1,0.15,0.05")
    train.add_argument(
        "--noise-samples",
        type=int,
        default=None,
        help="learned: noise draws averaged in the support loss at evaluation (default 30, as in the paper; 0 = none)",
    )
    train.add_argument("--clip-grad", type=float, default=None, help="clip the meta-gradient norm")
    train.add_argument("--val-every", type=int, default=250)
    train.add_argument("--val-tasks", type=int, default=100)
    train.add_argument("--eval-tasks", type=int, default=600, help="test tasks for the final accuracy")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="auto", help="auto (cuda when present), cpu, cuda, cuda:1, ...")
    train.add_argument("--checkpoint", default=None, help="checkpoint path (resumed if it exists)")
    train.add_argument("--checkpoint-every", type=int, default=250)
    train.add_argument("--json", default=None, help="write the results here as JSON")
    train.add_argument("--no-progress", action="store_true", help="hide progress bars")
    train.set_defaults(func=run_train)

    evaluate_cmd = subparsers.add_parser(
        "evaluate", help="evaluate a checkpoint on test tasks", description="Score a saved checkpoint on test tasks."
    )
    evaluate_cmd.add_argument("--checkpoint", required=True)
    add_data_arguments(evaluate_cmd, defaults_from_checkpoint=True)
    evaluate_cmd.add_argument("--ways", type=int, default=None, help="default: as trained")
    evaluate_cmd.add_argument("--shots", type=int, default=None, help="default: as trained")
    evaluate_cmd.add_argument("--queries", type=int, default=None, help="default: as evaluated after training")
    evaluate_cmd.add_argument("--test-inner-steps", type=int, default=None, help="default: as trained")
    evaluate_cmd.add_argument("--eval-tasks", type=int, default=600)
    evaluate_cmd.add_argument("--seed", type=int, default=None, help="task seed (default: the training seed)")
    evaluate_cmd.add_argument("--device", default="auto")
    evaluate_cmd.add_argument("--json", default=None)
    evaluate_cmd.add_argument("--no-progress", action="store_true")
    evaluate_cmd.set_defaults(func=run_evaluate)


def add_data_arguments(parser: argparse.ArgumentParser, defaults_from_checkpoint: bool = False) -> None:
    default = None if defaults_from_checkpoint else "omniglot"
    parser.add_argument("--dataset", default=default, help="omniglot, synthetic, auto, or a folder path")
    parser.add_argument("--protocol", choices=["paper", "lake"], default=None if defaults_from_checkpoint else "paper")
    parser.add_argument("--data-root", default=None, help="folder with the Omniglot zips (default: MLSCRATCH_DATA)")
    parser.add_argument("--image-size", type=int, default=None if defaults_from_checkpoint else 28)


def check_task_flags(ways: int, shots: int, queries: int) -> None:
    """Fail fast, before loading any data."""
    for flag, value in (("--ways", ways), ("--shots", shots), ("--queries", queries)):
        require(value >= 1, f"{flag} must be at least 1, got {value}")


def load_split(args: argparse.Namespace, *names: str) -> list:
    from ..data import load_splits

    splits = load_splits(args.dataset, args.protocol, root=args.data_root, image_size=args.image_size, seed=args.seed)
    return [splits[name] for name in names]


def result_fields(result: EvaluationResult) -> dict:
    return {
        "test_accuracy": round(result.accuracy, 3),
        "test_ci95": round(result.ci95, 3),
        "before_adaptation_accuracy": None if result.before_adaptation is None else round(result.before_adaptation, 3),
        "step_accuracies": None if result.step_accuracies is None else [round(a, 3) for a in result.step_accuracies],
        "eval_tasks": result.n_tasks,
        "eval_ways": result.n_way,
        "eval_shots": result.k_shot,
        "eval_queries": result.k_query,
        "seconds_per_task": round(result.seconds_per_task, 5),
    }


def run_train(args: argparse.Namespace) -> int:
    eval_queries = args.eval_queries or args.queries
    check_task_flags(args.ways, args.shots, min(args.queries, eval_queries))
    require(args.meta_batch >= 1, f"--meta-batch must be at least 1, got {args.meta_batch}")
    require(args.iterations >= 0, f"--iterations must be >= 0, got {args.iterations}")
    device = resolve_device(args.device)
    train_classes, val_classes, test_classes = load_split(args, "train", "val", "test")
    sampler = TaskSampler(
        train_classes, args.ways, args.shots, args.queries, args.meta_batch, seed=args.seed, device=device
    )
    val = TaskSampler(
        val_classes, args.ways, args.shots, eval_queries, args.meta_batch, seed=args.seed + 1, device=device
    )
    test = TaskSampler(
        test_classes, args.ways, args.shots, eval_queries, args.meta_batch, seed=args.seed + 2, device=device
    )
    torch.manual_seed(args.seed)
    channels, size, _ = train_classes.image_shape
    hparams = {
        "n_way": args.ways,
        "in_channels": channels,
        "image_size": size,
        "width": args.width,
        "bn": args.bn,
        "inner_lr": args.inner_lr,
        "inner_steps": args.inner_steps,
        "test_inner_steps": args.test_inner_steps,
    }
    accepted = inspect.signature(ALGORITHMS[args.algo]).parameters  # each algorithm takes the flags it knows
    if args.meta_dropout != "none":
        require("meta_dropout" in accepted, f"--meta-dropout needs a gradient-based learner; {args.algo} has none")
        hparams["meta_dropout"], hparams["meta_dropout_options"] = args.meta_dropout, meta_dropout_options(args)
    learner = build(
        args.algo, **{name: value for name, value in hparams.items() if name in accepted and value is not None}
    )
    settings = {
        "algo": args.algo,
        "dataset": args.dataset,
        "protocol": args.protocol,
        "image_size": size,
        "ways": args.ways,
        "shots": args.shots,
        "queries": args.queries,
        "eval_queries": eval_queries,
        "meta_batch": args.meta_batch,
        "inner_steps": args.inner_steps,
        "test_inner_steps": args.test_inner_steps,
        "inner_lr": args.inner_lr,
        "outer_lr": args.outer_lr,
        "bn": learner.hparams.get("bn"),
        "width": args.width,
        "iterations": args.iterations,
        "seed": args.seed,
        "meta_dropout": args.meta_dropout,
    }
    history = fit(
        learner,
        sampler,
        args.iterations,
        outer_lr=args.outer_lr,
        val_sampler=val,
        val_every=args.val_every,
        val_tasks=args.val_tasks,
        checkpoint=args.checkpoint,
        checkpoint_every=args.checkpoint_every,
        clip_grad=args.clip_grad,
        device=device,
        seed=args.seed,
        progress=not args.no_progress,
        metadata=settings,
    )
    result = evaluate(learner, test, args.eval_tasks, progress=not args.no_progress)
    report = {
        **settings,
        "device": str(device),
        "train_seconds": round(history.training_seconds, 2),
        "val_accuracy": history.val_accuracy[-1] if history.val_accuracy else None,
        **result_fields(result),
        "checkpoint": args.checkpoint,
    }
    print(
        f"{args.algo}: test accuracy {result} after {args.iterations} iterations "
        f"({history.training_seconds:.0f} s training on {device})"
    )
    if args.json:
        write_json(report, args.json)
    return 0


def meta_dropout_options(args: argparse.Namespace) -> dict:
    """--dropout-rates / --noise-samples -> keyword options of `mlscratch.meta_dropout.install`."""
    options: dict = {}
    if args.dropout_rates is not None:
        try:
            options["rates"] = [float(rate) for rate in args.dropout_rates.split(",")]
        except ValueError:
            require(
                False,
                f"--dropout-rates must be comma-separated numbers like 0.05,0.1,0.15,0.05, got {args.dropout_rates!r}",
            )
    if args.noise_samples is not None:
        options["eval_samples"] = args.noise_samples
    return options


def run_evaluate(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    learner = load_checkpoint(args.checkpoint, device=device)
    trained = learner.checkpoint_info["metadata"]
    for name in ("dataset", "protocol", "image_size", "seed"):
        if getattr(args, name) is None:
            setattr(
                args,
                name,
                trained.get(name, {"dataset": "omniglot", "protocol": "paper", "image_size": 28, "seed": 0}[name]),
            )
    ways = args.ways or trained.get("ways", 5)
    shots = args.shots or trained.get("shots", 1)
    queries = args.queries or trained.get("eval_queries", 15)
    check_task_flags(ways, shots, queries)
    fixed_ways = getattr(learner, "n_way", None)
    require(
        fixed_ways in (None, ways),
        f"this {learner.name} checkpoint has a {fixed_ways}-way output layer; "
        f"use --ways {fixed_ways} or train a {ways}-way model",
    )
    if args.test_inner_steps is not None:
        require(args.test_inner_steps >= 0, f"--test-inner-steps must be >= 0, got {args.test_inner_steps}")
        require(
            hasattr(learner, "test_inner_steps"),
            f"{learner.name} does not adapt by inner steps; drop --test-inner-steps",
        )
        learner.test_inner_steps = args.test_inner_steps
    (test_classes,) = load_split(args, "test")
    test = TaskSampler(
        test_classes, ways, shots, queries, trained.get("meta_batch", 32), seed=args.seed + 2, device=device
    )
    tic = time.perf_counter()
    result = evaluate(learner, test, args.eval_tasks, progress=not args.no_progress)
    print(f"{learner.name} ({args.checkpoint}): test accuracy {result}", file=sys.stdout)
    if args.json:
        report = {
            "algo": learner.name,
            "checkpoint": args.checkpoint,
            "dataset": args.dataset,
            "protocol": args.protocol,
            "iterations": learner.checkpoint_info["iteration"],
            "train_seconds": trained_seconds(learner.checkpoint_info["history"]),
            "device": str(device),
            **result_fields(result),
            "eval_seconds": round(time.perf_counter() - tic, 2),
        }
        write_json(report, args.json)
    return 0


def trained_seconds(history: dict | None) -> float | None:
    if not history or not history.get("seconds"):
        return None
    return round(history["seconds"][-1], 2)


__all__ = ["register"]
