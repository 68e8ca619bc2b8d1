"""`python -m mlscratch zoo list | train NAME | export NAME | verify [NAME]`: the shipped trained models.

`zoo train pretrain-finetune [--until STEPS]` pretrains the baseline that `compare` loads and ships it too.
"""

from __future__ import annotations

import argparse

from .. import zoo
from ..baselines import PretrainFinetune
from ..compare import shipped_baseline
from ..errors import ConfigError, MlscratchError
from ..experiment import Settings, load_data
from ..zoo import store

BASELINE = PretrainFinetune.name  # shipped beside the zoo: `compare` scores it next to the meta-learners


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("zoo", help="trained models: list, train from their recipes, verify")
    sub = parser.add_subparsers(dest="zoo_command", required=True, metavar="SUBCOMMAND")
    listing = sub.add_parser("list", help="every recipe: accuracy +- 95%% CI, the paper's figure, budget, device")
    listing.add_argument("--markdown", action="store_true", help="print a Markdown table (for the README)")
    listing.set_defaults(func=run_list)
    train = sub.add_parser("train", help="train NAME from its recipe (resumes runs/zoo/NAME/checkpoint.pt exactly)")
    train.add_argument("name", choices=[*zoo.RECIPES, BASELINE])
    train.add_argument("--device", default="auto", help="auto (cuda when present), cpu, cuda, ...")
    train.add_argument(
        "--until",
        type=int,
        default=None,
        help="stop after this many iterations "
        f"(default: the recipe's; {BASELINE}: {shipped_baseline.PRETRAIN_STEPS} batches)",
    )
    train.add_argument(
        "--seconds", type=float, default=None, help="stop after this many more seconds of training (a time box)"
    )
    train.add_argument(
        "--protocol",
        choices=["paper", "lake"],
        default=None,
        help=f"{BASELINE} only: the split to pretrain on (lake: background alphabets, for the challenge)",
    )
    train.add_argument("--no-progress", action="store_true")
    train.set_defaults(func=run_train)
    export = sub.add_parser(
        "export", help="write NAME's package weights from its last checkpoint now (measured on the 600 test tasks)"
    )
    export.add_argument("name", choices=list(zoo.RECIPES))
    export.add_argument("--device", default="auto", help="auto (cuda when present), cpu, cuda, ...")
    export.add_argument("--no-progress", action="store_true")
    export.set_defaults(func=run_export)
    verify = sub.add_parser("verify", help="re-measure shipped models on the fixed test tasks")
    verify.add_argument("name", nargs="?", default=None, help="one model (default: every shipped model)")
    verify.add_argument("--tasks", type=int, default=600, help="test tasks (the first N of the recorded 600)")
    verify.set_defaults(func=run_verify)
    remeasure = sub.add_parser(
        "remeasure", help="measure shipped models again (per task and inner step) and rewrite their records"
    )
    remeasure.add_argument("names", nargs="*", help="models (default: every shipped model)")
    remeasure.add_argument("--no-progress", action="store_true")
    remeasure.set_defaults(func=run_remeasure)


def budget(record: dict) -> str:
    target = record["settings"]["iterations"]
    seconds = record.get("train_seconds")
    spent = f", {seconds / 3600:.1f} h" if seconds and seconds >= 3600 else f", {seconds:.0f} s" if seconds else ""
    return f"{record['iteration']:,} of {target:,} it{spent} on {record.get('device', '?')}"


