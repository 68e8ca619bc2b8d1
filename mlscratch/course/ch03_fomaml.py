"""Chapter 03, first-order MAML: how far its meta-gradient is from the exact one, and the exercises' checks."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from IPython.display import Markdown
from matplotlib.figure import Figure
from torch import Tensor, nn
from torch.func import functional_call

from .. import zoo
from ..tasks import TaskBatch
from .ch02_maml import meta_gradient, reference_inner_loop, toy_problem
from .checks import all_close, attempt, say

# What the chapter uses from the course's shared modules, so that it imports the course from this one module.
from .notebook import load_data, report, setup, train_and_evaluate  # noqa: F401
from .plots import plot_history  # noqa: F401
from .widgets import Panel

# ====================================================================================================
# first-order against exact meta-gradients
# ====================================================================================================

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


# ====================================================================================================
# exercise checks
# ====================================================================================================


def reference_first_order_gradient(model: nn.Module, task: tuple, lr: float, steps: int) -> list[Tensor]:
    """FOMAML's meta-gradient of one task: the query gradient at the adapted weights, inner steps without a graph."""
    sx, sy, qx, qy = task
    params = {name: w.detach() for name, w in model.named_parameters()}
    for _ in range(steps):
        params = {name: w.requires_grad_() for name, w in params.items()}
        grads = torch.autograd.grad(F.cross_entropy(functional_call(model, params, (sx,)), sy), list(params.values()))
        params = {name: (w - lr * g).detach() for (name, w), g in zip(params.items(), grads, strict=True)}
    params = {name: w.requires_grad_() for name, w in params.items()}
    return list(torch.autograd.grad(F.cross_entropy(functional_call(model, params, (qx,)), qy), list(params.values())))


def check_first_order_gradient(first_order_gradient: Callable | None) -> bool:
    """first_order_gradient(model, (support_x, support_y, query_x, query_y), lr, steps) -> list of tensors."""
    hint = "Adapt without create_graph (detach the adapted weights), then take the query loss's gradient there."
    model, task = toy_problem()
    answered, result = attempt("first_order_gradient", first_order_gradient, hint, model, task, 0.5, 2)
    if not answered:
        return False
    expected = reference_first_order_gradient(model, task, 0.5, 2)
    if all_close([torch.as_tensor(r).detach() for r in result], expected):
        return say(True, "the first-order meta-gradient: the query gradient at the adapted weights")
    exact = meta_gradient(model, reference_inner_loop, task, 0.5, 2)
    if all_close([torch.as_tensor(r).detach() for r in result], exact):
        return say(False, "that is the exact (second-order) meta-gradient: drop the graph of the inner steps")
    return say(False, "not the first-order meta-gradient: differentiate the query loss at the adapted weights")


def check_cosine_limit(cosine: float | None) -> bool:
    """The cosine between first-order and exact meta-gradient as the inner learning rate goes to 0."""
    if cosine is None:
        return say(
            False,
            "cosine limit: not answered yet. What is left of g_MAML - g_FO = -alpha H g + O(alpha^2) at alpha = 0?",
        )
    if abs(cosine - 1.0) > 1e-6:
        return say(False, f"{cosine:g}: the difference between the two gradients is O(alpha), so it vanishes")
    return say(True, "1: the Hessian term is O(alpha), so both gradients coincide as alpha -> 0")


