"""MAML (Finn, Abbeel & Levine, ICML 2017): learn an initialisation that adapts in a few gradient steps.

Per task, SGD steps on the support loss from the shared weights theta (the inner loop); the outer loop
moves theta to lower the query loss *after* adaptation, differentiating through the inner steps:

    theta_i' = theta - inner_lr * grad L_support(theta)          (inner step, per task)
    meta-loss = mean_i L_query(theta_i')                         (outer objective)

The inner gradient's graph is kept (exact second order); `first_order=True` detaches it (FOMAML). Subclasses
change one piece: the update rule (Meta-SGD), a task's initial weights (ProtoMAML), the outer step (Reptile).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from ..errors import ConfigError, require, require_choice, require_count
from ..inner_loop import EXECUTIONS, Params, UpdateRule, adapt, sgd, split_parameters
from ..models import meta_dropout as meta_dropout_lib
from ..models.conv4 import Conv4
from .base import MetaLearner


def output_size(backbone: nn.Module) -> int | None:
    """The number of outputs of a backbone's last linear layer (None if it has none)."""
    linears = [m for m in backbone.modules() if isinstance(m, nn.Linear)]
    return linears[-1].out_features if linears else None


class MAML(MetaLearner):
    """MAML on any backbone: a module mapping images [M, C, H, W] to logits [M, n_way] (default: Conv4 of
    n_way, in_channels, image_size, width, bn). meta_dropout: support-set feature noise while adapting,
    "none" | "consistent" | "learned" | "gate" (mlscratch/models/meta_dropout.py)."""

    name = "maml"

    def __init__(
        self,
        n_way: int = 5,
        in_channels: int = 1,
        image_size: int = 28,
        width: int = 64,
        bn: str = "transductive",
        inner_lr: float = 0.4,
        inner_steps: int = 1,
        test_inner_steps: int = 3,
        first_order: bool = False,
        execution: str = "auto",
        meta_dropout: str = "none",
        meta_dropout_options: dict | None = None,
        backbone: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if isinstance(backbone, str):
            raise ConfigError(
                "this learner was trained with a custom backbone: pass the module again, "
                "load_checkpoint(path, backbone=MyNet()) or build(name, **hparams, backbone=MyNet())"
            )
        self.save_hyperparameters(ignore=("backbone",))
        require_count("inner_steps", inner_steps)
        require_count("test_inner_steps", test_inner_steps)
        require_choice("execution", execution, ("auto", *EXECUTIONS))
        require(inner_lr > 0, f"inner_lr must be positive, got {inner_lr}")
        if first_order and meta_dropout == "learned":
            raise ConfigError(
                "learned Meta Dropout needs second-order MAML: its noise enters only the support loss, and the "
                "first-order meta-gradient detaches that loss, so the noise generator would never learn; "
                "use first_order=False (algo maml) or meta_dropout='consistent'"
            )
        self.backbone = backbone if backbone is not None else Conv4(n_way, in_channels, image_size, width, bn=bn)
        if backbone is not None:
            self.hparams["backbone"] = "custom"  # a checkpoint needs the module again: load_checkpoint(..., backbone=)
            self.n_way = output_size(backbone) or n_way
        meta_dropout_lib.install(self.backbone, meta_dropout, **(meta_dropout_options or {}))

    # --- the pieces a variant may change -------------------------------------------------------
    def update_rule(self) -> UpdateRule:
        """How one inner step moves the weights: plain SGD with the scalar `inner_lr`."""
        return sgd(self.inner_lr)

    def task_weights(self, support_x: Tensor, support_y: Tensor) -> tuple[Params, Params]:
        """(weights the inner loop adapts, fixed rest) at the start of a task: the shared initialisation."""
        return split_parameters(self.backbone)

    # --- one task --------------------------------------------------------------------------------
    def logits(self, params: Params, fixed: Params, x: Tensor, support_x: Tensor | None = None) -> Tensor:
        """The backbone with the given weights: x [M, C, H, W] -> [M, n_way] (support_x: see Conv4.features)."""
        support_stats = support_x is not None and getattr(self.backbone, "bn", None) == "support"
        kwargs = {"support_x": support_x} if support_stats else {}
        return functional_call(self.backbone, (params, fixed), (x,), kwargs)

    def adapt(self, support_x: Tensor, support_y: Tensor, steps: int, trace: bool = False):
        """The inner loop on one task: (adapted weights, or the list before/after each step with trace; fixed)."""
        params, fixed = self.task_weights(support_x, support_y)

        def support_loss(p: Params) -> Tensor:  # with the backbone's support-set noise, if any
            return meta_dropout_lib.support_loss(
                self.backbone, lambda: F.cross_entropy(self.logits(p, fixed, support_x), support_y)
            )

        return adapt(support_loss, params, steps, self.update_rule(), self.first_order, trace), fixed

    def steps(self) -> int:
        return self.inner_steps if self.training else self.test_inner_steps

    def score_task(self, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        """Adapt on the support set, then score the queries with the adapted weights: [N*Q, n_way]."""
        adapted, fixed = self.adapt(support_x, support_y, self.steps())
        return self.logits(adapted, fixed, query_x, support_x)

    def adaptation_logits(self, support_x: Tensor, support_y: Tensor, query_x: Tensor, steps: int | None = None):
        """Batch -> query logits [B, steps+1, N*Q, n_way] before adaptation (index 0) and after each inner step
        (default: test_inner_steps), without an outer graph, in the module's current mode (the evaluator's: eval)."""
        steps = self.test_inner_steps if steps is None else steps

        def curve(sx: Tensor, sy: Tensor, qx: Tensor) -> Tensor:
            path, fixed = self.adapt(sx, sy, steps, trace=True)
            return torch.stack([self.logits(p, fixed, qx, sx) for p in path])

        with torch.no_grad():
            return self.run_tasks(support_x, support_y, query_x, curve)
