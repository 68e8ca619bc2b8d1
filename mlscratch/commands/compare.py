"""`python -m mlscratch compare`: every algorithm on the same test tasks, fairly (see mlscratch/compare.py)."""

from __future__ import annotations

import argparse

from .. import compare, zoo
from ..algorithms import ALGORITHMS
from ..io import write_json


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("compare", help="algorithms side by side on the same test tasks")
    parser.add_argument("--algos", nargs="+", default=None, help="algorithms or zoo model names (default: all)")
    parser.add_argument("--source", choices=["zoo", "scratch"], default="zoo", help="shipped models or train anew")
    parser.add_argument("--seconds", type=float, default=60.0, help="scratch: training seconds per algorithm")
    parser.add_argument("--seeds", type=int, default=1, help="scratch: training seeds per algorithm")
    parser.add_argument(
        "--inner-steps", type=int, nargs="+", default=None, help="scratch: inner steps of gradient learners (a sweep)"
    )
    parser.add_argument("--ways", type=int, default=5)
    parser.add_argument("--shots", type=int, default=1)
    parser.add_argument("--queries", type=int, default=15, help="query images per class at test")
    parser.add_argument("--tasks", type=int, default=600, help="fixed test tasks")
    parser.add_argument("--reference", default="maml", help="paired differences are to this one")
    parser.add_argument("--root", default=None, help="Omniglot folder (default: MLSCRATCH_DATA)")
    parser.add_argument("--json", default=None, help="write the rows as JSON")
    parser.add_argument("--plot", default=None, help="save a figure (PNG/SVG/PDF)")
    parser.set_defaults(func=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    shape = {"ways": args.ways, "shots": args.shots, "queries": args.queries, "tasks": args.tasks, "root": args.root}
    if args.source == "zoo":
        entries = args.algos or zoo.available()
        rows = compare.compare_zoo(entries, **shape)
    else:
        algos = args.algos or list(ALGORITHMS)
        rows = []
        for steps in args.inner_steps or [None]:
            hparams = {} if steps is None else {"inner_steps": steps}
            for row in compare.compare_scratch(algos, args.seconds, args.seeds, **shape, **hparams):
                row.name += "" if steps is None else f" ({steps} step{'s' * (steps > 1)})"
                rows.append(row)
    if any(args.reference in (r.name, r.algo) for r in rows):
        compare.add_differences(rows, args.reference)
    print(compare.format_table(rows, args.reference))
    print(f"{args.tasks} fixed test tasks, {args.ways}-way {args.shots}-shot; ± is the 95% CI over tasks"
          + (f"; seeds sd: spread over {args.seeds} training seeds" if args.seeds > 1 else ""))  # fmt: skip
    if args.json:
        write_json({"settings": vars(args) | {"func": None}, "rows": [r.to_dict() for r in rows]}, args.json)
    if args.plot:
        compare.plot(rows).savefig(args.plot, dpi=120)
    return 0