def check_paired_difference(paired_difference: Callable | None) -> bool:
    """paired_difference(a, b) -> (mean, ci95) of a - b for per-task accuracies a, b [n] on the same tasks."""
    hint = "d = a - b task by task; return d.mean() and 1.96 * d.std() / sqrt(n)."
    generator = torch.Generator().manual_seed(0)
    common = torch.rand(200, generator=generator, dtype=torch.float64) * 40 + 60  # tasks differ a lot in difficulty
    a = common + torch.randn(200, generator=generator, dtype=torch.float64)
    b = common + 0.5 + torch.randn(200, generator=generator, dtype=torch.float64)
    answered, result = attempt("paired_difference", paired_difference, hint, a, b)
    if not answered:
        return False
    mean, ci95 = (float(x) for x in result)
    d = a - b
    expected = d.mean().item(), 1.96 * d.std().item() / math.sqrt(len(d))
    if abs(mean - expected[0]) > 1e-6:
        return say(False, f"the mean difference should be {expected[0]:.3f}")
    unpaired = 1.96 * math.sqrt(a.var().item() / len(a) + b.var().item() / len(b))
    if abs(ci95 - unpaired) < 1e-6:
        return say(False, f"that CI ({ci95:.2f}) ignores the pairing: use the spread of the differences")
    if abs(ci95 - expected[1]) > 1e-6:
        return say(False, f"the CI should be {expected[1]:.3f}: 1.96 * std(a - b) / sqrt(n)")
    return say(True, f"paired: {mean:.2f} ± {ci95:.2f}, {unpaired / ci95:.0f}x narrower than from two separate CIs")


def observations(
    *, records: dict, zoo_gap: tuple[float, float] | None, trained_cosine: float | None, inner_lr: float,
    cosine_tasks: int, cosine: float, cosines: object, costs: dict, cost_steps: list[int], iterations: int,
    live_gap: tuple[float, float], speedup: float,
) -> Markdown:  # fmt: skip
    """'What to observe' as sentences with this run's numbers: the compared models first, with their configuration."""
    lines = []
    if zoo_gap is not None:
        maml, fomaml = records["maml-5w1s"], records["fomaml-5w1s"]
        lines.append(f"- **Zoo** (Conv4 width 64, α = 0.4, 1 inner step in training, 3 at test): maml-5w1s "
                     f"({maml['iteration']:,} iterations) {maml['result']['accuracy']:.2f}% vs fomaml-5w1s "
                     f"({fomaml['iteration']:,} iterations) {fomaml['result']['accuracy']:.2f}%, paired difference "
                     f"{zoo_gap[0]:+.2f} ± {zoo_gap[1]:.2f}.")  # fmt: skip
        steps = {name: zoo.step_accuracies(record) for name, record in records.items()}
        if all(curve is not None for curve in steps.values()):
            lines.append(
                "- **Not the test-time steps:** accuracy after 1, 2, 3, 4, 5 inner steps at test (records, 600 "
                "tasks): "
                + "; ".join(
                    f"{name} " + " / ".join(f"{a:.2f}" for a in curve.mean(0)[1:]) for name, curve in steps.items()
                )
                + ". Two more steps than the recipe's 3 move either model by a fifth of a point or less."
            )
    if trained_cosine is not None:
        lines.append(f"- **Cosine** between FOMAML's and MAML's meta-gradient at the trained maml-5w1s (width 64, "
                     f"α = {inner_lr}, 1 step, {cosine_tasks} training tasks): {trained_cosine:.2f}.")  # fmt: skip
    lines.append(f"- **Check on a small untrained float64 network** (width 8, 2 inner steps, 2 tasks, α = {inner_lr}): "
                 f"cosine {cosine:.3f}; it rises to {cosines.curves[1][0]:.2f} at α = {cosines.sweep[0]:g} (1 step) "
                 "and falls with larger α and more steps.")  # fmt: skip
    for steps in cost_steps:
        (maml_time, maml_memory), (fo_time, fo_memory) = costs["maml", steps], costs["fomaml", steps]
        lines.append(f"- **{steps} inner step(s):** FOMAML {maml_time / fo_time:.2f}x as fast, "
                     f"{100 * (1 - fo_memory / maml_memory):.0f}% less peak memory.")  # fmt: skip
    lines.append(f"- **Live** ({iterations} iterations): paired difference {live_gap[0]:+.2f} ± {live_gap[1]:.2f} "
                 f"points; FOMAML {speedup:.2f}x as fast.")  # fmt: skip
    return Markdown("\n".join(lines))
