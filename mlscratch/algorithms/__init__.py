"""Meta-learning algorithms, all following `MetaLearner` (see base.py), and a registry by name."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .base import MetaLearner, query_loss
from .fomaml import FOMAML
from .maml import MAML
from .matching import MatchingNetwork
from .metanet import MetaNetwork
from .metanet_embedding import MetaNetEmbedding
from .metasgd import MetaSGD
from .protomaml import ProtoMAML
from .protonet import ProtoNet
from .reptile import Reptile

ALGORITHMS: dict[str, type[MetaLearner]] = {
    learner.name: learner
    for learner in (MAML, FOMAML, MetaNetwork, MetaNetEmbedding, ProtoNet, MatchingNetwork, Reptile, ProtoMAML, MetaSGD)
}


def learner_class(name: str) -> type[MetaLearner]:
    """The class registered under `name`, or a ConfigError listing the choices."""
    if name not in ALGORITHMS:
        raise ConfigError(f"unknown algorithm {name!r}; choose one of: {', '.join(sorted(ALGORITHMS))}")
    return ALGORITHMS[name]


def build(name: str, **hparams: Any) -> MetaLearner:
    """A new learner: `build("maml", n_way=5, inner_lr=0.4)`. Unknown settings are a ConfigError naming them."""
    cls = learner_class(name)
    accepted = cls.hyperparameters()
    unknown = sorted(set(hparams) - set(accepted))
    if unknown:
        raise ConfigError(f"{name} does not take {', '.join(unknown)}; it takes: {', '.join(accepted)}")
    try:
        return cls(**hparams)
    except TypeError as error:
        raise ConfigError(f"bad settings for {name}: {error}; see help(mlscratch.algorithms.{cls.__name__})") from error


__all__ = [
    "ALGORITHMS",
    "FOMAML",
    "MAML",
    "MatchingNetwork",
    "MetaLearner",
    "MetaNetEmbedding",
    "MetaNetwork",
    "MetaSGD",
    "ProtoMAML",
    "ProtoNet",
    "Reptile",
    "build",
    "learner_class",
    "query_loss",
]
