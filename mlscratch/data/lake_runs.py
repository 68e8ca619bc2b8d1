"""Lake's one-shot challenge (Lake, Salakhutdinov & Tenenbaum, Science 2015): the 20 official runs.

Each run is 20-way one-shot classification within one evaluation alphabet: 20 training images (one per
character) and 20 test images (another drawing of each), so 400 test images in all. The official release
(github.com/brendenlake/omniglot, python/one-shot-classification/all_runs.zip) holds renamed copies of
evaluation drawings; `lake_runs.json` names the original drawing in images_evaluation for each of them
(matched by pixels, by tools/index_lake_runs.py), so the runs are read from the Omniglot zip itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError, DataError
from .omniglot import decode, locate_omniglot, read_members

INDEX = Path(__file__).with_name("lake_runs.json")
RUNS = 20
WAYS = 20  # characters per run: 20 training and 20 test images
SET = "images_evaluation"


@dataclass
class LakeRun:
    """One official run.

    train:  [20, 1, S, S] float32 in [0, 1], ink = 1: one drawing of each of the run's 20 characters
    test:   [20, 1, S, S] float32, another drawing of each (in the run's own order)
    answer: [20] long, answer[j] = which training image test image j shows the character of
    """

    name: str
    alphabet: str
    train: Tensor
    test: Tensor
    answer: Tensor
    train_names: list[str]
    test_names: list[str]


def read_index(path: str | Path = INDEX) -> list[dict]:
    """The runs of the shipped index: [{"run", "train", "test", "answer"}, ...]; DataError if it is damaged."""
    try:
        runs = json.loads(Path(path).read_text())["runs"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DataError(f"cannot read the run index {path} ({error}); reinstall mlscratch or rerun "
                        "tools/index_lake_runs.py") from error  # fmt: skip
    shapes = {(len(r["train"]), len(r["test"]), tuple(sorted(r["answer"]))) for r in runs}
    if len(runs) != RUNS or shapes != {(WAYS, WAYS, tuple(range(WAYS)))}:
        raise DataError(f"the run index {path} does not hold {RUNS} runs of {WAYS} + {WAYS} images with a "
                        "one-to-one answer key; reinstall mlscratch or rerun tools/index_lake_runs.py")  # fmt: skip
    return runs


def alphabet_of(names: list[str]) -> str:
    """The one alphabet of a run's drawings ("Alphabet/characterNN/NNNN_DD.png"); DataError if there are several."""
    alphabets = sorted({name.split("/")[0] for name in names})
    if len(alphabets) != 1:
        raise DataError(f"a run mixes alphabets {alphabets}; the index is damaged, rerun tools/index_lake_runs.py")
    return alphabets[0]


def load_lake_runs(root: str | Path | None = None, image_size: int = 28, download: bool = False) -> list[LakeRun]:
    """The 20 official runs, read from images_evaluation (zip or folder) and resized as `load_omniglot` does.

    root:       folder with the Omniglot zips (default $MLSCRATCH_DATA, then the usual places)
    image_size: 105 keeps the original one-bit drawings (the official demo's); 28 matches the zoo's models
    """
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 1:
        raise ConfigError(f"image_size must be a positive integer, got {image_size!r}")
    source = locate_omniglot(root, download=download)[SET]
    runs = read_index()
    members = [f"{SET}/{name}" for r in runs for name in (*r["train"], *r["test"])]
    images = np.empty((len(members), image_size, image_size), dtype=np.uint8)
    try:
        for i, (member, data) in enumerate(read_members(source, members)):
            images[i] = decode(data, image_size, f"{source}:{member}")
    except KeyError as error:  # a zip without that member
        raise DataError(f"{source} lacks a drawing of the official runs ({error}); restore the official "
                        "images_evaluation") from error  # fmt: skip
    except FileNotFoundError as error:
        raise DataError(f"{error.filename} is missing; restore the official images_evaluation") from error
    pixels = torch.from_numpy(images).float().div_(255).reshape(len(runs), 2, WAYS, 1, image_size, image_size)
    return [
        LakeRun(
            name=r["run"],
            alphabet=alphabet_of(r["train"] + r["test"]),
            train=pixels[i, 0],
            test=pixels[i, 1],
            answer=torch.tensor(r["answer"], dtype=torch.long),
            train_names=list(r["train"]),
            test_names=list(r["test"]),
        )
        for i, r in enumerate(runs)
    ]


__all__ = ["INDEX", "RUNS", "WAYS", "LakeRun", "alphabet_of", "load_lake_runs", "read_index"]
