"""Prototypical Networks (Snell, Swersky & Zemel, NeurIPS 2017).

A CNN embeds every image, h = f(x). Each class is represented by its prototype, the mean embedding
of its support examples, and a query is scored by how close it is to each prototype:

    c_k    = mean_{i : y_i = k} f(x_i)               prototypes       [N, D]
    logits = -||f(x_q) - c_k||^2                     query scores     [Q, N]

Why the mean: for squared Euclidean distance (any Bregman divergence) the point that minimises the
summed distance to a class's examples is their mean. Why it is a linear classifier: expanding the square,
-||h - c||^2 = 2 c.h - ||c||^2 - ||h||^2, and the last term is the same for every class of a query, so the
softmax sees a linear layer with W = 2c and b = -||c||^2 (ProtoMAML starts its inner loop from it).

`distance="cosine"` scores by cosine similarity instead (bounded in [-1, 1], so the softmax stays soft unless
`scale` multiplies it: scale 10 is a temperature of 0.1); the paper found squared Euclidean better, and chapter 06
measures how much of the gap the scale closes.

BatchNorm uses the backbone's "support" mode: queries are normalised with the statistics of their task's
support set, so each query is scored on its own (no transduction), at training and at test time.
The paper trains with more ways than it tests (60-way episodes, `Settings.train_ways`): nothing here has a
fixed number of classes, which are read from each task's labels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from ..models.conv4 import Conv4
from .base import MetaLearner

DISTANCES = ("euclidean", "cosine")


def prototypes(embeddings: Tensor, labels: Tensor) -> Tensor:
    """Mean embedding of each class.  embeddings [n, D], labels [n] in 0..N-1 -> [N, D]."""
    one_hot = F.one_hot(labels, int(labels.max()) + 1).to(embeddings.dtype)  # [n, N]
    return (one_hot.T @ embeddings) / one_hot.sum(0)[:, None]


class ProtoNet(MetaLearner):
    """Prototypical Network on a headless Conv4 embedding (D = `width` numbers on 28x28 images).

    distance: "euclidean" (negative squared Euclidean distance, the paper's) or "cosine" (cosine similarity);
    scale: multiplies the logits (1 for the paper; a cosine needs about 10 to become confident).
    Adam with the learning rate halved every `lr_halving` iterations (the paper: every 2,000 episodes).
    """

    name = "protonet"
    supports_vmap = False  # the number of classes is read from each task's labels

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        width: int = 64,
        bn: str = "support",
        distance: str = "euclidean",
        lr_halving: int = 2000,
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if distance not in DISTANCES:
            raise ConfigError(f"unknown distance={distance!r}; choose one of: {', '.join(DISTANCES)}")
        if not isinstance(lr_halving, int) or lr_halving < 1:
            raise ConfigError(f"lr_halving must be a positive number of iterations, got {lr_halving!r}")
        if not scale > 0:
            raise ConfigError(f"scale multiplies the logits and must be positive, got {scale!r}")
        self.embedding = Conv4(None, in_channels, image_size, width, bn=bn)

    def embed(self, support_x: Tensor, query_x: Tensor) -> tuple[Tensor, Tensor]:
        """support_x [N*K, C, H, W], query_x [Q, C, H, W] -> h_support [N*K, D], h_query [Q, D].

        Queries are normalised with the support set's statistics (bn="support").
        """
        return self.embedding(support_x), self.embedding(query_x, support_x)

    def score(self, h_query: Tensor, centres: Tensor) -> Tensor:
        """h_query [Q, D], prototypes [N, D] -> logits [Q, N]."""
        if self.distance == "cosine":
            return self.scale * F.cosine_similarity(h_query[:, None], centres[None], dim=-1)
        return -self.scale * (h_query[:, None] - centres[None]).pow(2).sum(-1)

    def score_task(self, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        """One task -> logits [Q, N]: closeness of each query to each class prototype."""
        h_support, h_query = self.embed(support_x, query_x)
        return self.score(h_query, prototypes(h_support, support_y))

    def configure_optimizer(
        self, outer_lr: float, iterations: int
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        """Adam, with the learning rate halved every `lr_halving` iterations (Snell et al.'s schedule)."""
        optimizer = torch.optim.Adam(self.parameters(), lr=outer_lr)
        return optimizer, torch.optim.lr_scheduler.StepLR(optimizer, step_size=self.lr_halving, gamma=0.5)
