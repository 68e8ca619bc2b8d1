"""mlscratch: meta-learning from scratch, in small readable pieces."""

from .errors import ConfigError, DataError, MlscratchError
from .tasks import TaskBatch, TaskSampler

__version__ = "0.1.0"

__all__ = ["ConfigError", "DataError", "MlscratchError", "TaskBatch", "TaskSampler", "__version__"]
