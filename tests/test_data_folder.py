"""Your own data: a folder of class folders, or tensors by class, into the same sampler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mlscratch.data import ClassImages, load_folder, load_splits, split_classes
from mlscratch.errors import ConfigError, DataError
from mlscratch.tasks import TaskSampler


def write_classes(root: Path, counts=(3, 5, 4, 3, 6)) -> Path:
    """Class folders of RGB JPEGs and PNGs of different sizes; class i is uniformly grey level 25*i."""
    for i, n in enumerate(counts):
        folder = root / f"class_{i}"
        folder.mkdir(parents=True)
        for j in range(n):
            image = Image.fromarray(np.full((20 + j, 30, 3), 25 * i, dtype=np.uint8))
            image.save(folder / f"{j}.{'png' if j % 2 else 'jpg'}")
    (root / ".hidden").mkdir()
    return root


def test_load_folder_resizes_greyscales_and_pads(tmp_path):
    classes = load_folder(write_classes(tmp_path / "data"), image_size=16)
    assert classes.images.shape == (5, 6, 1, 16, 16)
    assert classes.counts.tolist() == [3, 5, 4, 3, 6]
    assert classes.names == [f"class_{i}" for i in range(5)]
    for i in range(5):
        real = classes.images[i, : classes.counts[i]]
        assert torch.allclose(real, torch.full_like(real, 25 * i / 255), atol=2 / 255)
    inverted = load_folder(tmp_path / "data", image_size=16, invert=True)
    assert torch.allclose(inverted.images[1, 0], 1 - classes.images[1, 0])
    assert load_folder(tmp_path / "data", image_size=8, channels=3).images.shape == (5, 6, 3, 8, 8)


def test_folder_feeds_the_sampler_without_padding(tmp_path):
    classes = load_folder(write_classes(tmp_path / "data", counts=(3, 5, 4)), image_size=8)
    batch = TaskSampler(classes, n_way=3, k_shot=1, k_query=2, batch_size=50, seed=1).sample()
    # class 0 is black (0) like the padding; any padding drawn would show up as a 0 image for labels 1 and 2
    labels_of = {round(float(x.mean()) * 255 / 25) for x in batch.query_x.flatten(0, 1)}
    assert labels_of == {0, 1, 2}
    assert batch.query_x.shape == (50, 6, 1, 8, 8)


def test_load_splits_on_a_folder(tmp_path):
    root = write_classes(tmp_path / "data", counts=(3,) * 10)
    parts = load_splits(str(root), image_size=8)
    sizes = [parts[s].n_classes for s in ("train", "val", "test")]
    assert sizes == [6, 2, 2] and parts["train"].meta["protocol"] == "folder"
    assert parts["train"].meta["split_seed"] == 0
    assert len(set().union(*(parts[s].names for s in parts))) == 10
    assert parts["test"].names == load_splits(str(root), image_size=8)["test"].names
    assert parts["test"].names != load_splits(str(root), image_size=8, split_seed=1)["test"].names


def test_folder_with_its_own_splits(tmp_path):
    for split in ("train", "val", "test"):
        write_classes(tmp_path / "data" / split, counts=(3, 3))
    parts = load_splits(str(tmp_path / "data"), image_size=8)
    assert all(p.n_classes == 2 for p in parts.values())


def test_tensors_by_class_split():
    classes = ClassImages.from_tensors([torch.rand(n, 1, 5, 5) for n in (4, 5, 6, 4, 4, 7, 4, 5, 4, 4)])
    parts = split_classes(classes, split_seed=2)
    assert [parts[s].n_classes for s in ("train", "val", "test")] == [6, 2, 2]
    assert sorted(sum((parts[s].names for s in parts), [])) == sorted(classes.names)
    assert TaskSampler(parts["train"], 3, 1, 3, 2).sample().query_x.shape == (2, 9, 1, 5, 5)


def test_bad_folders(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        load_folder(tmp_path / "missing")
    (tmp_path / "flat").mkdir()
    Image.new("L", (4, 4)).save(tmp_path / "flat" / "a.png")
    with pytest.raises(DataError, match="no subfolders; put the images of each class in its own subfolder"):
        load_folder(tmp_path / "flat")
    root = write_classes(tmp_path / "data", counts=(2, 2))
    (root / "empty").mkdir()
    with pytest.raises(DataError, match="empty has no images.*add images or remove the folder"):
        load_folder(root)
    (root / "empty" / "broken.png").write_bytes(b"\x89PNG truncated")
    with pytest.raises(DataError, match="cannot read image .*broken.png.*replace or delete"):
        load_folder(root)
    with pytest.raises(ConfigError, match="channels"):
        load_folder(root, channels=2)
    with pytest.raises(ConfigError, match="at least 3 classes"):
        split_classes(ClassImages.from_tensors([torch.rand(2, 1, 3, 3)] * 2))
