"""Chapter 02, MAML: the sine-wave toy, the parameter-space picture, and the exercises' checks."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from IPython.display import Markdown
from matplotlib.figure import Figure
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from ..evaluation import quantile95
from .checks import all_close, attempt, say

# What the chapter uses from the course's shared modules, so that it imports the course from this one module.
from .explorer import adaptation_explorer, step_accuracies  # noqa: F401
from .notebook import describe_splits, load_data, report, setup, train_and_evaluate  # noqa: F401
from .plots import plot_history  # noqa: F401
from .viz import show_task  # noqa: F401
from .widgets import maml_panel  # noqa: F401

# ====================================================================================================
# the sinusoid regression toy (Finn et al. 2017, section 5.1)
# ====================================================================================================

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


def mean_wave(x: Tensor) -> Tensor:
    """The average task wave: E[A sin(x - phi)] = -(2 / pi) E[A] cos x, phi uniform on [0, pi]; -1.62 cos x."""
    return -(2 / math.pi) * (sum(AMPLITUDE) / 2) * torch.cos(x)


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
        ax.plot(x, mean_wave(x), color="grey", linestyle="--", label="average wave")
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


# ====================================================================================================
# MAML's parameter-space picture (Finn et al. 2017, Figure 1)
# ====================================================================================================

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


# ====================================================================================================
# a fixed small problem for the exercises
# ====================================================================================================


def toy_problem(ways: int = 3, seed: int = 0) -> tuple[nn.Module, tuple[Tensor, Tensor, Tensor, Tensor]]:
    """A small tanh network in float64 and one task.

    Returns (model, (support_x [ways, 4], support_y [ways], query_x [2*ways, 4], query_y [2*ways])).
    """
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, ways)).double()
    support_x = torch.randn(ways, 4, generator=generator, dtype=torch.float64)
    query_x = torch.randn(2 * ways, 4, generator=generator, dtype=torch.float64)
    return model, (support_x, torch.arange(ways), query_x, torch.arange(ways).repeat(2))


def reference_inner_loop(model: nn.Module, params: dict, x: Tensor, y: Tensor, lr: float, steps: int) -> dict:
    """MAML's inner loop: `steps` SGD steps on the cross-entropy, keeping the graph (create_graph=True)."""
    for _ in range(steps):
        loss = F.cross_entropy(functional_call(model, params, (x,)), y)
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
        params = {name: w - lr * g for (name, w), g in zip(params.items(), grads, strict=True)}
    return params


def meta_gradient(model: nn.Module, inner_loop: Callable, task: tuple, lr: float, steps: int) -> list[Tensor]:
    sx, sy, qx, qy = task
    params = dict(model.named_parameters())
    adapted = inner_loop(model, params, sx, sy, lr, steps)
    return list(torch.autograd.grad(F.cross_entropy(functional_call(model, adapted, (qx,)), qy), list(params.values())))


# ====================================================================================================
# exercise checks
# ====================================================================================================


def check_inner_loop(inner_loop: Callable | None) -> bool:
    """inner_loop(model, params, support_x, support_y, lr, steps) -> adapted params, differentiable to second order."""
    hint = "Take `steps` SGD steps on the support cross-entropy with torch.autograd.grad(..., create_graph=True)."
    model, task = toy_problem()
    answered, adapted = attempt(
        "inner_loop", inner_loop, hint, model, dict(model.named_parameters()), *task[:2], 0.5, 2
    )
    if not answered:
        return False
    expected = reference_inner_loop(model, dict(model.named_parameters()), *task[:2], 0.5, 2)
    if not isinstance(adapted, dict) or set(adapted) != set(expected):
        return say(False, "inner_loop should return a dict with the same names as params")
    if not all_close([adapted[n].detach() for n in expected], [w.detach() for w in expected.values()]):
        return say(False, "the adapted weights are wrong: check the sign and the learning rate of the step")
    try:
        ok = all_close(
            meta_gradient(model, inner_loop, task, 0.5, 2), meta_gradient(model, reference_inner_loop, task, 0.5, 2)
        )
    except RuntimeError:
        ok = False
    if not ok:
        return say(False, "the weights are right but the meta-gradient is not second order: use create_graph=True")
    return say(True, "inner_loop adapts the weights and keeps the graph for the exact meta-gradient")


