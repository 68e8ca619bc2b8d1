"""`python -m mlscratch data info`: where the data came from and what each split holds."""

from __future__ import annotations

import argparse
import json

from ..data.classes import ClassImages
from ..data.splits import PROTOCOLS, SPLITS, load_splits


def register(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser("data", help="inspect the data sets")
    sub = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    info = sub.add_parser("info", help="source and counts per split (alphabets, characters, images, classes)")
    info.add_argument(
        "--dataset",
        default="auto",
        help="auto | omniglot | synthetic | PATH (Omniglot zips, or one subfolder per class)",
    )
    info.add_argument("--protocol", default="paper", choices=PROTOCOLS)
    info.add_argument(
        "--root",
        default=None,
        help="folder with images_background(.zip) and images_evaluation(.zip) (default: $MLSCRATCH_DATA); "
        "if given, it must hold them",
    )
    info.add_argument("--image-size", type=int, default=28)
    info.add_argument(
        "--split-seed", type=int, default=0, help="which classes go to train/val/test (fixed, as in the papers)"
    )
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(func=run_info)


def split_counts(classes: ClassImages) -> dict:
    """Counts for one split; alphabets only where class names are 'Alphabet/character'."""
    alphabets = {name.split("/")[0] for name in classes.names if "/" in name}
    return {
        "alphabets": len(alphabets) if alphabets else None,
        "characters": classes.n_classes,
        "images": classes.n_images,
        "classes_after_rotation": classes.n_effective_classes,
        "rotate": classes.rotate,
    }


def describe(splits: dict[str, ClassImages]) -> dict:
    first = splits["train"]
    info = {
        "dataset": first.meta.get("dataset"),
        "source": first.source,
        "protocol": first.meta.get("protocol"),
        "split_seed": first.meta.get("split_seed"),
        "image_shape": list(first.image_shape),
        "splits": {name: split_counts(splits[name]) for name in SPLITS},
    }
    if "checked" in first.meta:
        info["checked"] = first.meta["checked"]
        info["from_cache"] = first.meta.get("from_cache")
    if "held_out_alphabets" in splits["val"].meta:
        info["val_held_out_alphabets"] = splits["val"].meta["held_out_alphabets"]
    return info


def run_info(args: argparse.Namespace) -> int:
    splits = load_splits(
        args.dataset, args.protocol, root=args.root, image_size=args.image_size, split_seed=args.split_seed
    )
    info = describe(splits)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"dataset:  {info['dataset']}")
    print(f"source:   {info['source']}")
    for name, how in info.get("checked", {}).items():
        print(f"  {name}: {how}")
    shape = "x".join(map(str, info["image_shape"]))
    print(f"protocol: {info['protocol']} (split seed {info['split_seed']}), images {shape}")
    if "val_held_out_alphabets" in info:
        print(f"val holds out background alphabets: {', '.join(info['val_held_out_alphabets'])}")
    print(f"{'split':<6} {'alphabets':>9} {'characters':>10} {'images':>8} {'classes (with rotations)':>25}")
    for name, row in info["splits"].items():
        alphabets = "-" if row["alphabets"] is None else row["alphabets"]
        print(
            f"{name:<6} {alphabets:>9} {row['characters']:>10} {row['images']:>8} {row['classes_after_rotation']:>25}"
        )
    return 0
