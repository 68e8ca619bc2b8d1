"""Meta-learning algorithms, all following `MetaLearner` (see base.py), and a registry by name."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .base import MetaLearner, query_loss
from .maml import FOMAML, MAML
from .metanet import MetaNetwork
from .metanet_embedding import MetaNetEmbedding

ALGORITHMS: dict[str, type[MetaLearner]] = {
    "maml": MAML,
    "fomaml": FOMAML,
    "metanet": MetaNetwork,
    "metanet-embedding": MetaNetEmbedding,
}


def build(name: str, **hparams: Any) -> MetaLearner:
    """A new learner: `build("maml", n_way=5, inner_lr=0.4)`."""
    if name not in ALGORITHMS:
        raise ConfigError(f"unknown algorithm {name!r}; choose one of: {', '.join(sorted(ALGORITHMS))}")
    try:
        return ALGORITHMS[name](**hparams)
    except TypeError as error:
        hint = f"see help(mlscratch.algorithms.{ALGORITHMS[name].__name__})"
        raise ConfigError(f"bad settings for {name}: {error}; {hint}") from error


__all__ = ["ALGORITHMS", "FOMAML", "MAML", "MetaLearner", "MetaNetEmbedding", "MetaNetwork", "build", "query_loss"]
