"""ProtoMAML (Triantafillou et al., Meta-Dataset, ICLR 2020): MAML whose output layer starts as a ProtoNet.

MAML's output layer is shared by all tasks, although the labels 0..N-1 mean different classes in every
task: before adaptation it is at chance. ProtoMAML instead builds each task's output layer from the
prototypes c_k (mean embedding of class k's support images), so that it starts as a Prototypical
Network (chapter 06: a ProtoNet is a linear classifier):

    -||z - c_k||^2 = 2 c_k . z - ||c_k||^2 - ||z||^2     ->   W_k = 2 c_k,  b_k = -||c_k||^2

(the -||z||^2 term is the same for every class and does not change the softmax). The inner loop then
adapts the embedding network and this layer together, as in MAML. The prototypes are computed from the
shared weights inside the graph, so the meta-gradient also flows through them; with first_order=True
(fo-ProtoMAML) the inner gradients are detached but this path through the prototypes remains.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..inner_loop import Params, split_parameters
from .maml import MAML

HEAD = ("head.weight", "head.bias")  # the per-task output layer, added to the adapted weights


class ProtoMAML(MAML):
    """MAML with a prototype-initialised output layer (it takes every MAML setting).

    The backbone is an embedding network: the default Conv4 without its head, or a custom `backbone` mapping
    images [M, C, H, W] to features [M, D].
    """

    name = "protomaml"

    def __init__(self, **hparams: Any) -> None:
        if hparams.get("meta_dropout") == "learned":
            raise ConfigError("protomaml has no fixed output layer for learned Meta Dropout's noise; use 'consistent'")
        super().__init__(**hparams)
        if hparams.get("backbone") is None:
            self.backbone.head = nn.Identity()  # Conv4 -> embeddings [M, D]; each task gets its own output layer
        self.n_way = self.hparams["n_way"]  # the prototypes' count, one per class of a task

    def embed(self, params: Params, fixed: Params, x: Tensor, support_x: Tensor | None = None) -> Tensor:
        """The embedding network with the given weights: x [M, C, H, W] -> features [M, D]."""
        body = {name: p for name, p in params.items() if name not in HEAD}
        return super().logits(body, fixed, x, support_x)

    def logits(self, params: Params, fixed: Params, x: Tensor, support_x: Tensor | None = None) -> Tensor:
        """features @ W.T + b with the task's output layer (params "head.weight" [N, D], "head.bias" [N])."""
        return F.linear(self.embed(params, fixed, x, support_x), params["head.weight"], params["head.bias"])

    def task_weights(self, support_x: Tensor, support_y: Tensor) -> tuple[Params, Params]:
        """The shared embedding weights, plus the output layer W = 2c, b = -||c||^2 from the support prototypes."""
        params, fixed = split_parameters(self.backbone)
        z = self.embed(params, fixed, support_x)  # [N*K, D], a function of the shared weights
        onehot = F.one_hot(support_y, self.n_way).to(z.dtype)  # [N*K, N]
        prototypes = onehot.T @ z / onehot.sum(0)[:, None]  # [N, D]
        return {**params, "head.weight": 2 * prototypes, "head.bias": -(prototypes**2).sum(-1)}, fixed
