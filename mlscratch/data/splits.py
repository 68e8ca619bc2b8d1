"""Train / validation / test splits of classes: the protocols of the papers, as one parameter.

`paper` (MAML, ProtoNets, Matching Nets): all 1,623 characters shuffled once with a
fixed seed (`split_seed`, default 0); 1,100 train, 100 validation, 423 test characters (MAML's code: 1,200 for
training of which 100 held out for validation). Every task rotates each of its
classes by a random multiple of 90 degrees, at training and at test time, as
MAML's code does. Our choice, used everywhere.

`lake` (Lake et al.): the 30 background alphabets for training, the 20 evaluation
alphabets for testing, no rotation. Validation holds out 5 whole background
alphabets (chosen by `split_seed`), so train has 25 alphabets and never sees them.

Classes never overlap between splits. The split has its own seed, separate from the run
seed: runs with different seeds are tested on the same characters, so they are comparable.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from ..errors import ConfigError
from .classes import ClassImages
from .folder import load_folder
from .omniglot import Omniglot, OmniglotUnavailable, find_sets, load_omniglot
from .synthetic import SyntheticGlyphs

PROTOCOLS = ("paper", "lake")
SPLITS = ("train", "val", "test")
PAPER_SIZES = (1100, 100, 423)  # of 1,623 Omniglot characters
LAKE_VAL_ALPHABETS = 5  # of 30 background alphabets
FOLDER_FRACTIONS = (0.6, 0.2, 0.2)


class SyntheticFallbackWarning(UserWarning):
    """dataset="auto" found no Omniglot anywhere and runs on synthetic glyphs: numbers are not Omniglot results."""


def paper_split(characters: Omniglot, split_seed: int = 0) -> dict[str, ClassImages]:
    """Seeded shuffle of all characters into 1,100 / 100 / 423 (scaled for other sizes), rotate=True."""
    n = characters.n_characters
    if n < 3:
        raise ConfigError(f"the paper protocol needs at least 3 characters, got {n}; use a larger data set")
    if n == sum(PAPER_SIZES):
        n_train, n_val = PAPER_SIZES[:2]
    else:  # synthetic or partial sets: same proportions
        n_val = max(1, round(n * PAPER_SIZES[1] / sum(PAPER_SIZES)))
        n_train = min(max(1, round(n * PAPER_SIZES[0] / sum(PAPER_SIZES))), n - n_val - 1)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))
    ids = {"train": order[:n_train], "val": order[n_train : n_train + n_val], "test": order[n_train + n_val :]}
    return {split: characters.classes(ids[split].sort().values, rotate=True) for split in SPLITS}


def lake_split(characters: Omniglot, split_seed: int = 0) -> dict[str, ClassImages]:
    """Background alphabets -> train (minus 5 held-out alphabets -> val); evaluation alphabets -> test."""
    background = sorted({a for a, bg in zip(characters.alphabets, characters.background.tolist(), strict=True) if bg})
    if len(background) < 2 or bool(characters.background.all()):
        raise ConfigError(
            "the lake protocol needs at least 2 background alphabets and an evaluation set; "
            "use the full Omniglot or protocol='paper'"
        )
    n_val = max(1, min(LAKE_VAL_ALPHABETS, round(len(background) * LAKE_VAL_ALPHABETS / 30)))
    order = torch.randperm(len(background), generator=torch.Generator().manual_seed(split_seed)).tolist()
    val_alphabets = {background[i] for i in order[:n_val]}
    ids: dict[str, list[int]] = {split: [] for split in SPLITS}
    for c, (alphabet, bg) in enumerate(zip(characters.alphabets, characters.background.tolist(), strict=True)):
        ids["test" if not bg else "val" if alphabet in val_alphabets else "train"].append(c)
    splits = {split: characters.classes(ids[split], rotate=False) for split in SPLITS}
    splits["val"].meta["held_out_alphabets"] = sorted(val_alphabets)
    return splits


def split_classes(
    classes: ClassImages, split_seed: int = 0, fractions: tuple[float, float, float] = FOLDER_FRACTIONS
) -> dict[str, ClassImages]:
    """Seeded split of any ClassImages (your folder or tensors) into train / val / test classes."""
    n = classes.n_classes
    if n < 3:
        raise ConfigError(f"need at least 3 classes to make train, val and test splits, got {n}; add classes")
    n_val = max(1, round(n * fractions[1]))
    n_test = max(1, round(n * fractions[2]))
    n_train = n - n_val - n_test
    if n_train < 1:
        raise ConfigError(f"{n} classes are too few for fractions {fractions}; add classes")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))
    ids = {"train": order[:n_train], "val": order[n_train : n_train + n_val], "test": order[n_train + n_val :]}
    return {split: classes.subset(ids[split].sort().values) for split in SPLITS}


def load_characters(dataset: str, root: str | Path | None = None, image_size: int = 28) -> Omniglot | None:
    """Omniglot or SyntheticGlyphs for `dataset`, or None if it names a folder of class folders.

    "auto" falls back to synthetic glyphs only when Omniglot is nowhere (no location given, no copy found,
    no download possible), with one warning; a location that was given but is wrong or damaged is an error.
    """
    if dataset == "synthetic":
        return SyntheticGlyphs(image_size=image_size)
    if dataset == "omniglot":
        return load_omniglot(root, image_size=image_size)
    if dataset == "auto":
        try:
            return load_omniglot(root, image_size=image_size)
        except OmniglotUnavailable as error:
            message = (
                f"{error}\nFalling back to SYNTHETIC glyphs: numbers from this run are NOT Omniglot results "
                "(pass dataset='synthetic' to choose them on purpose)."
            )
            warnings.warn(message, SyntheticFallbackWarning, stacklevel=3)
            return SyntheticGlyphs(image_size=image_size)
    path = Path(dataset).expanduser()
    if not path.exists():
        raise ConfigError(
            f"unknown dataset {dataset!r}: use 'auto', 'omniglot', 'synthetic' or the path of a "
            "folder (Omniglot zips, or one subfolder of images per class)"
        )
    if find_sets(path):
        return load_omniglot(path, image_size=image_size)
    return None


def load_splits(
    dataset: str = "omniglot",
    protocol: str = "paper",
    root: str | Path | None = None,
    image_size: int = 28,
    split_seed: int = 0,
) -> dict[str, ClassImages]:
    """{"train", "val", "test"} -> ClassImages with disjoint classes.

    dataset:    "omniglot" (error if not found), "synthetic", "auto" (Omniglot, else synthetic with a warning,
                only when no data is configured anywhere), or a path: a folder with the Omniglot zips, or one
                with one subfolder per class (split 60/20/20, or its own train/ val/ test/ subfolders if it has them)
    protocol:   "paper" or "lake" (see the module docstring); ignored for class folders
    root:       folder with the Omniglot zips (default $MLSCRATCH_DATA); if given, it must hold them
    split_seed: which classes go to which split; fixed (0) as in the papers, independent of the run seed
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}: use one of {', '.join(PROTOCOLS)}")
    dataset = os.fspath(dataset)
    characters = load_characters(dataset, root, image_size)
    if characters is None:
        splits = folder_splits(Path(dataset).expanduser(), image_size, split_seed)
        protocol = "folder"
    else:
        split = paper_split if protocol == "paper" else lake_split
        splits = split(characters, split_seed)
    for name, part in splits.items():
        part.meta.update(split=name, protocol=protocol, split_seed=split_seed)
        part.meta.setdefault("dataset", "folder" if characters is None else characters.meta.get("dataset"))
    return splits


def folder_splits(root: Path, image_size: int, split_seed: int) -> dict[str, ClassImages]:
    """A folder's own train/ val/ test/ subfolders if it has them, else a seeded split of its class folders."""
    if all((root / split).is_dir() for split in SPLITS):
        return {split: load_folder(root / split, image_size) for split in SPLITS}
    return split_classes(load_folder(root, image_size), split_seed)
