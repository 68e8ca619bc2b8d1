"""MAML's parameter-space picture (Finn et al. 2017, Figure 1), computed rather than sketched.

Three tasks with quadratic losses in a 2-D weight space, L_i(theta) = 1/2 (theta - c_i)^T A_i (theta - c_i), each with
its own optimum c_i and curvature A_i. Two initialisations:

- pretrained: the minimiser of sum_i L_i(theta) (what "train on all tasks, then fine-tune" starts from);
- MAML:       the minimiser of sum_i L_i(theta_i'), with theta_i' = theta - alpha grad L_i(theta) (one SGD step).

`plot_parameter_space()` draws each task's loss contours, both initialisations and the arrow of one inner step from
each to every task's adapted weights theta_i'. `parameter_space()` returns the numbers behind the picture.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import Tensor

COLOURS = ("tab:blue", "tab:orange", "tab:green")


@dataclass
class QuadraticTasks:
    """optima c [T, 2] and curvatures A [T, 2, 2] (symmetric positive definite)."""

    optima: Tensor
    curvatures: Tensor

    def loss(self, theta: Tensor) -> Tensor:
        """theta [..., T, 2] (one point per task) -> L_i [..., T]."""
        d = theta - self.optima
        return 0.5 * torch.einsum("...ti,tij,...tj->...t", d, self.curvatures, d)

    def step(self, theta: Tensor, alpha: float) -> Tensor:
        """One SGD step of every task from theta [2]: theta_i' [T, 2]."""
        return theta - alpha * torch.einsum("tij,tj->ti", self.curvatures, theta - self.optima)


def default_tasks() -> QuadraticTasks:
    """Three tasks with different curvatures, at the corners of a triangle."""
    optima = torch.tensor([[-2.0, 1.5], [2.5, 2.0], [0.5, -2.5]], dtype=torch.float64)

    def curvature(a: float, b: float, angle: float) -> Tensor:
        c, s = torch.cos(torch.tensor(angle)), torch.sin(torch.tensor(angle))
        rotation = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
        return rotation @ torch.diag(torch.tensor([a, b], dtype=torch.float64)) @ rotation.T

    return QuadraticTasks(
        optima, torch.stack([curvature(1.7, 0.6, 0.4), curvature(1.5, 0.5, -0.8), curvature(0.8, 0.4, 0.0)])
    )


@dataclass
class ParameterSpace:
    """The numbers behind the picture. Distances are from each task's adapted weights to that task's optimum."""

    tasks: QuadraticTasks
    alpha: float
    pretrained: Tensor  # [2]
    maml: Tensor  # [2]
    pretrained_adapted: Tensor  # [T, 2]
    maml_adapted: Tensor  # [T, 2]

    def loss_after_step(self, theta: Tensor) -> float:
        """Mean task loss after one inner step from theta: the quantity MAML minimises."""
        return self.tasks.loss(self.tasks.step(theta, self.alpha)).mean().item()


def weighted_centre(curvatures: Tensor, optima: Tensor) -> Tensor:
    """argmin_theta sum_i 1/2 (theta - c_i)^T B_i (theta - c_i) = (sum_i B_i)^-1 sum_i B_i c_i."""
    return torch.linalg.solve(curvatures.sum(0), torch.einsum("tij,tj->i", curvatures, optima))


def parameter_space(tasks: QuadraticTasks | None = None, alpha: float = 0.5) -> ParameterSpace:
    """Both initialisations, in closed form.

    pretrained: sum_i A_i (theta - c_i) = 0. MAML: theta_i' - c_i = (I - alpha A_i)(theta - c_i), so the loss after
    the step is quadratic again, with curvature B_i = (I - alpha A_i) A_i (I - alpha A_i): MAML's theta is the same
    kind of weighted centre, with each task weighted by how much curvature is left after its inner step.
    """
    tasks = tasks or default_tasks()
    eye = torch.eye(2, dtype=tasks.curvatures.dtype)
    after_step = (eye - alpha * tasks.curvatures) @ tasks.curvatures @ (eye - alpha * tasks.curvatures)
    pretrained = weighted_centre(tasks.curvatures, tasks.optima)
    maml = weighted_centre(after_step, tasks.optima)
    return ParameterSpace(tasks, alpha, pretrained, maml, tasks.step(pretrained, alpha), tasks.step(maml, alpha))


def plot_parameter_space(space: ParameterSpace | None = None, ax: plt.Axes | None = None) -> Figure:
    """Contours of each task's loss, the two initialisations, and one inner step from each to every task."""
    space = space or parameter_space()
    figure, ax = plt.subplots(figsize=(7.8, 5.2)) if ax is None else (ax.figure, ax)
    grid = torch.linspace(-4.5, 4.5, 121, dtype=torch.float64)
    x, y = torch.meshgrid(grid, grid, indexing="xy")
    points = torch.stack([x, y], -1)[..., None, :].expand(*x.shape, len(space.tasks.optima), 2)
    losses = space.tasks.loss(points)  # [121, 121, T]
    for t, colour in enumerate(COLOURS[: len(space.tasks.optima)]):
        ax.contour(x, y, losses[..., t], levels=[0.25, 1, 2.5, 5], colors=colour, alpha=0.35, linewidths=1)
        ax.plot(*space.tasks.optima[t], "*", color=colour, markersize=14, label=f"optimum of task {t + 1}")
    for start, adapted, marker, name in (
        (space.pretrained, space.pretrained_adapted, "s", "pretrained"),
        (space.maml, space.maml_adapted, "o", "MAML"),
    ):
        ax.plot(*start, marker, color="black" if name == "MAML" else "grey", markersize=10, label=f"θ {name}")
        for t, colour in enumerate(COLOURS[: len(adapted)]):
            ax.annotate(
                "",
                adapted[t].tolist(),
                start.tolist(),
                arrowprops={"arrowstyle": "->", "color": colour, "linestyle": "-" if name == "MAML" else ":"},
            )
            ax.plot(*adapted[t], marker, color=colour, markersize=5, alpha=0.8)
    ax.set(
        xlim=(-4.5, 4.5),
        ylim=(-4.5, 4.5),
        aspect="equal",
        xlabel="weight 1",
        ylabel="weight 2",
        title=f"one inner step (α = {space.alpha}) from each θ to every task's θᵢ'",
    )
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    figure.tight_layout()
    return figure
