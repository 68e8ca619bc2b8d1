"""MAML and first-order MAML (Finn, Abbeel & Levine, ICML 2017).

For each task: start from the shared initialisation theta, take a few SGD steps
on the support loss (the inner loop), score the queries with the adapted
weights. The outer loop (the trainer's Adam) moves theta to lower the query
loss *after* adaptation, differentiating through the inner steps:

    theta_i' = theta - inner_lr * grad L_support(theta)          (inner step, per task)
    meta-loss = mean_i L_query(theta_i')                         (outer objective)

MAML keeps the graph of the inner gradient (exact second-order meta-gradient);
FOMAML detaches it, so the meta-gradient is the query gradient at theta_i'.

Two ways to run a meta-batch, same numbers: `vmap` over tasks (fast on a GPU)
or a Python loop over tasks (faster on a few CPU cores). `execution="auto"`
picks vmap on CUDA and the loop elsewhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call, vmap

from .. import meta_dropout as meta_dropout_lib
from ..errors import ConfigError
from ..functional import Params, sgd_step, split_parameters, task_scope
from ..models.conv4 import Conv4, written_out_batch_norm
from ..tasks import TaskBatch
from .base import MetaLearner, query_loss

EXECUTIONS = ("auto", "vmap", "loop")


class MAML(MetaLearner):
    """MAML on a Conv4 backbone (`first_order=True` gives FOMAML)."""

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
    ) -> None:
        super().__init__(
            n_way=n_way,
            in_channels=in_channels,
            image_size=image_size,
            width=width,
            bn=bn,
            inner_lr=inner_lr,
            inner_steps=inner_steps,
            test_inner_steps=test_inner_steps,
            first_order=first_order,
            execution=execution,
            meta_dropout=meta_dropout,
            meta_dropout_options=meta_dropout_options,
        )
        if execution not in EXECUTIONS:
            raise ConfigError(f"unknown execution={execution!r}; use one of {', '.join(EXECUTIONS)}")
        for name, steps in (("inner_steps", inner_steps), ("test_inner_steps", test_inner_steps)):
            if not isinstance(steps, int) or steps < 0:
                raise ConfigError(f"{name} must be an integer >= 0, got {steps!r}")
        if inner_lr <= 0:
            raise ConfigError(f"inner_lr must be positive, got {inner_lr}")
        self.n_way = n_way
        self.inner_lr, self.inner_steps, self.test_inner_steps = inner_lr, inner_steps, test_inner_steps
        self.first_order, self.execution = first_order, execution
        self.backbone = Conv4(n_way, in_channels, image_size, width, bn=bn)
        # feature noise while adapting (see mlscratch/meta_dropout.py): "none" | "consistent" | "learned"
        meta_dropout_lib.install(self.backbone, meta_dropout, **(meta_dropout_options or {}))

    # --- one task ------------------------------------------------------------------------------
    def logits(self, params: Params, fixed: Params, x: Tensor, stats_rows: int | None = None) -> Tensor:
        """The backbone with the given weights.  x: [M, C, H, W] -> [M, n_way]."""
        return functional_call(self.backbone, (params, fixed), (x,), {"stats_rows": stats_rows})

    def query_logits(self, params: Params, fixed: Params, support_x: Tensor, query_x: Tensor) -> Tensor:
        """Score one task's queries [N*Q, C, H, W] -> [N*Q, n_way] (BatchNorm statistics per `bn` mode)."""
        if self.backbone.bn == "support":
            n = support_x.shape[0]
            return self.logits(params, fixed, torch.cat([support_x, query_x]), stats_rows=n)[n:]
        return self.logits(params, fixed, query_x)

    def adapt_and_score(
        self,
        params: Params,
        fixed: Params,
        support_x: Tensor,
        support_y: Tensor,
        query_x: Tensor,
        steps: int,
        first_order: bool,
        every_step: bool = False,
    ) -> Tensor:
        """Inner loop on one task, then score its queries.

        Returns [1, N*Q, n_way] (after the last step) or, with every_step, [steps+1, N*Q, n_way].
        """

        def support_loss(p: Params) -> Tensor:  # with the backbone's support-set noise, if any
            return meta_dropout_lib.support_loss(
                self.backbone, lambda: F.cross_entropy(self.logits(p, fixed, support_x), support_y)
            )

        scores = []
        for _ in range(steps):
            if every_step:
                scores.append(self.query_logits(params, fixed, support_x, query_x))
            params = sgd_step(support_loss, params, self.inner_lr, first_order)
        scores.append(self.query_logits(params, fixed, support_x, query_x))
        return torch.stack(scores)

    # --- a batch of tasks ----------------------------------------------------------------------
    def uses_vmap(self) -> bool:
        if self.execution == "auto":
            return next(self.parameters()).device.type == "cuda"
        return self.execution == "vmap"

    def run_tasks(
        self,
        support_x: Tensor,
        support_y: Tensor,
        query_x: Tensor,
        steps: int,
        first_order: bool,
        every_step: bool = False,
    ) -> Tensor:
        """All tasks of a batch ([B, ...] inputs) -> [B, S, N*Q, n_way], by vmap or by a loop over tasks."""
        params, fixed = split_parameters(self.backbone)

        def one_task(sx: Tensor, sy: Tensor, qx: Tensor) -> Tensor:
            return self.adapt_and_score(params, fixed, sx, sy, qx, steps, first_order, every_step)

        if self.uses_vmap():
            with task_scope(self.backbone), written_out_batch_norm(self.backbone):
                return vmap(one_task, randomness="different")(support_x, support_y, query_x)
        scores = []
        for sx, sy, qx in zip(support_x, support_y, query_x, strict=True):
            with task_scope(self.backbone):
                scores.append(one_task(sx, sy, qx))
        return torch.stack(scores)

    # --- the protocol --------------------------------------------------------------------------
    def meta_loss(self, batch: TaskBatch) -> tuple[Tensor, dict[str, float]]:
        """Query loss after `inner_steps` steps, differentiable w.r.t. the initialisation."""
        logits = self.run_tasks(batch.support_x, batch.support_y, batch.query_x, self.inner_steps, self.first_order)
        return query_loss(logits[:, -1], batch.query_y)

    def predict_tasks(self, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        """Adapt with `test_inner_steps` steps and score the queries: [B, N*Q, n_way] (no outer graph)."""
        with torch.no_grad():  # torch.func.grad still computes the inner gradients
            return self.run_tasks(support_x, support_y, query_x, self.test_inner_steps, first_order=True)[:, -1]

    def adaptation_logits(
        self, support_x: Tensor, support_y: Tensor, query_x: Tensor, steps: int | None = None
    ) -> Tensor:
        """[B, steps+1, N*Q, n_way]: before adaptation and after each of `steps` (default test_inner_steps)."""
        steps = self.test_inner_steps if steps is None else steps
        with torch.no_grad():
            return self.run_tasks(support_x, support_y, query_x, steps, first_order=True, every_step=True)


class FOMAML(MAML):
    """First-order MAML: inner gradients detached; meta-gradient = query gradient at the adapted weights."""

    name = "fomaml"

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
        execution: str = "auto",
        meta_dropout: str = "none",
        meta_dropout_options: dict | None = None,
    ) -> None:
        super().__init__(
            n_way,
            in_channels,
            image_size,
            width,
            bn,
            inner_lr,
            inner_steps,
            test_inner_steps,
            first_order=True,
            execution=execution,
            meta_dropout=meta_dropout,
            meta_dropout_options=meta_dropout_options,
        )
        del self.hparams["first_order"]
