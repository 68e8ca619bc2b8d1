"""mlscratch: meta-learning from scratch, in small readable pieces.

The library: what a user imports for their own data (`import mlscratch as ml; ml.MAML(); ml.zoo.load(...)`).
The chapters' helpers live apart, in `mlscratch.course`, which the library never imports.
"""

from . import zoo  # noqa: E402  (after the core it builds on)
from .algorithms import ALGORITHMS, FOMAML, MAML, MetaLearner, build
from .checkpoint import load_checkpoint, save_checkpoint
from .data import ClassImages, SyntheticGlyphs, load_omniglot, load_splits
from .errors import ConfigError, DataError, MlscratchError
from .evaluation import EvaluationResult, evaluate
from .models import Conv4
from .tasks import TaskBatch, TaskSampler
from .training import History, TrainingDiverged, fit

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
    "ALGORITHMS",
    "FOMAML",
    "MAML",
    "MetaLearner",
    "build",
    "load_checkpoint",
    "save_checkpoint",
    "EvaluationResult",
    "evaluate",
    "Conv4",
    "History",
    "TrainingDiverged",
    "fit",
    "zoo",
]
