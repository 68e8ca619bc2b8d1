"""Pictures for chapter 07 (Reptile, ProtoMAML, Meta-SGD), and its live panel.

- `plot_reptile_toy()`: Reptile on three 2-D quadratic tasks: the inner SGD paths, the Reptile step
  against the joint-training gradient, and where meta-training ends for 1 and for k inner steps.
- `plot_learning_rates(learner)`: Meta-SGD's learned per-weight learning rates, per layer and as a picture
  of the first convolution's 3x3 filters.
- `accuracy_curve(learner, tasks, n_tasks, steps)`: accuracy before and after each of `steps` test inner steps.
- `first_order_panel(splits)`: train Reptile, ProtoMAML or Meta-SGD for a few iterations and see the result.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from ..evaluation import EvaluationResult, evaluate
from ..tasks import TaskSampler
from .checks import attempt, say

# --- Reptile on a 2-D toy: three quadratic tasks -------------------------------------------------------
# What the chapter uses from the course's shared modules, so that it imports the course from this one module.
from .notebook import load_data, notice, report, setup, train_and_evaluate  # noqa: F401
from .plots import plot_history, plot_inner_steps  # noqa: F401
from .widgets import Panel, experiment_figure


def toy_tasks() -> tuple[Tensor, Tensor]:
    """Three tasks L_i(theta) = 1/2 (theta - c_i)^T A_i (theta - c_i): centres c [3, 2], curvatures A [3, 2, 2].

    Tasks 1 and 2 are steep one way (eigenvalue 3) and nearly flat the other (0.1), at right angles; task 3 is a
    gentle bowl (0.5). Joint training weighs each task by its curvature, so the flat directions count little.
    """
    centres = torch.tensor([[-2.0, 1.0], [2.0, 1.5], [0.5, -2.0]], dtype=torch.float64)
    eigenvalues = torch.tensor([[3.0, 0.1], [0.1, 3.0], [0.5, 0.5]], dtype=torch.float64)
    return centres, torch.diag_embed(eigenvalues)


def inner_path(theta: Tensor, centre: Tensor, hessian: Tensor, lr: float, steps: int) -> Tensor:
    """`steps` SGD steps on one task from theta [2]: the points visited [steps + 1, 2] (the last one is phi)."""
    path = [theta]
    for _ in range(steps):
        path.append(path[-1] - lr * hessian @ (path[-1] - centre))
    return torch.stack(path)


def reptile_path(theta: Tensor, lr: float, steps: int, epsilon: float, iterations: int) -> Tensor:
    """Reptile with all three toy tasks in every meta-batch: theta after each meta-iteration [iterations + 1, 2]."""
    centres, hessians = toy_tasks()
    path = [theta]
    for _ in range(iterations):
        phis = torch.stack([inner_path(path[-1], c, h, lr, steps)[-1] for c, h in zip(centres, hessians, strict=True)])
        path.append(path[-1] + epsilon * (phis.mean(0) - path[-1]))
    return torch.stack(path)


def joint_minimum() -> Tensor:
    """argmin of mean_i L_i: (sum_i A_i)^-1 sum_i A_i c_i, where joint training (and 1-step Reptile) ends."""
    centres, hessians = toy_tasks()
    return torch.linalg.solve(hessians.sum(0), (hessians @ centres[..., None]).sum(0))[:, 0]


def plot_reptile_toy(
    lr: float = 0.3,
    inner_steps: int = 5,
    compare: tuple[int, ...] = (1, 3, 30),
    epsilon: float = 0.5,
    iterations: int = 60,
):
    """Left: from one theta, each task's `inner_steps` SGD steps (to phi_i), the Reptile step towards mean phi_i and
    a joint-training gradient step. Right: meta-training paths of theta with each number of inner steps in `compare`."""
    centres, hessians = toy_tasks()
    theta = torch.tensor([-0.5, 3.0], dtype=torch.float64)
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6))
    grid = torch.stack(torch.meshgrid(torch.linspace(-3.5, 3.5, 120), torch.linspace(-3, 4, 120), indexing="xy"), -1)
    colours = ["tab:blue", "tab:orange", "tab:green"]
    for ax in (left, right):
        for i, (c, h) in enumerate(zip(centres, hessians, strict=True)):
            d = grid.double() - c
            loss = 0.5 * torch.einsum("...i,ij,...j->...", d, h, d)
            ax.contour(grid[..., 0], grid[..., 1], loss, levels=[0.25, 1, 3], colors=colours[i], alpha=0.35)
            ax.plot(*c, "*", color=colours[i], markersize=12)
        ax.set(xlim=(-3.5, 3.5), ylim=(-3, 4), aspect="equal")
    k = inner_steps
    phis = []
    for i, (c, h) in enumerate(zip(centres, hessians, strict=True)):
        path = inner_path(theta, c, h, lr, k)
        left.plot(path[:, 0], path[:, 1], ".-", color=colours[i], markersize=4, label=f"task {i + 1}: {k} SGD steps")
        phis.append(path[-1])
    mean_phi = torch.stack(phis).mean(0)
    joint_gradient = torch.stack([h @ (theta - c) for c, h in zip(centres, hessians, strict=True)]).mean(0)
    arrow = {"width": 0.04, "length_includes_head": True}
    left.arrow(*theta, *(epsilon * (mean_phi - theta)), color="black", **arrow, label=f"Reptile step (eps={epsilon})")
    left.arrow(*theta, *(-epsilon * lr * joint_gradient), color="red", **arrow, label="joint-training step")
    left.plot(*theta, "ko")
    left.set_title("one meta-iteration from theta (black dot)")
    left.legend(fontsize=7, loc="lower left")
    for k, colour in zip(compare, plt.cm.viridis(np.linspace(0, 0.85, len(compare))), strict=True):
        path = reptile_path(theta, lr, k, epsilon, iterations)
        right.plot(path[:, 0], path[:, 1], ".-", color=colour, markersize=3, label=f"Reptile, {k} inner step(s)")
    right.plot(*joint_minimum(), "rx", markersize=10, mew=2, label="joint-training minimum")
    right.plot(*centres.mean(0), "k+", markersize=12, mew=2, label="mean of the task optima")
    right.set_title(f"{iterations} meta-iterations: where Reptile ends")
    right.legend(fontsize=7, loc="lower left")
    figure.tight_layout()
    return figure


# --- Meta-SGD's learned learning rates -------------------------------------------------------------------


def tile_filters(rates: Tensor) -> np.ndarray:
    """[C_out, C_in, h, w] -> one image of the C_out filters (mean over C_in) in a square grid, NaN between them."""
    filters = rates.detach().float().mean(1).cpu()  # [C_out, h, w]
    count, h, w = filters.shape
    side = math.ceil(math.sqrt(count))
    image = np.full((side * (h + 1) - 1, side * (w + 1) - 1), np.nan)
    for index, f in enumerate(filters):
        row, col = divmod(index, side)
        image[row * (h + 1) : row * (h + 1) + h, col * (w + 1) : col * (w + 1) + w] = f.numpy()
    return image


def plot_learning_rates(learner: torch.nn.Module, initial: float | None = None):
    """Meta-SGD's rates: their spread per weight tensor (box 25-75%, whiskers 5-95%) against the initial rate,
    and the first convolution's rates as 3x3 pictures (one per filter). `learner` has `learning_rates` (MetaSGD).
    The y axis shows zero only when some rate reached it, so that a small spread stays visible."""
    initial = learner.inner_lr if initial is None else initial
    names = list(learner.learning_rates)
    values = [learner.learning_rates[n].detach().flatten().float().cpu().numpy() for n in names]
    figure, (spread, picture) = plt.subplots(1, 2, figsize=(13, 4), gridspec_kw={"width_ratios": [2.2, 1]})
    spread.boxplot(values, whis=(5, 95), showfliers=False)
    spread.axhline(initial, color="red", linestyle="--", label=f"initial rate {initial:g}")
    if min(v.min() for v in values) <= 0:
        spread.axhline(0, color="grey", linewidth=0.8)
    spread.set_xticks(range(1, len(names) + 1), [n.replace("blocks_", "b").replace("_", ".") for n in names])
    spread.tick_params(axis="x", rotation=70, labelsize=7)
    spread.set(
        ylabel="learned learning rate", title="per-weight learning rates, per tensor (box 25-75%, whiskers 5-95%)"
    )
    spread.legend()
    first_conv = next(n for n in names if n.endswith("conv_weight"))
    image = tile_filters(learner.learning_rates[first_conv])
    limit = max(np.nanmax(np.abs(image - initial)), 1e-6)  # untrained rates all equal the initial one
    shown = picture.imshow(image, cmap="coolwarm", vmin=initial - limit, vmax=initial + limit)
    picture.set_title(f"{first_conv}: one 3x3 tile per filter")
    picture.axis("off")
    figure.colorbar(shown, ax=picture, fraction=0.046, label="rate (white = initial)")
    figure.tight_layout()
    return figure


# --- accuracy against test inner steps ------------------------------------------------------------------


def accuracy_curve(learner: torch.nn.Module, tasks: TaskSampler, n_tasks: int, steps: int) -> EvaluationResult:
    """Accuracy on the first `n_tasks` tasks of `tasks` before adaptation and after each of `steps` inner steps.

    `evaluate(..., steps=s)` also scores the learner's own `test_inner_steps` in the same pass, with a query pass
    after every step (Reptile: 50); here the pass stops at `steps`, so `.accuracy` is the accuracy after `steps`
    steps and `.step_accuracies` has steps + 1 entries. steps=0 gives the accuracy before adaptation.
    """
    own = learner.test_inner_steps
    learner.test_inner_steps = steps
    try:
        return evaluate(learner, tasks, n_tasks, steps=steps)
    finally:
        learner.test_inner_steps = own


# --- the chapter's live panel -----------------------------------------------------------------------------

# Each algorithm's own outer settings: Reptile's epsilon is its outer_lr; it trains on 10 images per class.
PANEL_SETTINGS = {
    "reptile": {"outer_lr": 1.0, "train_queries": 9, "meta_batch": 5},
    "protomaml": {"outer_lr": 1e-3, "train_queries": 1, "meta_batch": 8},
    "metasgd": {"outer_lr": 1e-3, "train_queries": 1, "meta_batch": 8},
}


def train_one(
    splits: dict, algo: str, inner_steps: int, test_inner_steps: int, n_way: int, k_shot: int, **settings: object
) -> tuple[object, str]:
    """compute() of `first_order_panel`: train `algo` briefly with its own outer settings -> (figure, summary)."""
    experiment = train_and_evaluate(
        splits,
        algo,
        n_way=n_way,
        k_shot=k_shot,
        inner_steps=inner_steps,
        test_inner_steps=test_inner_steps,
        **{**PANEL_SETTINGS[algo], **settings},
    )
    return experiment_figure(experiment), experiment.summary()


def first_order_panel(splits: dict, *, iterations: int = 30, eval_tasks: int = 50, **settings: object) -> Panel:
    """Chapter 07: pick an algorithm, its inner steps (training and test), the ways and shots; Run trains it."""
    controls = {
        "algo": list(PANEL_SETTINGS),
        "inner_steps": (1, 10, 1),
        "test_inner_steps": (1, 50, 5),
        "n_way": (2, 20, 5),
        "k_shot": (1, 10, 1),
    }
    return Panel(
        partial(train_one, splits, iterations=iterations, eval_tasks=eval_tasks, **settings),
        controls,
        button="Train and evaluate",
        title=f"train {iterations} iterations, evaluate on {eval_tasks} test tasks",
        run_now=False,
    )


# --- exercise checks ----------------------------------------------------------------------------------------


def check_reptile_step(reptile_step: Callable | None) -> bool:
    """reptile_step(theta [P], phis [T, P], epsilon) -> theta + epsilon * mean_i (phi_i - theta)."""
    generator = torch.Generator().manual_seed(0)
    theta = torch.randn(6, generator=generator, dtype=torch.float64)
    phis = theta + torch.randn(4, 6, generator=generator, dtype=torch.float64)
    answered, result = attempt("reptile_step", reptile_step, "Average phi_i - theta over the tasks.", theta, phis, 0.3)
    if not answered:
        return False
    result = torch.as_tensor(result, dtype=torch.float64)
    expected = theta + 0.3 * (phis - theta).mean(0)
    if torch.allclose(result, phis.mean(0)):
        return say(False, "that jumps to the mean of the phis (epsilon = 1); move only a fraction epsilon of the way")
    if torch.allclose(result, theta - 0.3 * (phis - theta).mean(0)):
        return say(False, "wrong direction: Reptile moves theta *towards* the adapted weights")
    if not torch.allclose(result, expected):
        return say(False, "not theta + epsilon * mean_i (phi_i - theta)")
    return say(True, "theta + epsilon * mean_i (phi_i - theta): no query loss, no second derivatives")


def check_metasgd_step(metasgd_step: Callable | None) -> bool:
    """metasgd_step(params [P], grads [P], rates [P]) -> the Meta-SGD inner step, one learned rate per weight."""
    params = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    grads = torch.tensor([0.5, 1.0, -4.0], dtype=torch.float64)
    rates = torch.tensor([0.1, 0.4, 0.02], dtype=torch.float64)
    answered, result = attempt(
        "metasgd_step", metasgd_step, "Multiply each gradient by its own rate.", params, grads, rates
    )
    if not answered:
        return False
    result = torch.as_tensor(result, dtype=torch.float64)
    if torch.allclose(result, params - rates.mean() * grads):
        return say(False, "one mean rate for all weights is MAML's step; Meta-SGD multiplies elementwise")
    if not torch.allclose(result, params - rates * grads):
        return say(False, "expected params - rates * grads (elementwise)")
    return say(True, "params - rates * grads: direction and size of the step are both learned, per weight")


def check_expected_gradients(maml: tuple | None, fomaml: tuple | None, reptile: tuple | None) -> bool:
    """For two inner steps, each method's expected gradient as (a, b) in a * AvgGrad + b * alpha * AvgGradInner."""
    if maml is None or fomaml is None or reptile is None:
        return say(False, "expected gradients: not answered yet. Nichol et al. 2018, section 5: two inner steps.")
    answers = {"MAML": (maml, (1, -2)), "FOMAML": (fomaml, (1, -1)), "Reptile": (reptile, (2, -1))}
    wrong = [name for name, (given, right) in answers.items() if tuple(map(float, given)) != right]
    if wrong:
        return say(False, f"not right for {', '.join(wrong)}; the 2-D toy above computes all three numerically")
    return say(
        True,
        "MAML (1, -2), FOMAML (1, -1), Reptile (2, -1): all three push towards AvgGradInner, the "
        "term that rewards gradients of one task's mini-batches that agree",
    )


