"""SyntheticGlyphs: Omniglot's shapes, deterministic, learnable structure, loud fallback."""

from __future__ import annotations

import hashlib
import inspect
import random
import warnings

import numpy as np
import pytest
import torch

from mlscratch.data import SyntheticGlyphs, load_splits, splits
from mlscratch.data.omniglot import OmniglotUnavailable
from mlscratch.errors import ConfigError, DataError
from mlscratch.tasks import TaskSampler


@pytest.fixture(scope="module")
def glyphs() -> SyntheticGlyphs:
    return SyntheticGlyphs(background_alphabets=3, evaluation_alphabets=2, characters_per_alphabet=4, seed=0)


def test_shapes_metadata_and_range(glyphs):
    assert glyphs.images.shape == (20, 20, 1, 28, 28)
    assert 0 <= float(glyphs.images.min()) and float(glyphs.images.max()) <= 1
    assert float(glyphs.images.amax(dim=(2, 3, 4)).min()) > 0.9  # every drawing has ink
    assert 0.02 < float(glyphs.images.mean()) < 0.3  # mostly paper, like Omniglot
    assert len(glyphs.alphabet_names()) == 5 and int(glyphs.background.sum()) == 12
    assert glyphs.drawers.shape == (20, 20) and glyphs.drawers[0].tolist() == list(range(1, 21))
    assert glyphs.names[5] == "Glyphs_01/character02"


def test_deterministic_by_seed(glyphs):
    again = SyntheticGlyphs(background_alphabets=3, evaluation_alphabets=2, characters_per_alphabet=4, seed=0)
    other = SyntheticGlyphs(background_alphabets=3, evaluation_alphabets=2, characters_per_alphabet=4, seed=1)
    assert torch.equal(glyphs.images, again.images)
    assert not torch.equal(glyphs.images, other.images)


def test_drawings_vary_but_resemble_their_character(glyphs):
    flat = glyphs.images.flatten(2)  # [chars, drawings, pixels]
    assert float((flat[:, 0] - flat[:, 1]).abs().amax(dim=1).min()) > 0.1  # jitter: no two drawings identical
    # nearest neighbour (leave one out) of a drawing is usually another drawing of the same character
    x = flat.flatten(0, 1)
    distance = torch.cdist(x, x) + torch.eye(len(x)) * 1e9
    same = (distance.argmin(1) // 20) == torch.arange(len(x)) // 20
    assert float(same.float().mean()) > 0.8


def test_image_size_and_bad_arguments():
    small = SyntheticGlyphs(1, 1, 2, drawings=5, image_size=14)
    assert small.images.shape == (4, 5, 1, 14, 14)
    with pytest.raises(ConfigError, match="characters_per_alphabet must be a positive integer"):
        SyntheticGlyphs(characters_per_alphabet=0)


def test_feeds_the_sampler(glyphs):
    batch = TaskSampler(glyphs.classes(rotate=True), n_way=5, k_shot=1, k_query=15, batch_size=4).sample()
    assert batch.support_x.shape == (4, 5, 1, 28, 28) and batch.query_x.shape == (4, 75, 1, 28, 28)


@pytest.mark.parametrize("protocol", ["paper", "lake"])
def test_splits_disjoint(protocol, glyphs):
    parts = splits.paper_split(glyphs) if protocol == "paper" else splits.lake_split(glyphs)
    names = [set(parts[s].names) for s in ("train", "val", "test")]
    assert all(names) and not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    assert sum(len(n) for n in names) == glyphs.n_characters
    assert all(p.rotate == (protocol == "paper") for p in parts.values())


def test_load_splits_synthetic_is_labelled():
    parts = load_splits("synthetic", "lake")
    assert parts["train"].meta["dataset"] == "synthetic" and "synthetic" in parts["train"].source
    assert parts["test"].n_classes == 20 * 12


def test_auto_falls_back_once_when_omniglot_is_nowhere(monkeypatch, capsys):
    def nowhere(*args, **kwargs):
        raise OmniglotUnavailable("Omniglot not found (test)")

    monkeypatch.setattr(splits, "load_omniglot", nowhere)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parts = load_splits("auto")
    assert [w.category for w in caught] == [splits.SyntheticFallbackWarning]
    assert "Omniglot not found (test)" in str(caught[0].message) and "NOT Omniglot results" in str(caught[0].message)
    assert capsys.readouterr().err == ""  # one warning, not a print as well
    assert parts["train"].meta["dataset"] == "synthetic"
    with pytest.raises(DataError):  # asking for omniglot explicitly never substitutes
        load_splits("omniglot")


def test_auto_does_not_hide_other_data_errors(monkeypatch):
    def damaged(*args, **kwargs):
        raise DataError("images_background.zip is not a readable zip")

    monkeypatch.setattr(splits, "load_omniglot", damaged)
    with warnings.catch_warnings():
        warnings.simplefilter("error", splits.SyntheticFallbackWarning)
        with pytest.raises(DataError, match="not a readable zip"):
            load_splits("auto")


# ---------------------------------------------------------------- the split has its own seed


def test_run_seed_does_not_change_the_split():
    """Whatever the run seeds (torch, numpy, random), the characters of each split are the same."""
    assert "seed" not in inspect.signature(load_splits).parameters
    names = []
    for run_seed in (0, 1):
        torch.manual_seed(run_seed), np.random.seed(run_seed), random.seed(run_seed)
        names.append({split: part.names for split, part in load_splits("synthetic", "paper").items()})
    assert names[0] == names[1]


@pytest.mark.parametrize("protocol", ["paper", "lake"])
def test_split_seed_changes_the_classes_and_is_recorded(protocol):
    first, second = load_splits("synthetic", protocol), load_splits("synthetic", protocol, split_seed=1)
    assert first["test"].meta["split_seed"] == 0 and second["test"].meta["split_seed"] == 1
    changed = "test" if protocol == "paper" else "val"  # lake: the test set is always the evaluation alphabets
    assert first[changed].names != second[changed].names
    for parts in (first, second):
        names = [set(parts[s].names) for s in ("train", "val", "test")]
        assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])


def test_split_seed_0_is_the_first_release_split():
    """split_seed=0 reproduces the split the first release made with seed=0 (trained models depend on it)."""
    parts = load_splits("synthetic", "paper")
    fingerprints = {s: hashlib.sha256("\n".join(parts[s].names).encode()).hexdigest()[:16] for s in parts}
    assert fingerprints == {"train": "e709177ab72b7b4c", "val": "5d1658aca5c492c4", "test": "5255ecabf6d5a0e7"}
