"""Reptile (Nichol, Achiam & Schulman 2018): move the initialisation towards the weights each task adapts to.

    phi_i = theta after k inner steps of SGD or Adam on all images of task i, in mini-batches (no graph kept)
    theta <- theta + epsilon * mean_i (phi_i - theta)       (plain SGD on theta - mean_i phi_i; epsilon -> 0)

At test: `test_inner_steps` steps on the support set. inner_state="carried" (official): the inner Adam's moments
carry on across training tasks (run one after another); test tasks start from them and leave them unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import TrainingDiverged, require, require_choice, require_count
from ..inner_loop import Params, UpdateRule, adam, adapt, flatten, per_task, sgd, split_parameters, unflatten
from ..tasks import TaskBatch, minibatch_order
from .maml import MAML, output_size

INNER_OPTIMIZERS, INNER_STATES = ("sgd", "adam"), ("carried", "fresh")


class Reptile(MAML):
    """Reptile with the official 5-way 1-shot Omniglot defaults; epsilon (`outer_lr`, 1.0 there) anneals to 0."""

    name = "reptile"
    fixed = {"first_order": True}

    def __init__(
        self,
        n_way: int = 5,
        in_channels: int = 1,
        image_size: int = 28,
        width: int = 64,
        transductive: bool = True,
        inner_optimizer: str = "adam",
        inner_lr: float = 0.001,
        inner_steps: int = 5,
        inner_batch: int | None = 10,
        test_inner_steps: int = 50,
        inner_state: str = "carried",
        execution: str = "auto",
        backbone: nn.Module | None = None,
    ) -> None:
        require_choice("inner_optimizer", inner_optimizer, INNER_OPTIMIZERS)
        require_choice("inner_state", inner_state, INNER_STATES)
        require_count("Reptile's inner_steps", inner_steps, 1, " (0 steps: phi = theta)")
        require_count("inner_batch", 1 if inner_batch is None else inner_batch, 1, " or None (all images)")
        bn = "transductive" if transductive else "support"
        super().__init__(n_way, in_channels, image_size, width, bn, inner_lr, inner_steps, test_inner_steps,
                         first_order=True, execution=execution, backbone=backbone)  # fmt: skip
        self.save_hyperparameters(ignore=("backbone",))  # Reptile's own settings replace MAML's in self.hparams
        if backbone is not None:
            self.hparams["backbone"], self.n_way = "custom", output_size(backbone) or n_way
        self.carried = inner_optimizer == "adam" and inner_state == "carried"
        if self.carried:  # Adam's second moments and step count: saved with the weights
            self.register_buffer("inner_adam_v", torch.zeros_like(flatten(self.backbone_weights())))
            self.register_buffer("inner_adam_t", torch.zeros((), dtype=torch.long))

    def backbone_weights(self) -> Params:
        return split_parameters(self.backbone)[0]

    def update_rule(self) -> UpdateRule:
        """SGD, or Adam without momentum (beta1 = 0, as officially, so its first moment is just the gradient),
        starting from the carried second moments or from zero."""
        if self.inner_optimizer == "sgd":
            return sgd(self.inner_lr)
        self.adam_state = {"t": 0, "m": {}, "v": {}}
        if self.carried:
            self.adam_state.update(t=int(self.inner_adam_t), v=unflatten(self.inner_adam_v, self.backbone_weights()))
        return adam(self.inner_lr, betas=(0.0, 0.999), state=self.adam_state)

    def configure_optimizer(self, outer_lr: float, iterations: int):
        """The outer step: SGD with learning rate epsilon = outer_lr, annealed linearly to 0 over `iterations`."""
        require(outer_lr > 0, f"Reptile's step size epsilon (outer_lr) must be positive, got {outer_lr}; paper: 1.0")
        optimizer = torch.optim.SGD(self.parameters(), lr=outer_lr)
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 1 - i / max(iterations, 1))

    def train_task(self, x: Tensor, y: Tensor, order: Tensor) -> Tensor:
        """x [M, C, H, W], y [M], order [steps, size] -> [P + 2]: phi flattened, then its loss and accuracy on x."""
        theta, fixed = split_parameters(self.backbone)
        batches = iter(order)

        def minibatch_loss(params: Params) -> Tensor:  # each inner step takes the next mini-batch
            index = next(batches)
            return F.cross_entropy(self.logits(params, fixed, x[index]), y[index])

        phi = adapt(minibatch_loss, theta, self.inner_steps, self.update_rule(), first_order=True)
        if self.carried:  # keep the moments this task left for the next one
            self.inner_adam_v.copy_(flatten(self.adam_state["v"]))
            self.inner_adam_t.fill_(self.adam_state["t"])
        logits = self.logits(phi, fixed, x)
        fit = torch.stack([F.cross_entropy(logits, y), (logits.argmax(-1) == y).to(x.dtype).mean()])
        return torch.cat([flatten(phi), fit])

    def outer_step(self, batch: TaskBatch, optimizer: torch.optim.Optimizer, clip_grad: float | None = None):
        """Adapt to every task, set p.grad = theta - mean_i phi_i, take the SGD step; metrics: the adapted fit."""
        self.check_ways(batch.support_y)
        x = torch.cat([batch.support_x, batch.query_x], 1)  # every image of a task: [B, M, C, H, W]
        y = torch.cat([batch.support_y, batch.query_y], 1)  # [B, M]
        order = minibatch_order(*y.shape, self.inner_steps, self.inner_batch, y.device)  # [B, steps, size]
        execution = "loop" if self.carried else self.resolved_execution(batch.support_x, batch.query_x)
        with torch.no_grad():  # first order: no graph (torch.func.grad still computes the inner gradients)
            results = per_task(self.train_task, x, y, order, model=self, execution=execution)
        mean_phi, (loss, accuracy) = results[:, :-2].mean(0), results[:, -2:].mean(0).tolist()
        if not math.isfinite(loss):
            raise TrainingDiverged(f"the inner-loop loss became {loss}; lower inner_lr or outer_lr (epsilon)")
        optimizer.zero_grad(set_to_none=True)
        for p, phi in zip(self.backbone_weights().values(), unflatten(mean_phi, self.backbone_weights()).values(),
                          strict=True):  # fmt: skip
            p.grad = p.detach() - phi
        if clip_grad is not None:
            torch.nn.utils.clip_grad_norm_(self.parameters(), clip_grad)
        optimizer.step()
        return {"loss": loss, "accuracy": accuracy}
