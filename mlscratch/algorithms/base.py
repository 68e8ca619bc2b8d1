"""The one protocol every meta-learning algorithm follows.

A learner writes how it scores ONE task; the base class does the rest:

    class MyLearner(MetaLearner):
        name = "mine"
        def __init__(self, n_way: int = 5, width: int = 64) -> None:
            super().__init__()
            self.save_hyperparameters()          # self.hparams = {"n_way": 5, "width": 64}, and attributes
            ...
        def score_task(self, support_x, support_y, query_x):   # [N*K, C, H, W], [N*K], [N*Q, C, H, W]
            return logits                                       # [N*Q, N]

From `score_task` the base class gives:
- `predict(support_x, support_y, query_x)`: logits for one task or a batch of tasks (no outer graph);
- `meta_loss(batch)`: the query cross-entropy over a batch of tasks, differentiable;
- `outer_step(batch, optimizer)`: one meta-update (default: Adam on `meta_loss`); override it when the
  outer update is not a gradient step on a loss (Reptile), and `configure_optimizer` to change the
  optimizer or add a learning-rate schedule;
- batching: every task of a batch runs through `score_task` by a loop or by `vmap` (`execution`).
"""

from __future__ import annotations

import inspect
import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError, TrainingDiverged
from ..inner_loop import EXECUTIONS, per_task
from ..tasks import TaskBatch


def query_loss(logits: Tensor, query_y: Tensor) -> tuple[Tensor, dict[str, float]]:
    """Mean cross-entropy over all queries of all tasks, and metrics.

    logits: [B, N*Q, N]  query_y: [B, N*Q]  ->  (loss, {"loss": float, "accuracy": fraction in [0, 1]})
    """
    loss = F.cross_entropy(logits.flatten(0, 1), query_y.flatten())
    accuracy = (logits.argmax(-1) == query_y).float().mean()
    return loss, {"loss": loss.item(), "accuracy": accuracy.item()}


