"""The sinusoid regression toy of the MAML paper (Finn et al. 2017, section 5.1), small enough to train in seconds.

A task is a sine wave y = A sin(x - phi), with amplitude A in [0.1, 5] and phase phi in [0, pi]; x is drawn
uniformly from [-5, 5]. The learner sees K points of one wave (the support set) and must predict the whole wave
after a few gradient steps. The network: 1 -> 40 -> 40 -> 1, ReLU; the loss: mean squared error.

    maml = train_maml(iterations=2000)                      # learn an initialisation
    baseline = train_pretrained(iterations=2000)            # "pretrain on all tasks, then fine-tune"
    curves = fine_tune_curves({"MAML": maml, "pretrained": baseline}, steps=10)   # MSE after each step
    plot_fits({"MAML": maml, "pretrained": baseline}, steps=(0, 1, 10))

The baseline regresses on points of all tasks at once; since the phases and amplitudes cancel on average, the best
single function it can find is close to y = 0, and a few steps of fine-tuning from there barely move it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

AMPLITUDE = (0.1, 5.0)
PHASE = (0.0, math.pi)
X_RANGE = (-5.0, 5.0)
Params = dict[str, Tensor]


@dataclass
class Waves:
    """B sine waves: amplitude [B] and phase [B]."""

    amplitude: Tensor
    phase: Tensor

    def __call__(self, x: Tensor) -> Tensor:
        """x [B, M, 1] -> y [B, M, 1]."""
        return self.amplitude[:, None, None] * torch.sin(x - self.phase[:, None, None])

    def points(self, k: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """k random points of each wave: x, y [B, k, 1]."""
        low, high = X_RANGE
        x = low + (high - low) * torch.rand(len(self.amplitude), k, 1, generator=generator)
        return x, self(x)


def sample_waves(n: int, generator: torch.Generator) -> Waves:
    """n random tasks of the paper's distribution."""
    amplitude = AMPLITUDE[0] + (AMPLITUDE[1] - AMPLITUDE[0]) * torch.rand(n, generator=generator)
    phase = PHASE[0] + (PHASE[1] - PHASE[0]) * torch.rand(n, generator=generator)
    return Waves(amplitude, phase)


def mlp(hidden: int = 40, seed: int = 0) -> nn.Sequential:
    """The paper's regressor: x [M, 1] -> y [M, 1] with two hidden ReLU layers."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))


def mse(model: nn.Module, params: Params, x: Tensor, y: Tensor) -> Tensor:
    """Mean squared error of the model with weights `params` on x, y [M, 1]."""
    return (functional_call(model, params, (x,)) - y).square().mean()


def adapt(model: nn.Module, params: Params, x: Tensor, y: Tensor, lr: float, steps: int) -> list[Params]:
    """Plain SGD on one task's support points: the weights before and after each of `steps` steps (differentiable)."""
    path = [params]
    for _ in range(steps):
        grads = grad(mse, argnums=1)(model, path[-1], x, y)
        path.append({name: w - lr * grads[name] for name, w in path[-1].items()})
    return path


def train_maml(
    iterations: int = 2000,
    meta_batch: int = 25,
    k: int = 10,
    inner_lr: float = 0.01,
    inner_steps: int = 1,
    outer_lr: float = 1e-3,
    seed: int = 0,
) -> tuple[nn.Module, list[float]]:
    """MAML on sine waves (the paper's settings, fewer iterations): (model, query MSE after adaptation per iteration).

    Each iteration: `meta_batch` waves, K support and K query points each, `inner_steps` SGD steps on the support
    points, Adam on the mean query MSE of the adapted weights. The tasks of a batch run together under vmap.
    """
    model = mlp(seed=seed)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=outer_lr)

    def query_loss(params: Params, sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor) -> Tensor:
        return mse(model, adapt(model, params, sx, sy, inner_lr, inner_steps)[-1], qx, qy)

    losses = []
    for _ in range(iterations):
        waves = sample_waves(meta_batch, generator)
        (sx, sy), (qx, qy) = waves.points(k, generator), waves.points(k, generator)
        params = dict(model.named_parameters())
        loss = vmap(query_loss, in_dims=(None, 0, 0, 0, 0))(params, sx, sy, qx, qy).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return model, losses


def train_pretrained(
    iterations: int = 2000, meta_batch: int = 25, k: int = 10, lr: float = 1e-3, seed: int = 0
) -> tuple[nn.Module, list[float]]:
    """The baseline: one regressor trained with Adam on points of many waves at once (no adaptation in training).

    Same waves, points, budget and initial weights as `train_maml`; returns (model, MSE per iteration).
    """
    model = mlp(seed=seed)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(iterations):
        waves = sample_waves(meta_batch, generator)
        (sx, sy), (qx, qy) = waves.points(k, generator), waves.points(k, generator)
        x, y = torch.cat([sx, qx], 1).flatten(0, 1), torch.cat([sy, qy], 1).flatten(0, 1)
        loss = (model(x) - y).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return model, losses


