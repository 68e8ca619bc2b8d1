"""Data: Omniglot, synthetic glyphs or your own images -> `ClassImages` splits for the task sampler."""

from .cache import default_cache_dir
from .classes import ClassImages
from .folder import load_folder
from .omniglot import Omniglot, load_omniglot
from .splits import load_splits, split_classes
from .synthetic import SyntheticGlyphs

__all__ = [
    "ClassImages",
    "Omniglot",
    "SyntheticGlyphs",
    "default_cache_dir",
    "load_folder",
    "load_omniglot",
    "load_splits",
    "split_classes",
]
