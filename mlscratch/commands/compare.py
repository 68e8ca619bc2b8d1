"""`python -m mlscratch compare`: every algorithm on the same test tasks, fairly (see mlscratch/compare.py)."""

from __future__ import annotations

import argparse
import datetime
import itertools

from .. import generalisation, zoo
from ..algorithms import ALGORITHMS
from ..baselines import BASELINES
from ..compare import bn_protocols, entries, paired, race, shipped_baseline, zoo_table
from ..errors import ConfigError
from ..io import write_json


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("compare", help="algorithms side by side on the same test tasks")
    parser.add_argument(
        "--algos", nargs="+", default=None, help=f"algorithms, zoo models or baselines ({', '.join(BASELINES)})"
    )
    parser.add_argument("--source", choices=["zoo", "scratch"], default="zoo", help="shipped models or train anew")
    parser.add_argument("--seconds", type=float, default=60.0, help="scratch: training seconds per algorithm")
    parser.add_argument("--seeds", type=int, default=1, help="scratch: training seeds per algorithm")
    parser.add_argument(
        "--inner-steps", type=int, nargs="+", default=None, help="scratch: inner steps of gradient learners (a sweep)"
    )
    parser.add_argument(
        "--protocol", nargs="+", choices=["paper", "lake"], default=["paper"],
        help="scratch: class split; 'paper lake' trains and tests within each and prints the drop",
    )  # fmt: skip
    parser.add_argument(
        "--upright", action="store_true",
        help="scratch: no quarter turns in any task, training or test (the paper split turns its classes)",
    )  # fmt: skip
    parser.add_argument("--ways", type=int, nargs="+", default=[5], help="test ways (several: a sweep, zoo only)")
    parser.add_argument("--shots", type=int, nargs="+", default=[1], help="test shots (several: a sweep, zoo only)")
    parser.add_argument("--queries", type=int, default=15, help="query images per class at test")
    parser.add_argument("--tasks", type=int, default=600, help="fixed test tasks")
    parser.add_argument("--reference", default="maml", help="paired differences are to this one")
    parser.add_argument(
        "--pretrain-steps", type=int, default=shipped_baseline.PRETRAIN_STEPS,
        help="zoo: pretraining batches of the pretrain-finetune baseline (cached under runs/baselines/)",
    )  # fmt: skip
    parser.add_argument("--remeasure", action="store_true", help="zoo: score again instead of the zoo's results")
    parser.add_argument(
        "--bn", choices=["native", "both"], default="native",
        help="zoo: 'both' scores every Conv4 model with transductive and with support-set BatchNorm, paired",
    )  # fmt: skip
    parser.add_argument("--root", default=None, help="Omniglot folder (default: MLSCRATCH_DATA)")
    parser.add_argument("--json", default=None, help="write the rows as JSON")
    parser.add_argument("--plot", default=None, help="save a figure (PNG/SVG/PDF)")
    parser.set_defaults(func=run_compare)


def zoo_entries(algos: list[str] | None, ways: int | None = None, shots: int | None = None) -> list[str]:
    """The asked entries, or every trained zoo model (of that task shape, if given) and the baselines; says which
    zoo models are skipped and why."""
    if algos:
        return algos
    untrained = [
        name for name, r in zoo.RECIPES.items() if r.settings.protocol == "paper" and name not in zoo.available()
    ]
    if untrained:
        print(f"not trained yet, skipped: {', '.join(untrained)} (python -m mlscratch zoo train NAME)")
    other_shape = [name for name in zoo.available() if name not in zoo.available(ways, shots)]
    if other_shape:
        print(f"trained for other task shapes, skipped: {', '.join(other_shape)} (name them with --algos)")
    return [*zoo.available(ways, shots), *BASELINES]


def run_sweep(args: argparse.Namespace) -> int:
    """Zoo models and baselines at every (ways, shots) asked: accuracy against the test task shape."""
    if args.source != "zoo":
        raise ConfigError("several --ways or --shots test trained models at other shapes: use --source zoo")
    learners, classes = {}, None
    for entry in zoo_entries(args.algos):
        name, learner, splits, _ = zoo_table.load_entry(entry, None, args.shots[0], args.root, args.pretrain_steps)
        learners[name], classes = learner, splits["test"]
    shapes = list(itertools.product(args.ways, args.shots))
    results = generalisation.shape_sweep(learners, classes, shapes, args.queries, args.tasks)
    for r in results:
        text = f"{r.accuracy:6.2f} ± {r.ci95:.2f}" if r.accuracy is not None else f"   -   ({r.note})"
        print(f"{r.name:<24} {r.ways:>3}-way {r.shots:>2}-shot  {text}")
    print(f"{args.tasks} fixed test tasks per shape, {args.queries} queries per class; ± is the 95% CI over tasks")
    if args.json:
        write_json({"settings": vars(args) | {"func": None}, "shapes": [vars(r) for r in results]}, args.json)
    if args.plot:
        generalisation.plot_shapes(results, args.ways[0], args.shots[0]).savefig(args.plot, dpi=120)
    return 0


