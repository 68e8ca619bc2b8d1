"""Your own images: a folder with one subfolder of images per class.

    my_data/
      cat/   001.jpg 002.jpg ...
      dog/   a.png b.png ...

`load_folder("my_data")` returns a `ClassImages` the task sampler takes directly.
Images are converted to greyscale (or RGB), resized to a square with a smoothing
filter and scaled to [0, 1]. Classes may hold different numbers of images; the
sampler never draws the padding. Already have tensors? Use
`ClassImages.from_tensors([images_of_class_0, images_of_class_1, ...])`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import ConfigError, DataError
from .classes import ClassImages

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def class_folders(root: Path) -> list[Path]:
    """Sub-folders of `root` that hold at least one image, sorted by name; DataError if there are none."""
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; pass a folder with one subfolder of images per class")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{root} has no subfolders; put the images of each class in its own subfolder")
    return folders


def image_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise DataError(
            f"class folder {folder} has no images ({', '.join(sorted(IMAGE_SUFFIXES))}); "
            "add images or remove the folder"
        )
    return files


def read_image(path: Path, image_size: int, channels: int, invert: bool) -> np.ndarray:
    """One image file -> [C, S, S] float32 in [0, 1]."""
    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB").resize((image_size, image_size), Image.LANCZOS)
            array = np.asarray(image, dtype=np.float32) / 255
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise DataError(f"cannot read image {path} ({error}); replace or delete the file") from error
    array = 1 - array if invert else array
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def load_folder(root: str | Path, image_size: int = 28, channels: int = 1, invert: bool = False) -> ClassImages:
    """All classes of a folder of class folders.

    images: [n_classes, most images in a class, channels, image_size, image_size]
    invert: set True for dark ink on light paper, so that ink = 1 as in Omniglot
    """
    if channels not in (1, 3):
        raise ConfigError(f"channels must be 1 (greyscale) or 3 (RGB), got {channels!r}")
    if not isinstance(image_size, int) or image_size < 1:
        raise ConfigError(f"image_size must be a positive integer, got {image_size!r}")
    root = Path(root).expanduser()
    folders = class_folders(root)
    per_class = []
    for folder in folders:
        arrays = [read_image(path, image_size, channels, invert) for path in image_files(folder)]
        per_class.append(torch.from_numpy(np.stack(arrays)))
    classes = ClassImages.from_tensors(per_class, names=[f.name for f in folders])
    classes.source = str(root.resolve())
    classes.meta = {"dataset": "folder"}
    return classes
