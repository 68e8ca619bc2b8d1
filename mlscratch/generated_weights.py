"""The generated-weights explorer: a trained embedding-based Meta Network writes a task's class weights in one
forward pass; beside it, MAML adapts to the same task by gradient steps.

    panel = weights_explorer(zoo.load("metanet-embedding-5w1s"), splits, maml=zoo.load("maml-5w1s"))

Each change of ways, shots or task seed draws a test task and shows its support set, the class weights
w_c = mean_i(U h_i + e) the network writes for it ([N, E], one row per class), and the mean predicted
probability of each class for the queries of each true class (a soft confusion matrix), with the accuracy and
the milliseconds each learner needed. No training: it answers in well under a second on a CPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor, nn

from .explorer import adaptation_curve, support_strip, task_sliders
from .tasks import TaskBatch, TaskSampler
from .widgets import Panel


@dataclass
class GeneratedWeights:
    """One task through the embedding-based Meta Network."""

    weights: Tensor  # class weights w_c, [N, E]
    probabilities: Tensor  # query softmax, [N*Q, N]
    accuracy: float  # percent
    milliseconds: float


def generate(net: nn.Module, task: TaskBatch) -> GeneratedWeights:
    """Task 0 of `task` through `net` (a MetaNetEmbedding), in eval mode and without a graph."""
    sx, sy, qx, qy = (t[0] for t in task)
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            tic = time.perf_counter()
            h_support, h_query = net.embed(sx, qx)
            weights = net.class_weights(h_support, sy)  # [N, E]: the "adaptation", one average
            logits = net.V(h_query) @ weights.T  # [N*Q, N]
            milliseconds = 1000 * (time.perf_counter() - tic)
    finally:
        net.train(was_training)
    accuracy = (logits.argmax(-1) == qy).float().mean().item() * 100
    return GeneratedWeights(weights.cpu(), logits.softmax(-1).cpu(), accuracy, milliseconds)


def soft_confusion(probabilities: Tensor, query_y: Tensor) -> Tensor:
    """Mean predicted probability of class j for the queries of true class i: [N*Q, N], [N*Q] -> [N, N]."""
    one_hot = F.one_hot(query_y.cpu(), probabilities.shape[1]).float()  # [N*Q, N]
    return (one_hot.T @ probabilities) / one_hot.sum(0)[:, None]


def draw_generated(task: TaskBatch, generated: GeneratedWeights) -> Figure:
    """Support set (top); the written class weights and the soft confusion matrix (bottom)."""
    figure = plt.figure(figsize=(11, 5.2))
    grid = figure.add_gridspec(2, 2, height_ratios=[1, 3.2], hspace=0.35, wspace=0.25, width_ratios=[1.6, 1])
    support_strip(figure.add_subplot(grid[0, :]), task)
    weights_ax, confusion_ax = figure.add_subplot(grid[1, 0]), figure.add_subplot(grid[1, 1])
    image = weights_ax.imshow(generated.weights.numpy(), aspect="auto", cmap="RdBu_r")
    figure.colorbar(image, ax=weights_ax, fraction=0.04)
    weights_ax.set(xlabel="embedding coordinate", ylabel="class", title="class weights written for this task, $w_c$")
    confusion = soft_confusion(generated.probabilities, task.query_y[0])
    confusion_ax.imshow(confusion.numpy(), vmin=0, vmax=1, cmap="Greens")
    confusion_ax.set(xlabel="predicted class", ylabel="true class", title="mean query probability")
    for ax in (weights_ax, confusion_ax):
        ax.yaxis.get_major_locator().set_params(integer=True)
    return figure


@dataclass
class WeightsExplorer:
    """compute() of the panel: the trained network, an optional MAML to compare, and where tasks come from."""

    net: nn.Module
    classes: object  # ClassImages of the split the tasks come from
    k_query: int
    maml: nn.Module | None = None
    maml_steps: int = 3
    warmed: bool = False

    def __call__(self, n_way: int, k_shot: int, seed: int) -> tuple[Figure, str]:
        device = next(self.net.parameters()).device
        task = TaskSampler(self.classes, n_way, k_shot, self.k_query, 1, seed=seed, device=device).sample()
        if not self.warmed:  # the first call of a model pays one-off costs: time the second
            self.warmed = True
            self(n_way, k_shot, seed)
        generated = generate(self.net, task)
        lines = [
            f"{n_way}-way {k_shot}-shot test task (seed {seed}), {self.k_query} queries per class",
            f"embedding Meta Network: {generated.accuracy:.0f}%, weights written in {generated.milliseconds:.1f} ms "
            "(one forward pass, no gradient)",
        ]
        if self.maml is not None:
            tic = time.perf_counter()
            curve = adaptation_curve(self.maml, task, self.maml.inner_lr, self.maml_steps)
            milliseconds = 1000 * (time.perf_counter() - tic)  # includes scoring the queries after every step
            lines.append(
                f"MAML on the same task: {curve.accuracy[-1]:.0f}% after {self.maml_steps} SGD steps "
                f"({curve.accuracy[0]:.0f}% before), {milliseconds:.0f} ms with a query pass after every step"
            )
        return draw_generated(task, generated), "\n".join(lines)


def weights_explorer(
    net: nn.Module,
    splits: dict,
    *,
    maml: nn.Module | None = None,
    split: str = "test",
    n_way: int = 5,
    k_shot: int = 1,
    k_query: int = 5,
    seed: int = 0,
    run_now: bool = True,
) -> Panel:
    """A live panel on a trained embedding-based Meta Network (and MAML beside it): ways, shots and task seed."""
    classes = splits[split]
    controls = task_sliders(classes, k_query, n_way, k_shot, seed, max_ways=20)
    compute = WeightsExplorer(net, classes, k_query, maml)
    return Panel(compute, controls, title=f"Weights written for one {split} task", run_now=run_now)


__all__ = ["GeneratedWeights", "WeightsExplorer", "draw_generated", "generate", "soft_confusion", "weights_explorer"]