def run_bn(args: argparse.Namespace) -> int:
    """Zoo models and pretrain-finetune under both BatchNorm protocols on the same tasks, with their ranks."""
    if args.source != "zoo" or len(args.ways) > 1 or len(args.shots) > 1:
        raise ConfigError("--bn both scores the trained models at one shape: use --source zoo and one --ways/--shots")
    ways, shots = args.ways[0], args.shots[0]
    learners, stored, test = {}, {}, None
    for entry in zoo_entries(args.algos, ways, shots):
        name, learner, splits, record = zoo_table.load_entry(entry, ways, shots, args.root, args.pretrain_steps)
        learners[name], test = learner, splits["test"]
        stored[name] = zoo_table.stored_accuracies(record, ways, shots, args.queries, args.tasks)
    rows = bn_protocols.score_both(learners, test, ways, shots, args.queries, args.tasks, stored)
    print(bn_protocols.format_rows(rows))
    print(f"{args.tasks} fixed test tasks, {ways}-way {shots}-shot; ± is the 95% CI over tasks; the change is paired")
    changes = bn_protocols.rank_changes(rows)
    print("rank changes: " + (", ".join(f"{n} {t} -> {s}" for n, t, s in changes) or "none"))
    if args.json:
        settings = {key: value for key, value in vars(args).items() if key != "func"}
        record = {"settings": settings, "machine": race.machine(), "created": datetime.date.today().isoformat()}
        write_json({**record, "rows": [vars(r) for r in rows]}, args.json)
    return 0


def run_compare(args: argparse.Namespace) -> int:
    if args.bn == "both":
        return run_bn(args)
    if len(args.ways) > 1 or len(args.shots) > 1:
        return run_sweep(args)
    if args.source == "zoo" and args.protocol != ["paper"]:
        raise ConfigError("the zoo's models are trained on the paper protocol; use --source scratch --protocol lake")
    ways, shots = args.ways[0], args.shots[0]
    shape = {"ways": ways, "shots": shots, "queries": args.queries, "tasks": args.tasks, "root": args.root}
    by_protocol = {}
    if args.source == "zoo":
        names = zoo_entries(args.algos, ways, shots)
        by_protocol["paper"] = zoo_table.compare_zoo(names, **shape, pretrain_steps=args.pretrain_steps,
                                                   remeasure=args.remeasure)  # fmt: skip
    for protocol in args.protocol if args.source == "scratch" else []:
        algos = args.algos or [*ALGORITHMS, *BASELINES]
        rows = []
        for steps in args.inner_steps or [None]:
            hparams = {} if steps is None else {"inner_steps": steps}
            data = {"protocol": protocol, **({"rotate": False} if args.upright else {})}
            for row in race.compare_scratch(algos, args.seconds, args.seeds, **shape, data=data, **hparams):
                row.name += "" if steps is None else f" ({steps} step{'s' * (steps > 1)})"
                rows.append(row)
        by_protocol[protocol] = rows
    for protocol, rows in by_protocol.items():
        if any(args.reference in (r.name, r.algo) for r in rows):
            paired.add_differences(rows, args.reference)
        if len(by_protocol) > 1:
            print(f"protocol {protocol}:")
        print(entries.format_table(rows, args.reference))
    print(f"{args.tasks} fixed test tasks, {ways}-way {shots}-shot; ± is the 95% CI over tasks"
          + (f"; seeds sd: spread over {args.seeds} training seeds (the task CI leaves it out)"
             if args.seeds > 1 and args.source == "scratch" else ""))  # fmt: skip
    shifts = None
    if len(by_protocol) == 2:
        shifts = generalisation.domain_shift(by_protocol["paper"], by_protocol["lake"])
        print("\n" + generalisation.format_shift(shifts))
        print("lake tests on alphabets never seen in training, paper on new characters of seen alphabets; "
              "different tasks, so the drop's CI is not paired")  # fmt: skip
    if args.json:  # a race's record (`race.load_race` reads it back: chapter 08 shows the stored races)
        settings = {key: value for key, value in vars(args).items() if key != "func"}
        payload = race.race_record(by_protocol, settings)
        payload["rows"] = payload["protocols"][next(iter(by_protocol))]
        if shifts is not None:
            payload["shift"] = [vars(s) | {"drop": s.drop, "drop_ci95": s.drop_ci95} for s in shifts]
        write_json(payload, args.json)
    if args.plot:
        entries.plot(next(iter(by_protocol.values()))).savefig(args.plot, dpi=120)
    return 0
