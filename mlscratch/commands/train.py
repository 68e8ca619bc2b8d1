"""`python -m mlscratch train` and `python -m mlscratch evaluate`.

train:    meta-train an algorithm on a dataset's training classes, validate on its validation classes,
          then report accuracy on the fixed test tasks (JSON with --json). The same path as the notebooks'
          `train_and_evaluate` and the model zoo: `mlscratch.experiment.run`.
evaluate: score a saved checkpoint on the fixed test tasks.
"""

from __future__ import annotations

import argparse
import math
import time

from ..algorithms import ALGORITHMS, learner_class
from ..checkpoint import load_checkpoint
from ..device import resolve_device
from ..errors import require
from ..evaluation import EvaluationResult, evaluate
from ..experiment import Settings, evaluation_tasks, load_data, run
from ..io import write_json

# Flags that set a learner's own hyperparameter: flag dest -> hyperparameter name. They default to None
# (the learner's own default); a flag the chosen algorithm does not take is an error that names it.
LEARNER_FLAGS = {
    "inner_lr": "inner_lr",
    "inner_steps": "inner_steps",
    "test_inner_steps": "test_inner_steps",
    "bn": "bn",
    "width": "width",
    "execution": "execution",
    "meta_dropout": "meta_dropout",
}


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
    train.add_argument(
        "--within-alphabet", action="store_true", help="every task draws all its classes from one alphabet"
    )
    train.add_argument(
        "--rotate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="turn each class of a training task by a random quarter turn (default: paper yes, lake no)",
    )
    train.add_argument("--inner-steps", type=int, default=None, help="inner SGD steps in training (MAML: 1)")
    train.add_argument("--test-inner-steps", type=int, default=None, help="inner SGD steps at test time (MAML: 3)")
    train.add_argument("--inner-lr", type=float, default=None, help="inner SGD learning rate (MAML: 0.4)")
    train.add_argument("--execution", choices=["auto", "loop", "vmap"], default=None, help="run a batch's tasks")
    train.add_argument("--outer-lr", type=float, default=1e-3, help="outer (Adam) learning rate")
    train.add_argument(
        "--bn",
        choices=["transductive", "support"],
        default=None,
        help="BatchNorm statistics for queries: their own batch (MAML) or the support set's "
        "(default: the algorithm's own, e.g. transductive for MAML, support for metanet-embedding)",
    )
    train.add_argument("--width", type=int, default=None, help="filters per conv layer (default 64)")
    train.add_argument("--iterations", type=int, default=1000, help="meta-iterations")
    train.add_argument(
        "--meta-dropout",
        choices=["none", "consistent", "learned", "gate"],
        default=None,
        help="feature noise while adapting: per-task dropout masks, Lee et al.'s learned noise, "
        "or its noise-free gate (ablation)",
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
    train.add_argument(
        "--eval-tasks",
        type=int,
        default=600,
        help="test tasks scored after training, however few the iterations (default 600; each adapts "
        "test-inner-steps times)",
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="auto", help="auto (cuda when present), cpu, cuda, cuda:1, ...")
    train.add_argument(
        "--checkpoint",
        default=None,
        help="checkpoint path (resumed if it exists; checked to be writable before training)",
    )
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
    evaluate_cmd.add_argument("--device", default="auto")
    evaluate_cmd.add_argument("--json", default=None)
    evaluate_cmd.add_argument("--no-progress", action="store_true")
    evaluate_cmd.set_defaults(func=run_evaluate)


def add_data_arguments(parser: argparse.ArgumentParser, defaults_from_checkpoint: bool = False) -> None:
    default = None if defaults_from_checkpoint else "omniglot"
    parser.add_argument("--dataset", default=default, help="omniglot, synthetic, auto, or a folder path")
    parser.add_argument("--protocol", choices=["paper", "lake"], default=None if defaults_from_checkpoint else "paper")
    parser.add_argument("--root", default=None, help="folder with the Omniglot zips (default: MLSCRATCH_DATA)")
    parser.add_argument("--image-size", type=int, default=None if defaults_from_checkpoint else 28)
    parser.add_argument(
        "--split-seed", type=int, default=None if defaults_from_checkpoint else 0, help="class split (default 0)"
    )


def learner_hparams(args: argparse.Namespace) -> dict:
    """The learner settings given on the command line; a flag the algorithm does not take is an error."""
    accepted = learner_class(args.algo).hyperparameters()
    given = {name: getattr(args, flag) for flag, name in LEARNER_FLAGS.items() if getattr(args, flag) is not None}
    if args.dropout_rates is not None or args.noise_samples is not None:
        require(args.meta_dropout is not None, "--dropout-rates / --noise-samples need --meta-dropout")
        given["meta_dropout_options"] = meta_dropout_options(args)
    for name in given:
        flag = "--" + name.replace("_", "-").replace("meta-dropout-options", "meta-dropout")
        require(name in accepted, f"{args.algo} does not take {flag}; drop it (see --help for what {args.algo} uses)")
    return given


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


def check_train_flags(args: argparse.Namespace) -> None:
    """One-line errors for values no run can use, before any data is loaded."""
    for flag in ("ways", "shots", "queries", "eval_queries", "meta_batch", "eval_tasks", "val_tasks", "val_every"):
        value = getattr(args, flag)
        require(value is None or value >= 1, f"--{flag.replace('_', '-')} must be at least 1, got {value}")
    require(
        args.ways >= 2,
        f"--ways must be at least 2, got {args.ways}: a 1-way task has one answer, so every model scores 100%",
    )
    require(args.iterations >= 0, f"--iterations must be >= 0, got {args.iterations}")
    for flag in ("outer_lr", "inner_lr", "clip_grad"):
        value = getattr(args, flag)
        ok = value is None or (math.isfinite(value) and value > 0)
        require(ok, f"--{flag.replace('_', '-')} must be a positive finite number, got {value}")


def run_train(args: argparse.Namespace) -> int:
    check_train_flags(args)
    settings = Settings(
        algo=args.algo,
        hparams=learner_hparams(args),
        dataset=args.dataset,
        protocol=args.protocol,
        image_size=args.image_size,
        split_seed=args.split_seed,
        ways=args.ways,
        shots=args.shots,
        queries=args.queries,
        eval_queries=args.eval_queries or args.queries,
        meta_batch=args.meta_batch,
        within_alphabet=args.within_alphabet,
        rotate=args.rotate,
        iterations=args.iterations,
        outer_lr=args.outer_lr,
        clip_grad=args.clip_grad,
        seed=args.seed,
        val_every=args.val_every,
        val_tasks=args.val_tasks,
        eval_tasks=args.eval_tasks,
    )
    device = resolve_device(args.device)
    experiment = run(
        settings,
        root=args.root,
        device=device,
        checkpoint=args.checkpoint,
        checkpoint_every=args.checkpoint_every,
        progress=not args.no_progress,
    )
    history, result = experiment.history, experiment.result
    report = {
        **settings.to_dict(),
        "hparams": experiment.learner.hparams,
        "device": str(device),
        "train_seconds": round(history.training_seconds, 2),
        "val_accuracy": history.val_accuracy[-1] if history.val_accuracy else None,
        **result_fields(result),
        "checkpoint": args.checkpoint,
    }
    print(f"{experiment.summary()} on {device}")
    if args.json:
        write_json(report, args.json)
    return 0


def meta_dropout_options(args: argparse.Namespace) -> dict:
    """--dropout-rates / --noise-samples -> keyword options of `mlscratch.models.meta_dropout.install`."""
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
    trained = Settings.from_dict(learner.checkpoint_info["metadata"] or {}, strict=False)
    for name in ("dataset", "protocol", "image_size", "split_seed"):
        if getattr(args, name) is not None:
            setattr(trained, name, getattr(args, name))
    ways, shots = args.ways or trained.ways, args.shots or trained.shots
    queries = args.queries or trained.eval_queries
    for flag, value in (
        ("--ways", ways),
        ("--shots", shots),
        ("--queries", queries),
        ("--eval-tasks", args.eval_tasks),
    ):
        require(value >= 1, f"{flag} must be at least 1, got {value}")
    if args.test_inner_steps is not None:
        require(args.test_inner_steps >= 0, f"--test-inner-steps must be >= 0, got {args.test_inner_steps}")
        require(
            hasattr(learner, "test_inner_steps"),
            f"{learner.name} does not adapt by inner steps; drop --test-inner-steps",
        )
        learner.test_inner_steps = args.test_inner_steps
    if learner.n_way not in (None, ways):
        require(
            False, f"this {learner.name} checkpoint has a {learner.n_way}-way output layer; use --ways {learner.n_way}"
        )
    splits = load_data(trained, root=args.root)
    tic = time.perf_counter()
    test = evaluation_tasks(splits["test"], ways, shots, queries, device)
    result = evaluate(learner, test, args.eval_tasks, progress=not args.no_progress)
    print(f"{learner.name} ({args.checkpoint}): test accuracy {result}")
    if args.json:
        report = {
            "algo": learner.name,
            "checkpoint": args.checkpoint,
            "dataset": trained.dataset,
            "protocol": trained.protocol,
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
