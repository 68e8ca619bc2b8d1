"""The embedding-based Meta Network (the seed project's metric-based variant of Meta Networks).

A CNN embeds every image (Conv4's feature extractor), h = f(x). A meta learner with
parameters U, V, e turns the support set into one weight vector per class and
scores the queries against them, in a single forward pass:

    w_c    = mean_{i : y_i = c} (U h_i + e)          class weights      [N, E]
    logits = (V h_q) . w_c                           query scores       [Q, N]

No gradient steps and no memory at test time: "adaptation" is one average. It is
close to Prototypical Networks with two learned projections (U for the support,
V for the queries) and a bias e, scored by a dot product instead of a distance.

BatchNorm uses the backbone's "support" mode by default: queries are normalised
with the statistics of their task's support set, so each query is scored on its
own (independent of the other queries). Meta Dropout (`meta_dropout="consistent"`)
perturbs the embedding network with one mask per task, shared by support and queries
(option mask_query=False leaves the queries unmasked); see `mlscratch.models.meta_dropout`.
Learned noise (Lee et al. 2020) is refused: it perturbs the support loss of an inner
loop, and this learner has none.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..models.conv4 import Conv4
from ..models.meta_dropout import install, support_pass
from .base import MetaLearner


class MetaNetEmbedding(MetaLearner):
    """Embedding-based Meta Network on a Conv4 embedding.

    width: conv channels (the embedding h has `width` numbers on 28x28 images); embedding_size: E, the size
    of U h, V h and e. meta_dropout: "none" | "consistent", meta_dropout_options: keyword options of
    `mlscratch.models.meta_dropout.install` (e.g. {"rates": [...], "mask_query": False}), as for MAML.
    """

    name = "metanet-embedding"
    supports_vmap = False  # the number of classes is read from each task's labels

    def __init__(
        self,
        n_way: int = 5,
        in_channels: int = 1,
        image_size: int = 28,
        width: int = 64,
        embedding_size: int = 64,
        bn: str = "support",
        meta_dropout: str = "none",
        meta_dropout_options: dict | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.n_way = None  # class weights come from the support set: tasks of any number of ways
        if not isinstance(embedding_size, int) or embedding_size < 1:
            raise ConfigError(f"embedding_size must be a positive integer, got {embedding_size!r}")
        if meta_dropout == "learned":
            raise ConfigError(
                "metanet-embedding has no inner loop for learned Meta Dropout to perturb (its noise enters an "
                "inner loop's support loss); use meta_dropout='consistent', or algo maml with 'learned'"
            )
        self.embedding = Conv4(None, in_channels, image_size, width, bn=bn)
        install(self.embedding, meta_dropout, **(meta_dropout_options or {}))
        feature_size = self.embedding.feature_size
        self.U = nn.Linear(feature_size, embedding_size, bias=False)
        self.V = nn.Linear(feature_size, embedding_size, bias=False)
        self.e = nn.Parameter(torch.zeros(embedding_size))

    def class_weights(self, h_support: Tensor, support_y: Tensor) -> Tensor:
        """w_c = mean over class c's support examples of U h + e.  h_support [n, D], support_y [n] -> [N, E]."""
        one_hot = F.one_hot(support_y, int(support_y.max()) + 1).to(h_support.dtype)  # [n, N]
        return (one_hot.T @ (self.U(h_support) + self.e)) / one_hot.sum(0)[:, None]

    def embed(self, support_x: Tensor, query_x: Tensor) -> tuple[Tensor, Tensor]:
        """One task's embeddings: support_x [n, C, H, W], query_x [Q, C, H, W] -> h_support [n, D], h_query [Q, D].

        Queries are normalised with the support set's statistics (bn="support"); within a task both passes
        share its dropout masks (run inside `task_scope`, as `per_task` does).
        """
        with support_pass(self.embedding):
            h_support = self.embedding(support_x)
        return h_support, self.embedding(query_x, support_x)

    def score_task(self, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        """One task -> query logits [Q, N] = (V h_query) . w_c."""
        h_support, h_query = self.embed(support_x, query_x)
        return self.V(h_query) @ self.class_weights(h_support, support_y).T