@dataclass
class FineTuneCurve:
    """MSE on a dense grid of each test wave before (index 0) and after each fine-tuning step.

    mse [n_tasks, steps+1]: one row per test wave; the same waves and support points for every model.
    """

    mse: Tensor

    @property
    def mean(self) -> Tensor:
        return self.mse.mean(0)

    @property
    def ci95(self) -> Tensor:
        return 1.96 * self.mse.std(0) / math.sqrt(len(self.mse))


def evaluation_waves(n_tasks: int, k: int, seed: int) -> tuple[Waves, Tensor, Tensor]:
    """Fixed test waves and their K support points: (waves, x [n, K, 1], y [n, K, 1])."""
    generator = torch.Generator().manual_seed(10_000 + seed)
    waves = sample_waves(n_tasks, generator)
    return waves, *waves.points(k, generator)


def fine_tune_curves(
    models: dict[str, nn.Module], n_tasks: int = 200, k: int = 10, lr: float = 0.01, steps: int = 10, seed: int = 0
) -> dict[str, FineTuneCurve]:
    """Each model fine-tuned by SGD (lr, `steps` steps) on K points of the same `n_tasks` test waves.

    The error is measured on 100 evenly spaced x in [-5, 5], i.e. on the whole wave, not only near the K points.
    """
    waves, sx, sy = evaluation_waves(n_tasks, k, seed)
    grid = torch.linspace(*X_RANGE, 100).expand(n_tasks, 100)[..., None]
    truth = waves(grid)
    curves = {}
    for name, model in models.items():

        def errors(sx: Tensor, sy: Tensor, x: Tensor, y: Tensor, model: nn.Module = model) -> Tensor:
            path = adapt(model, dict(model.named_parameters()), sx, sy, lr, steps)
            return torch.stack([mse(model, p, x, y) for p in path])

        with torch.no_grad():
            curves[name] = FineTuneCurve(vmap(errors)(sx, sy, grid, truth))
    return curves


def plot_fits(
    models: dict[str, nn.Module],
    task: int = 0,
    k: int = 10,
    lr: float = 0.01,
    steps: tuple[int, ...] = (0, 1, 10),
    seed: int = 0,
) -> Figure:
    """One test wave, its K support points, and each model's prediction after the given numbers of SGD steps."""
    waves, sx, sy = evaluation_waves(task + 1, k, seed)
    sx, sy = sx[task], sy[task]
    x = torch.linspace(*X_RANGE, 200)[:, None]
    truth = Waves(waves.amplitude[task : task + 1], waves.phase[task : task + 1])(x[None])[0]
    figure, axes = plt.subplots(1, len(models), figsize=(5.2 * len(models), 3.4), squeeze=False, sharey=True)
    for ax, (name, model) in zip(axes[0], models.items(), strict=True):
        path = adapt(model, dict(model.named_parameters()), sx, sy, lr, max(steps))
        ax.plot(x, truth, color="black", linewidth=2, label="true wave")
        for s, alpha in zip(steps, torch.linspace(0.35, 1.0, len(steps)).tolist(), strict=True):
            with torch.no_grad():
                ax.plot(x, functional_call(model, path[s], (x,)), color="tab:blue", alpha=alpha, label=f"{s} steps")
        ax.plot(sx, sy, "^", color="tab:red", markersize=8, label=f"{k} support points")
        ax.set(title=f"{name}: fine-tuned on {k} points (lr {lr})", xlabel="x")
        ax.legend(fontsize=7, loc="lower right")
    axes[0, 0].set_ylabel("y")
    figure.tight_layout()
    return figure


def plot_curves(curves: dict[str, FineTuneCurve], ax: plt.Axes | None = None) -> Figure:
    """Mean MSE on the test waves (95% CI band) against the number of fine-tuning steps, one line per model."""
    figure, ax = plt.subplots(figsize=(5, 3.4)) if ax is None else (ax.figure, ax)
    for name, curve in curves.items():
        steps = torch.arange(len(curve.mean))
        ax.plot(steps, curve.mean, "o-", label=name)
        ax.fill_between(steps, curve.mean - curve.ci95, curve.mean + curve.ci95, alpha=0.2)
    ax.set(xlabel="SGD steps on the K points", ylabel="MSE on the whole wave", title="fine-tuning on new waves")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend()
    figure.tight_layout()
    return figure