class MetaLearner(nn.Module):
    """Base class: see the module docstring."""

    name: ClassVar[str] = ""  # registry name, e.g. "maml"
    fixed: ClassVar[dict[str, Any]] = {}  # hyperparameters a variant pins (FOMAML: first_order=True)
    supports_vmap: ClassVar[bool] = True  # False: tasks always run in a loop
    n_way: int | None = None  # size of a fixed output layer; None: any number of ways
    execution: str = "auto"

    # --- hyperparameters, written once ---------------------------------------------------------
    def save_hyperparameters(self, ignore: tuple[str, ...] = ()) -> None:
        """Record the calling `__init__`'s arguments in `self.hparams` (what a checkpoint rebuilds the learner
        from) and set each as an attribute, like d2l's helper of the same name."""
        frame = inspect.currentframe().f_back
        code = frame.f_code
        names = code.co_varnames[1 : code.co_argcount + code.co_kwonlyargcount]
        values = {name: frame.f_locals[name] for name in names if name not in ignore}
        for name, value in values.items():
            setattr(self, name, value)
        self.hparams = {name: value for name, value in values.items() if name not in self.fixed}

    @classmethod
    def hyperparameters(cls) -> dict[str, Any]:
        """The settings `build(name, ...)` accepts, with their defaults."""
        for klass in cls.__mro__:
            parameters = inspect.signature(klass.__init__).parameters
            named = {
                name: p.default
                for name, p in parameters.items()
                if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            }
            if named:
                return {name: default for name, default in named.items() if name not in cls.fixed}
        return {}

    # --- the one method a learner writes -------------------------------------------------------
    def score_task(self, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        """One task: support_x [N*K, C, H, W], support_y [N*K], query_x [N*Q, C, H, W] -> logits [N*Q, N]."""
        raise NotImplementedError

    # --- what the base class builds from it ----------------------------------------------------
    def resolved_execution(self, support_x: Tensor | None = None, query_x: Tensor | None = None) -> str:
        """ "loop" or "vmap" for a batch of tasks (support_x [B, N*K, ...], query_x [B, N*Q, ...]).

        "auto": vmap on a CUDA GPU. On a CPU, vmap only for meta-training on many small tasks (at least 16 tasks of
        at most 12 images, e.g. 5-way 1-shot with 1 query per class), where batching the tiny convolutions beats the
        per-task overhead (second order: up to 1.5x; first order: a tie at one inner step, 8-20% at five);
        otherwise the loop, whose per-task activations stay in cache (benchmarks/bench_execution.py measures where
        the two cross). Without the batch: the loop on a CPU.
        The choice and why are kept in `self.execution_reason`, e.g. "vmap: cpu, 32 tasks x 10 images, ...".
        """
        if self.execution not in (*EXECUTIONS, "auto"):
            raise ConfigError(f"unknown execution={self.execution!r}; use auto, loop or vmap")
        parameter = next(self.parameters(), None)
        device = parameter.device.type if parameter is not None else "cpu"
        if not self.supports_vmap:
            choice, reason = "loop", f"{self.name or type(self).__name__} runs its tasks one by one"
        elif self.execution != "auto":
            choice, reason = self.execution, f"execution={self.execution!r} was asked for"
        elif device == "cuda":
            choice, reason = "vmap", "cuda, batching tasks pays"
        elif device != "cpu" or support_x is None or query_x is None:
            choice, reason = "loop", f"{device}, the default without task sizes or a measured rule"
        else:
            tasks, images = support_x.shape[0], support_x.shape[1] + query_x.shape[1]
            training = torch.is_grad_enabled()
            choice = "vmap" if training and tasks >= 16 and images <= 12 else "loop"
            reason = f"cpu, {tasks} tasks x {images} images, " + ("meta-training" if training else "no outer graph")
        self.execution_reason = f"{choice}: {reason}"
        return choice

    def check_ways(self, support_y: Tensor) -> None:
        """A fixed output layer must have one output per class of the task."""
        if self.n_way is not None:
            ways = int(support_y.max()) + 1
            if ways != self.n_way:
                raise ConfigError(
                    f"{self.name} has a {self.n_way}-way output layer but the tasks are {ways}-way; "
                    f"sample {self.n_way}-way tasks or build the learner with n_way={ways}"
                )

    def run_tasks(self, support_x: Tensor, support_y: Tensor, query_x: Tensor, fn: Any = None) -> Tensor:
        """fn (default `score_task`) on every task of a batch ([B, ...] inputs) -> [B, ...]."""
        self.check_ways(support_y)
        execution = self.resolved_execution(support_x, query_x)  # "auto" picks by the batch's size
        return per_task(fn or self.score_task, support_x, support_y, query_x, model=self, execution=execution)

    def predict(self, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        """Adapt to the support set and score the queries as at meta-test time (eval mode, no outer graph).

        One task (support_x [N*K, C, H, W] -> logits [N*Q, N]) or a batch ([B, N*K, C, H, W] -> [B, N*Q, N]).
        """
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                if support_x.dim() == 4:
                    return self.run_tasks(support_x[None], support_y[None], query_x[None])[0]
                return self.run_tasks(support_x, support_y, query_x)
        finally:
            self.train(was_training)

    def meta_loss(self, batch: TaskBatch) -> tuple[Tensor, dict[str, float]]:
        """Query cross-entropy of `score_task` over the batch, differentiable w.r.t. every parameter."""
        return query_loss(self.run_tasks(batch.support_x, batch.support_y, batch.query_x), batch.query_y)

    # --- the outer loop ------------------------------------------------------------------------
    def configure_optimizer(
        self, outer_lr: float, iterations: int
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
        """The outer optimizer and an optional learning-rate schedule (stepped once per iteration)."""
        return torch.optim.Adam(self.parameters(), lr=outer_lr), None

    def outer_step(
        self, batch: TaskBatch, optimizer: torch.optim.Optimizer, clip_grad: float | None = None
    ) -> dict[str, float]:
        """One meta-update on a batch of tasks; returns its metrics ("loss", "accuracy", ...)."""
        loss, metrics = self.meta_loss(batch)
        if not math.isfinite(loss.item()):
            raise TrainingDiverged(
                f"meta-loss became {loss.item()}; lower the learning rates (outer_lr / inner_lr) or set clip_grad"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip_grad is not None:
            torch.nn.utils.clip_grad_norm_(self.parameters(), clip_grad)
        optimizer.step()
        return metrics
