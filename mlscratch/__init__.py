"""mlscratch: meta-learning from scratch, in small readable pieces."""

from .data import ClassImages, SyntheticGlyphs, load_omniglot, load_splits
from .errors import ConfigError, DataError, MlscratchError
from .tasks import TaskBatch, TaskSampler

__version__ = "0.1.0"

__all__ = [
    "ClassImages",
    "ConfigError",
    "DataError",
    "MlscratchError",
    "SyntheticGlyphs",
    "TaskBatch",
    "TaskSampler",
    "__version__",
    "load_omniglot",
    "load_splits",
]