def check_hvp(hvp: Callable | None) -> bool:
    """hvp(loss_fn, weights, v) -> the Hessian of loss_fn() at `weights` times v (lists of tensors)."""
    hint = "Differentiate (grad(loss) . v) once more: torch.autograd.grad twice, the first with create_graph=True."
    model, (sx, sy, _, _) = toy_problem()
    weights = list(model.parameters())
    generator = torch.Generator().manual_seed(1)
    v = [torch.randn(w.shape, generator=generator, dtype=w.dtype) for w in weights]

    def loss_fn() -> Tensor:
        return F.cross_entropy(model(sx), sy)

    answered, result = attempt("hvp", hvp, hint, loss_fn, weights, v)
    if not answered:
        return False
    grads = torch.autograd.grad(loss_fn(), weights, create_graph=True)
    expected = torch.autograd.grad(sum((g * d).sum() for g, d in zip(grads, v, strict=True)), weights)
    if not all_close([torch.as_tensor(r).detach() for r in result], list(expected)):
        return say(
            False,
            "not the Hessian-vector product: compare with the finite difference (g(w + eps v) - g(w - eps v)) / 2 eps",
        )
    return say(True, "hvp is the exact Hessian-vector product, without ever forming the Hessian")


def check_best_eps(eps: float | None) -> bool:
    """The step of central finite differences with the smallest error in float64 (order of magnitude)."""
    if eps is None:
        return say(
            False,
            "best eps: not answered yet. Balance the truncation error (~eps^2) and the rounding error (~1e-16 / eps).",
        )
    if not 1e-7 <= eps <= 3e-5:
        reason = "truncation error ~eps^2 dominates" if eps > 3e-5 else "rounding error ~1e-16 * |L| / eps dominates"
        return say(False, f"eps = {eps:g} is too {'large' if eps > 3e-5 else 'small'}: {reason}")
    return say(True, f"eps = {eps:g}: the two errors balance near (1e-16)^(1/3) ~ 5e-6")


def check_steps_difference(mean: float | None, ci95: float | None, per_step: Tensor) -> bool:
    """Mean and 95% CI of the paired per-task difference between the last two columns of per_step [tasks, steps+1]."""
    if mean is None or ci95 is None:
        return say(
            False,
            "steps difference: not answered yet. Subtract the columns task by task, then mean and q std / sqrt(n) "
            "(q = 1.96 from 30 tasks; below, Student's t: mlscratch.evaluation.quantile95(n)).",
        )
    difference = per_step[:, -1] - per_step[:, -2]
    n = len(difference)
    expected = difference.mean().item(), quantile95(n) * difference.std().item() / math.sqrt(n)
    if abs(mean - expected[0]) > 1e-3 or abs(ci95 - expected[1]) > 1e-3:
        return say(False, f"expected {expected[0]:.3f} ± {expected[1]:.3f}: pair the steps task by task before the CI")
    return say(True, f"{mean:.3f} ± {ci95:.3f} points per extra step, paired on the same tasks")


def observations(
    *, sine_curves: dict, sine_gap: tuple[float, float], gradient_errors: tuple[list[float], list[float]],
    iterations: int, train_seconds: float, losses: tuple[float, float], live: object, live_eval_tasks: int,
    step_means: Tensor, ways: int, steps_gain: list[tuple[float, float]], record: dict | None,
) -> Markdown:  # fmt: skip
    """'What to observe' as sentences with this run's numbers (sine toy, gradient check, live run, zoo MAML)."""
    maml, pretrained = sine_curves["MAML"].mean, sine_curves["pretrained"].mean
    exact, first = gradient_errors
    (gain_1, ci_1), later = steps_gain[0], [f"{g:+.2f} ± {c:.2f}" for g, c in steps_gain[1:]]
    lines = [
        f"- **Sine waves:** after one step on 10 points MAML's MSE is {maml[1]:.2f} and the pretrained network's "
        f"{pretrained[1]:.2f} (paired gap {sine_gap[0]:.2f} ± {sine_gap[1]:.2f}); after 10 steps {maml[10]:.2f} vs "
        f"{pretrained[10]:.2f}.",
        f"- **Gradient check:** relative error of the second-order meta-gradient {max(exact):.0e} at eps = 1e-6, of "
        f"the first-order one {min(first):.0e} or more.",
        f"- **Live run:** {iterations} iterations ({train_seconds:.0f} s), query loss {losses[0]:.2f} → "
        f"{losses[1]:.2f}, test accuracy {live.accuracy:.1f} ± {live.ci95:.1f}% on {live_eval_tasks} tasks.",
        f"- **Zoo MAML:** {step_means[0]:.1f}% before adaptation (chance {100 / ways:.0f}%), step 0 → 1 gains "
        f"{gain_1:+.1f} ± {ci_1:.1f} points; the later steps: {', '.join(later) or 'not measured'}.",
    ]
    if record:
        lines.append(f"- **Zoo MAML on all 600 test tasks** (its record): {record['accuracy']:.2f} ± "
                     f"{record['ci95']:.2f}% (paper: 98.7 ± 0.4% after 60,000 iterations).")  # fmt: skip
    return Markdown("\n".join(lines))
