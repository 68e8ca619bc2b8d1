"""How far first-order MAML's meta-gradient is from the exact one, and a live panel to see it move.

    exact, first = meta_gradients(learner, batch, inner_lr=0.4, steps=1)   # flat vectors
    gradient_cosine(learner, batch, 0.4, 1)                                 # cos(exact, first) in [-1, 1]
    cosine_panel(CosineExplorer(learner, batch))                            # sliders: inner lr, inner steps

The difference is the Hessian term, -alpha H g + O(alpha^2) for one step: as the inner learning rate goes to 0 the
cosine goes to 1, and it falls as the inner steps travel further (larger alpha, more steps).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor

from .tasks import TaskBatch
from .widgets import Panel

SWEEP = (0.01, 0.03, 0.1, 0.2, 0.4, 0.7, 1.0)  # inner learning rates of the panel's curve


def meta_gradients(learner: torch.nn.Module, batch: TaskBatch, inner_lr: float, steps: int) -> tuple[Tensor, Tensor]:
    """(exact, first-order) meta-gradient of a MAML learner's meta-loss on `batch`, each flattened to [P].

    The learner's own inner_lr, inner_steps and first_order are restored afterwards.
    """
    saved = learner.inner_lr, learner.inner_steps, learner.first_order, learner.training
    learner.inner_lr, learner.inner_steps = inner_lr, steps
    learner.train()  # training mode: the meta-loss takes `inner_steps` steps
    weights = [w for w in learner.parameters() if w.requires_grad]
    try:
        grads = []
        for first_order in (False, True):
            learner.first_order = first_order
            loss, _ = learner.meta_loss(batch)
            grads.append(torch.cat([g.flatten() for g in torch.autograd.grad(loss, weights)]))
    finally:
        learner.inner_lr, learner.inner_steps, learner.first_order = saved[:3]
        learner.train(saved[3])
    return grads[0], grads[1]


def gradient_cosine(learner: torch.nn.Module, batch: TaskBatch, inner_lr: float, steps: int) -> float:
    """Cosine similarity between the first-order and the exact meta-gradient (1: same direction, 0: orthogonal)."""
    exact, first = meta_gradients(learner, batch, inner_lr, steps)
    return F.cosine_similarity(exact, first, dim=0).item()


@dataclass
class CosineExplorer:
    """compute() of the cosine panel: cached curves of cosine vs inner lr (one per step count), and the point."""

    learner: torch.nn.Module
    batch: TaskBatch
    sweep: tuple[float, ...] = SWEEP
    curves: dict[int, list[float]] = field(default_factory=dict)

    def curve(self, steps: int) -> list[float]:
        if steps not in self.curves:
            self.curves[steps] = [gradient_cosine(self.learner, self.batch, lr, steps) for lr in self.sweep]
        return self.curves[steps]

    def __call__(self, inner_lr: float, steps: int) -> tuple[Figure, str]:
        cosine = gradient_cosine(self.learner, self.batch, inner_lr, steps)
        current = self.curve(steps)
        figure, ax = plt.subplots(figsize=(6.5, 3.6))
        for other, values in sorted(self.curves.items()):
            if other != steps:
                ax.plot(self.sweep, values, "-", color="grey", alpha=0.35)
                ax.annotate(f"{other} step(s)", (self.sweep[-1], values[-1]), fontsize=7, color="grey")
        ax.plot(self.sweep, current, "o-", color="tab:blue", label=f"{steps} inner step(s)")
        ax.plot([inner_lr], [cosine], "*", color="tab:red", markersize=14, label=f"lr {inner_lr:g}: {cosine:.3f}")
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set(xscale="log", xlabel="inner learning rate α", ylabel="cos(first-order, exact)", ylim=(-1.05, 1.05))
        ax.set_title("how well the first-order meta-gradient points (faint: other step counts)", fontsize=9)
        ax.legend(fontsize=8, loc="lower left")
        figure.tight_layout()
        return figure, f"{steps} inner step(s) of lr {inner_lr:g}: cosine {cosine:.3f}"


def cosine_panel(explorer: CosineExplorer, inner_lr: float = 0.4, steps: int = 1) -> Panel:
    """Live panel: inner learning rate and steps against the cosine between first-order and exact meta-gradient.

    Pass a `CosineExplorer(learner, batch)`; curves it has already computed (`explorer.curve(steps)`) are reused.
    """
    controls = {"inner_lr": (0.01, 1.0, inner_lr, 0.01), "steps": (1, 5, steps)}
    return Panel(explorer, controls, title="First-order vs exact meta-gradient")


__all__ = ["SWEEP", "CosineExplorer", "cosine_panel", "gradient_cosine", "meta_gradients"]