# --- Nichol et al.'s expected gradients for two inner steps, checked on quadratic mini-batch losses -----------


def quadratic_batches(seed: int = 0) -> list[tuple[Tensor, Tensor]]:
    """Two mini-batches of one task as quadratic losses L_i(w) = 1/2 (w - c_i)^T A_i (w - c_i): [(A_i, c_i)] in 2-D."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(2):
        m = torch.randn(2, 2, generator=generator, dtype=torch.float64)
        batches.append(
            (
                m @ m.T + 0.5 * torch.eye(2, dtype=torch.float64),
                torch.randn(2, generator=generator, dtype=torch.float64),
            )
        )
    return batches


def method_gradients(theta: Tensor, alpha: float, first: tuple, second: tuple) -> dict[str, Tensor]:
    """The three meta-gradients for one order of the mini-batches: one SGD step on `first`, then `second`.

    MAML: d/dtheta L_2(theta - alpha g_1(theta)); FOMAML: g_2 at the adapted weights; Reptile: (theta - phi) / alpha
    after two SGD steps (on L_1, then L_2)."""

    def loss(w: Tensor, batch: tuple) -> Tensor:
        a, c = batch
        return 0.5 * (w - c) @ a @ (w - c)

    def gradient(w: Tensor, batch: tuple, create_graph: bool = False) -> Tensor:
        return torch.autograd.grad(loss(w, batch), w, create_graph=create_graph)[0]

    theta = theta.clone().requires_grad_(True)
    adapted = theta - alpha * gradient(theta, first, create_graph=True)
    maml = torch.autograd.grad(loss(adapted, second), theta)[0]
    w1 = (theta - alpha * gradient(theta, first)).detach().requires_grad_(True)
    fomaml = gradient(w1, second)
    phi = w1 - alpha * fomaml
    return {"MAML": maml, "FOMAML": fomaml, "Reptile": (theta.detach() - phi) / alpha}


def expected_gradient_errors(alpha: float, seed: int = 0) -> dict[str, float]:
    """|E[g_method] - formula| for each method, the expectation over both orders of the two mini-batches.

    Formulas (Nichol et al. 2018, section 5): E[g_MAML] = AvgGrad - 2 alpha AvgGradInner, E[g_FOMAML] = AvgGrad -
    alpha AvgGradInner, E[g_Reptile] = 2 AvgGrad - alpha AvgGradInner, with AvgGrad = E[g_1(theta)] and
    AvgGradInner = E[H_2 g_1(theta)]: exact up to O(alpha^2), so the errors fall as alpha^2."""
    batches, theta = quadratic_batches(seed), torch.tensor([0.3, -0.7], dtype=torch.float64)
    orders = [(batches[0], batches[1]), (batches[1], batches[0])]
    measured = {name: torch.stack([method_gradients(theta, alpha, *o)[name] for o in orders]).mean(0)
                for name in ("MAML", "FOMAML", "Reptile")}  # fmt: skip
    avg_grad = torch.stack([a @ (theta - c) for a, c in batches]).mean(0)
    avg_grad_inner = torch.stack([second[0] @ (first[0] @ (theta - first[1])) for first, second in orders]).mean(0)
    formula = {"MAML": avg_grad - 2 * alpha * avg_grad_inner, "FOMAML": avg_grad - alpha * avg_grad_inner,
               "Reptile": 2 * avg_grad - alpha * avg_grad_inner}  # fmt: skip
    return {name: (measured[name] - formula[name]).norm().item() for name in formula}
