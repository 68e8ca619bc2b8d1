"""Reptile (Nichol, Achiam & Schulman 2018): move the initialisation towards the weights each task adapts to.

For every task of a meta-batch, train a copy of the shared weights theta for k steps of SGD or Adam on
the task's images (no graph is kept), arriving at phi_i. Then move theta part of the way towards them:

    phi_i = theta after k inner steps on task i
    theta <- theta + epsilon * mean_i (phi_i - theta)

No query loss and no second derivatives. The step is plain SGD with learning rate epsilon (`outer_lr`)
on the "gradient" theta - mean_i phi_i, with epsilon annealed linearly to 0 as in the official code, so
the one trainer (`mlscratch.training.fit`) runs Reptile like any other learner. With k = 1 SGD step,
phi_i - theta = -alpha grad L_i(theta): Reptile is then joint training on all tasks. With k >= 2 a Taylor
expansion adds a term that rewards gradients of different mini-batches of a task that agree (chapter 07).

Training tasks: Reptile has no support/query split, so ALL images of a training task (support and
query) are inner-loop data, in mini-batches of `inner_batch` (shots=1, queries=9: the official 10
images per class). Test tasks: like MAML, `test_inner_steps` full-batch steps on the support set, then
the queries are scored. transductive=True: queries are normalised by BatchNorm with their own batch's
statistics (the paper's headline numbers); False: with the support set's, so each query is scored alone.

The inner Adam's second moments (inner_state="carried", the official code's behaviour): the official code
resets only the weights between tasks, so Adam's moments carry on across training tasks and iterations, and
tasks run one after another. At test each task starts from the moments training left, which are restored
afterwards. inner_state="fresh": they start from zero on every task (the contrast chapter 07 draws).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError, TrainingDiverged
from ..inner_loop import Params, UpdateRule, adam, adapt, per_task, sgd, split_parameters
from ..tasks import TaskBatch
from .maml import MAML, output_size

INNER_OPTIMIZERS = ("sgd", "adam")
INNER_STATES = ("carried", "fresh")


def minibatch_order(tasks: int, images: int, steps: int, size: int | None, device: torch.device) -> Tensor:
    """The images each inner step trains on: indices [tasks, steps, size] into each task's `images` images.

    As in the official code: shuffle, cut into mini-batches of `size`, shuffle again when the images run
    out (so no image repeats before all were seen). size=None: every step takes all the images.
    """
    if size is None:
        return torch.arange(images, device=device).expand(tasks, steps, images)
    passes = math.ceil(steps * size / images)
    shuffled = torch.rand(tasks, passes, images, device=device).argsort(-1).flatten(1)
    return shuffled[:, : steps * size].reshape(tasks, steps, size)


class Reptile(MAML):
    """Reptile on Conv4 (or any backbone). The defaults are the official 5-way 1-shot Omniglot settings:
    Adam without momentum (lr 0.001), 5 inner steps on mini-batches of 10, 50 steps at test time;
    with `outer_lr` = epsilon = 1.0 (the recipe's), annealed to 0.
    """

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
        for name, value, choices in (("inner_optimizer", inner_optimizer, INNER_OPTIMIZERS),
                                     ("inner_state", inner_state, INNER_STATES)):
            if value not in choices:
                raise ConfigError(f"unknown {name}={value!r}; use one of {', '.join(choices)}")
        if not isinstance(inner_steps, int) or inner_steps < 1:
            raise ConfigError(
                f"Reptile needs inner_steps >= 1 (0 steps: phi = theta, nothing to learn), got {inner_steps!r}"
            )
        if inner_batch is not None and (not isinstance(inner_batch, int) or inner_batch < 1):
            raise ConfigError(f"inner_batch must be a positive integer or None (all images), got {inner_batch!r}")
        super().__init__(
            n_way=n_way,
            in_channels=in_channels,
            image_size=image_size,
            width=width,
            bn="transductive" if transductive else "support",
            inner_lr=inner_lr,
            inner_steps=inner_steps,
            test_inner_steps=test_inner_steps,
            first_order=True,
            execution=execution,
            backbone=backbone,
        )
        self.save_hyperparameters(ignore=("backbone",))  # Reptile's own settings replace MAML's in self.hparams
        if backbone is not None:
            self.hparams["backbone"] = "custom"
            self.n_way = output_size(backbone) or n_way
        self.carried = inner_optimizer == "adam" and inner_state == "carried"  # then tasks run one after another
        if self.carried:  # Adam's second moments and step count, carried across tasks (saved with the weights)
            size = sum(p.numel() for p in split_parameters(self.backbone)[0].values())
            self.register_buffer("inner_adam_v", torch.zeros(size))
            self.register_buffer("inner_adam_t", torch.zeros((), dtype=torch.long))

    def update_rule(self) -> UpdateRule:
        """SGD, or Adam without momentum (beta1 = 0, as officially; so its first moment is just the gradient).
        Adam's second moments start from those training left ("carried") or from zero ("fresh")."""
        if self.inner_optimizer == "sgd":
            return sgd(self.inner_lr)
        self.adam_state = {"t": 0, "m": {}, "v": {}}
        if self.carried:
            theta, _ = split_parameters(self.backbone)
            moments = self.inner_adam_v.split([p.numel() for p in theta.values()])
            self.adam_state["v"] = {name: v.view_as(p) for (name, p), v in zip(theta.items(), moments, strict=True)}
            self.adam_state["t"] = int(self.inner_adam_t)
        return adam(self.inner_lr, betas=(0.0, 0.999), state=self.adam_state)

    def carry_inner_state(self) -> None:
        """Keep the moments one training task left, for the next task (the official code's Adam)."""
        if self.carried:
            self.inner_adam_v.copy_(torch.cat([v.flatten() for v in self.adam_state["v"].values()]))
            self.inner_adam_t.fill_(self.adam_state["t"])

    # --- the outer loop: theta <- theta + epsilon * mean_i (phi_i - theta) ------------------------
    def configure_optimizer(
        self, outer_lr: float, iterations: int
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        """SGD with learning rate epsilon = outer_lr, annealed linearly to 0 over `iterations`."""
        if not outer_lr > 0:
            raise ConfigError(f"Reptile's step size epsilon (outer_lr) must be positive, got {outer_lr}; paper: 1.0")
        optimizer = torch.optim.SGD(self.parameters(), lr=outer_lr)
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 1 - i / max(iterations, 1))

    def train_task(self, x: Tensor, y: Tensor, order: Tensor) -> Tensor:
        """One training task: x [M, C, H, W], y [M], order [steps, size] (step s trains on x[order[s]]).

        -> [P + 2]: the adapted weights phi flattened (P numbers), then phi's loss and accuracy on all of x.
        """
        theta, fixed = split_parameters(self.backbone)
        batches = iter(order)

        def minibatch_loss(params: Params) -> Tensor:  # each call (one inner step) takes the next mini-batch
            index = next(batches)
            return F.cross_entropy(self.logits(params, fixed, x[index]), y[index])

        phi = adapt(minibatch_loss, theta, self.inner_steps, self.update_rule(), first_order=True)
        self.carry_inner_state()
        logits = self.logits(phi, fixed, x)
        fit = torch.stack([F.cross_entropy(logits, y), (logits.argmax(-1) == y).to(x.dtype).mean()])
        return torch.cat([*(p.flatten() for p in phi.values()), fit])

    def outer_step(
        self, batch: TaskBatch, optimizer: torch.optim.Optimizer, clip_grad: float | None = None
    ) -> dict[str, float]:
        """Adapt to every task, set p.grad = theta - mean_i phi_i, and take the SGD step of size epsilon.

        Metrics: "loss" and "accuracy" of the adapted weights on their own task's images (a training fit).
        """
        self.check_ways(batch.support_y)
        x = torch.cat([batch.support_x, batch.query_x], 1)  # every image of a task: [B, M, C, H, W]
        y = torch.cat([batch.support_y, batch.query_y], 1)  # [B, M]
        order = minibatch_order(*y.shape, self.inner_steps, self.inner_batch, y.device)  # [B, steps, size]
        execution = "loop" if self.carried else self.resolved_execution()
        with torch.no_grad():  # first order: no graph (torch.func.grad still computes the inner gradients)
            results = per_task(self.train_task, x, y, order, model=self, execution=execution)
        mean_phi, (loss, accuracy) = results[:, :-2].mean(0), results[:, -2:].mean(0).tolist()
        if not math.isfinite(loss):
            raise TrainingDiverged(f"the inner-loop loss became {loss}; lower inner_lr or outer_lr (epsilon)")
        theta, _ = split_parameters(self.backbone)
        optimizer.zero_grad(set_to_none=True)
        for p, phi in zip(theta.values(), mean_phi.split([p.numel() for p in theta.values()]), strict=True):
            p.grad = p.detach() - phi.view_as(p)
        if clip_grad is not None:
            torch.nn.utils.clip_grad_norm_(self.parameters(), clip_grad)
        optimizer.step()
        return {"loss": loss, "accuracy": accuracy}
