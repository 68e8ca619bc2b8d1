"""The one protocol every meta-learning algorithm follows.

A `MetaLearner` is an `nn.Module` with

- `meta_loss(batch) -> (loss, metrics)`: the differentiable outer objective over
  a batch of tasks; the trainer calls `loss.backward()` and steps Adam.
  `metrics` has at least "loss" and "accuracy" (query accuracy, a fraction).
- `predict(support_x, support_y, query_x) -> logits`: adapt to the support set and
  score the queries, for one task or a batch of tasks.
- `hparams`: the constructor's keyword arguments, so a checkpoint can rebuild it.
- optionally `adaptation_logits(...)`: query logits before adaptation and after
  each inner step, for learners that adapt by gradient steps.

Subclasses implement `predict_tasks` (batched) and, if their training objective
is not simply the query loss of `predict_tasks`, `meta_loss`.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ..tasks import TaskBatch


def query_loss(logits: Tensor, query_y: Tensor) -> tuple[Tensor, dict[str, float]]:
    """Mean cross-entropy over all queries of all tasks, and metrics.

    logits: [B, N*Q, N]  query_y: [B, N*Q]  ->  (loss, {"loss": float, "accuracy": fraction in [0, 1]})
    """
    loss = F.cross_entropy(logits.flatten(0, 1), query_y.flatten())
    accuracy = (logits.argmax(-1) == query_y).float().mean()
    return loss, {"loss": loss.item(), "accuracy": accuracy.item()}


class MetaLearner(nn.Module):
    """Base class: see the module docstring for the protocol."""

    name: str = ""  # registry name, e.g. "maml"

    def __init__(self, **hparams: Any) -> None:
        super().__init__()
        self.hparams = dict(hparams)

    def predict_tasks(self, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        """support_x: [B, N*K, C, H, W], support_y: [B, N*K], query_x: [B, N*Q, C, H, W] -> logits [B, N*Q, N]."""
        raise NotImplementedError

    def meta_loss(self, batch: TaskBatch) -> tuple[Tensor, dict[str, float]]:
        """Query cross-entropy of `predict_tasks`, averaged over the tasks of the batch."""
        logits = self.predict_tasks(batch.support_x, batch.support_y, batch.query_x)
        return query_loss(logits, batch.query_y)

    def predict(self, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        """One task (support_x [N*K, C, H, W] -> logits [N*Q, N]) or a batch ([B, N*K, C, H, W] -> [B, N*Q, N])."""
        if support_x.dim() == 4:
            return self.predict_tasks(support_x[None], support_y[None], query_x[None])[0]
        return self.predict_tasks(support_x, support_y, query_x)

    def adaptation_logits(
        self, support_x: Tensor, support_y: Tensor, query_x: Tensor, steps: int | None = None
    ) -> Tensor | None:
        """Learners that adapt by gradient steps: query logits [B, steps+1, N*Q, N] before adaptation
        (index 0) and after each inner step. Others return None (the default)."""
        return None