def run_list(args: argparse.Namespace) -> int:
    rows = [("model", "setting", "accuracy (600 tasks)", "paper", "budget")]
    for name, recipe in zoo.RECIPES.items():
        paper = f"{recipe.paper:.2f}" if recipe.paper is not None else "-"
        try:
            record = store.read(name)
        except MlscratchError:
            rows.append((name, recipe.setting, "not trained yet", paper, f"zoo train {name}"))
            continue
        result = record["result"]
        rows.append((name, recipe.setting, f"{result['accuracy']:.2f} ± {result['ci95']:.2f}", paper, budget(record)))
    for path in sorted(shipped_baseline.SHIPPED_BASELINES.glob("*.pt")):  # the baseline compare loads; any task shape
        _, record = shipped_baseline.read_baseline(path)
        result, done = record["result"], record["pretraining"]
        accuracy = f"{result['accuracy']:.2f} ± {result['ci95']:.2f}"
        spent = f"{done['iterations']:,} batches, {done['seconds']:.0f} s on cpu (baseline)"
        setting = f"{result['ways']}-way {result['shots']}-shot" + (
            " (lake, within alphabets)" if result.get("within_alphabet") else ""
        )
        rows.append((record["name"], setting, accuracy, "-", spent))
    if args.markdown:
        print("\n".join("| " + " | ".join(row) + " |" for row in [rows[0], ["---"] * len(rows[0]), *rows[1:]]))
        return 0
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def run_train(args: argparse.Namespace) -> int:
    if args.name == BASELINE:
        if args.seconds is not None:
            raise ConfigError(f"{BASELINE} pretrains for a number of batches: use --until STEPS, not --seconds")
        return train_baseline(args.until or shipped_baseline.PRETRAIN_STEPS, args.protocol or "paper")
    if args.protocol is not None:
        own = zoo.recipe(args.name).settings.protocol
        raise ConfigError(f"--protocol is for {BASELINE}; recipe {args.name} names its own ({own})")
    record = zoo.train(
        args.name, until=args.until, seconds=args.seconds, device=args.device, progress=not args.no_progress
    )
    return print_record(args.name, record)


def train_baseline(steps: int, protocol: str = "paper") -> int:
    """Pretrain the pretrain-finetune baseline from scratch on the `paper` (or `lake`) split and ship it (about 10 min
    on CPU)."""
    if steps < 1:
        raise ConfigError(f"--until must be a positive number of pretraining batches, got {steps}")
    record = shipped_baseline.ship_baseline(load_data(Settings(protocol=protocol)), steps)
    result, done = record["result"], record["pretraining"]
    print(
        f"{BASELINE} ({protocol}): {result['accuracy']:.2f} ± {result['ci95']:.2f}% on {result['n_tasks']} test "
        f"tasks ({done['iterations']:,} batches of 64, {done['seconds']:.0f} s); "
        f"shipped in {shipped_baseline.SHIPPED_BASELINES}"
    )
    if "challenge" in record:
        print(f"  Lake's 20 runs: {record['challenge']['error']:.2f}% errors")
    return 0


def run_export(args: argparse.Namespace) -> int:
    checkpoint = zoo.checkpoint_path(args.name)
    if not checkpoint.is_file():
        raise ConfigError(f"no checkpoint at {checkpoint}: train first with python -m mlscratch zoo train {args.name}")
    return print_record(args.name, zoo.export(args.name, device=args.device, progress=not args.no_progress))


def print_record(name: str, record: dict) -> int:
    result = record["result"]
    accuracy = f"{result['accuracy']:.2f} ± {result['ci95']:.2f}%"
    print(f"{name}: {accuracy} on {result['n_tasks']} test tasks ({budget(record)})")
    return 0


def run_remeasure(args: argparse.Namespace) -> int:
    for name in args.names:
        zoo.recipe(name)
    for name in args.names or zoo.available(protocol=None):
        print_record(name, zoo.remeasure(name, progress=not args.no_progress))
    return 0


def run_verify(args: argparse.Namespace) -> int:
    names = [args.name] if args.name else zoo.available(protocol=None)
    if args.name:
        zoo.recipe(args.name)
    failed = 0
    for name in names:
        check = zoo.verify(name, args.tasks)
        status = "ok" if check.ok else "MISMATCH"
        print(
            f"{name}: measured {check.measured:.2f}%, recorded {check.recorded:.2f}% on the same {args.tasks} tasks "
            f"(tolerance ±{check.tolerance:.2f}): {status}"
        )
        failed += not check.ok
    return 1 if failed else 0
