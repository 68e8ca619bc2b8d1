"""Pictures of metric learners (chapter 06): one task's embedding with its prototypes and decision regions,
and Matching Networks' attention over one task's support set.

    plot_prototypes(protonet, support_x, support_y, query_x, query_y)   # 2-D view: prototypes, regions, queries
    plot_attention(matching, support_x, support_y, query_x, query_y)    # which support image each query reads
    prototype_explorer(protonet, splits)                                 # live: ways, shots, task seed

Why a plane shows it exactly for up to 3 ways: every prototype lies in their affine hull A (N - 1 dimensions),
so ||h - c_k||^2 = ||P_A h - c_k||^2 + ||h - P_A h||^2, and the second term is the same for every class. The
decision depends only on the query's projection onto A; for N <= 3 the plane below contains A. For more
ways the plane is the best-fitting one through the prototypes (their PCA), and a query's off-plane part
can move it across a drawn boundary.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import Tensor

from ..algorithms.base import MetaLearner
from ..algorithms.protonet import prototypes
from .checks import attempt, say

# What the chapter uses from the course's shared modules, so that it imports the course from this one module.
from .notebook import describe_splits, load_data, report, setup  # noqa: F401
from .plots import plot_history  # noqa: F401
from .viz import show_image


def prototype_plane(centres: Tensor, points: Tensor) -> tuple[Tensor, Tensor]:
    """origin [D] and two orthonormal directions [2, D]: the plane through the prototypes' mean that fits them
    best (their PCA). With 2 prototypes, the line through them plus the main direction of the other points."""
    origin = centres.mean(0)
    directions = torch.linalg.svd(centres - origin, full_matrices=False).Vh[: len(centres) - 1]
    if len(directions) < 2:
        residual = points - origin
        residual = residual - residual @ directions.T @ directions  # what the line does not explain
        directions = torch.cat([directions, torch.linalg.svd(residual, full_matrices=False).Vh[:1]])
    return origin, directions[:2]


def plot_prototypes(
    learner: MetaLearner,
    support_x: Tensor,
    support_y: Tensor,
    query_x: Tensor,
    query_y: Tensor,
    ax: plt.Axes | None = None,
    resolution: int = 150,
) -> Figure:
    """One task in the embedding: support points (squares), prototypes (stars), queries (dots, a black ring when
    misclassified) projected on `prototype_plane`, over the learner's decision regions on that plane.

    learner: a ProtoNet (`embed` and `score`). support_x [N*K, C, H, W], query_x [N*Q, C, H, W], labels 0..N-1.
    """
    learner.eval()
    with torch.no_grad():
        h_support, h_query = learner.embed(support_x, query_x)
        centres = prototypes(h_support, support_y)
        predicted = learner.score(h_query, centres).argmax(-1)
        origin, directions = prototype_plane(centres, torch.cat([h_support, h_query]))
        flat = {name: (h - origin) @ directions.T for name, h in (("s", h_support), ("c", centres), ("q", h_query))}
        everything = torch.cat(list(flat.values()))
        low, high = everything.min(0).values, everything.max(0).values
        margin = 0.15 * (high - low)
        u = torch.linspace(low[0] - margin[0], high[0] + margin[0], resolution)
        v = torch.linspace(low[1] - margin[1], high[1] + margin[1], resolution)
        grid = torch.stack(torch.meshgrid(u, v, indexing="xy"), -1).reshape(-1, 2)  # [R*R, 2], points of the plane
        regions = learner.score(origin + grid @ directions, centres).argmax(-1).reshape(resolution, resolution)
    flat = {name: points.cpu().numpy() for name, points in flat.items()}  # matplotlib wants numpy arrays
    support_y, query_y, predicted = support_y.cpu().numpy(), query_y.cpu().numpy(), predicted.cpu().numpy()
    n_way = len(centres)
    colours = plt.get_cmap("tab10")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 4.6))
    ax.imshow(
        regions.cpu().numpy(),
        origin="lower",
        extent=(u[0].item(), u[-1].item(), v[0].item(), v[-1].item()),
        cmap=plt.matplotlib.colors.ListedColormap([colours(c % 10) for c in range(n_way)]),
        vmin=-0.5,
        vmax=n_way - 0.5,
        alpha=0.22,
        aspect="auto",
        interpolation="nearest",
    )
    wrong = predicted != query_y  # numpy: [N*Q] bool
    for c in range(n_way):
        colour = colours(c % 10)
        q = flat["q"][query_y == c]
        ax.scatter(q[:, 0], q[:, 1], s=22, color=colour, alpha=0.8, label=f"class {c}")
        s = flat["s"][support_y == c]
        ax.scatter(s[:, 0], s[:, 1], s=60, marker="s", color=colour, edgecolors="black", linewidths=0.6)
        ax.scatter(*flat["c"][c], s=260, marker="*", color=colour, edgecolors="black", linewidths=1.2, zorder=3)
    ax.scatter(flat["q"][wrong, 0], flat["q"][wrong, 1], s=70, facecolors="none", edgecolors="black", linewidths=1.2)
    shots = len(support_y) // n_way
    exact = "exact" if n_way <= 3 else "PCA of the prototypes"
    ax.set_title(
        f"{n_way}-way {shots}-shot: {100 * (1 - wrong.mean()):.0f}% of {len(query_y)} queries "
        f"right ({int(wrong.sum())} ringed)\nplane: {exact}; stars: prototypes, squares: support",
        fontsize=9,
    )
    ax.set(xlabel="direction 1", ylabel="direction 2")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.figure.tight_layout()
    return ax.figure


def plot_attention(
    learner: MetaLearner,
    support_x: Tensor,
    support_y: Tensor,
    query_x: Tensor,
    query_y: Tensor,
    per_class: int = 2,
) -> Figure:
    """A Matching Network's attention a(query, support) for `per_class` queries of each class: support images
    across the top, queries down the left, each row's weights (summing to 1) and P(predicted class) on the right.

    learner: a MatchingNetwork (`embed` and `attention`). Shapes as for `plot_prototypes`.
    """
    learner.eval()
    chosen = torch.cat([torch.nonzero(query_y == c)[:per_class, 0] for c in range(int(support_y.max()) + 1)])
    with torch.no_grad():
        g_support, f_query = learner.embed(support_x, query_x)
        attention = learner.attention(f_query, g_support)[chosen]  # [rows, n]
        probabilities = learner.predict(support_x, support_y, query_x)[chosen].exp()  # [rows, N]
    rows, n = attention.shape
    figure = plt.figure(figsize=(0.7 * (n + 3), 0.62 * (rows + 1.6)))
    grid = figure.add_gridspec(rows + 1, n + 2, width_ratios=[1] * (n + 1) + [1.8], hspace=0.08, wspace=0.08)
    for j in range(n):
        show_image(figure.add_subplot(grid[0, j + 1]), support_x[j], f"label {int(support_y[j])}")
    heat = figure.add_subplot(grid[1:, 1 : n + 1])
    heat.imshow(attention.cpu().numpy(), cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i in range(rows):
        for j in range(n):
            value = attention[i, j].item()
            ink = "white" if value > 0.5 else "black"
            heat.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color=ink)
        show_image(figure.add_subplot(grid[i + 1, 0]), query_x[chosen[i]])
        guess = int(probabilities[i].argmax())
        verdict = "right" if guess == int(query_y[chosen[i]]) else "WRONG"
        side = figure.add_subplot(grid[i + 1, n + 1])
        side.axis("off")
        side.text(0.05, 0.5, f"P({guess}) = {probabilities[i, guess]:.2f}\n{verdict}", va="center", fontsize=7)
    heat.set_xticks([])
    heat.set_yticks([])
    figure.suptitle("attention over the support set (each row sums to 1)", fontsize=9)
    return figure


def draw_prototype_task(
    learner: MetaLearner, splits: dict, n_way: int, k_shot: int, seed: int, split: str = "test", k_query: int = 5
) -> tuple[Figure, str]:
    """compute() of the explorer: one task of `splits[split]` drawn with `seed`, in `learner`'s embedding."""
    from ..tasks import TaskSampler

    device = next(learner.parameters()).device
    task = TaskSampler(splits[split], n_way, k_shot, k_query, batch_size=1, seed=seed, device=device).sample()
    figure = plot_prototypes(learner, *(t[0] for t in task))
    return figure, f"{split} task, seed {seed}: {n_way * k_shot} support and {n_way * k_query} query images"


def prototype_explorer(learner: MetaLearner, splits: dict, n_way: int = 3, k_shot: int = 1, seed: int = 0):
    """A live panel on a trained ProtoNet: change ways, shots or the task seed and the picture redraws."""
    from .widgets import panel

    return panel(
        partial(draw_prototype_task, learner, splits),
        n_way=(2, 10, n_way),
        k_shot=(1, 10, k_shot),
        seed=(0, 200, seed),
        split=["test", "val", "train"],
        title="Prototypes explorer: a trained ProtoNet's embedding of one task",
    )


__all__ = ["draw_prototype_task", "plot_attention", "plot_prototypes", "prototype_explorer", "prototype_plane"]


# --- exercise checks ----------------------------------------------------------------------------------------


def check_prototypes(prototypes_of: Callable | None) -> bool:
    """prototypes_of(embeddings [N*K, D], labels [N*K]) -> class means [N, D], class c in row c."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.tensor([2, 0, 1, 0, 2, 1, 1, 0, 2])  # three classes, three shots, shuffled
    embeddings = torch.randn(9, 4, generator=generator, dtype=torch.float64)
    answered, result = attempt(
        "prototypes_of", prototypes_of, "Average the embeddings of each class.", embeddings, labels
    )
    if not answered:
        return False
    expected = torch.stack([embeddings[labels == c].mean(0) for c in range(3)])
    result = torch.as_tensor(result, dtype=torch.float64)
    if result.shape != expected.shape:
        return say(False, f"expected shape {tuple(expected.shape)} (one row per class), got {tuple(result.shape)}")
    if torch.allclose(result, torch.stack([embeddings[3 * c : 3 * c + 3].mean(0) for c in range(3)])):
        return say(False, "that averages consecutive rows: select each class by its labels, they are shuffled")
    if not torch.allclose(result, expected):
        return say(False, "not the class means: row c should be the mean of the embeddings labelled c")
    return say(True, "the prototypes: one mean embedding per class, the Bregman-optimal centre of its support set")


def check_linear_head(linear_head: Callable | None) -> bool:
    """linear_head(prototypes [N, D]) -> (W [N, D], b [N]) with W h + b == -||h - c||^2 + ||h||^2 for every h."""
    centres = torch.tensor([[1.0, 2.0], [-1.0, 0.5], [0.0, -2.0]], dtype=torch.float64)
    answered, result = attempt("linear_head", linear_head, "Expand -||h - c||^2 and drop the term without c.", centres)
    if not answered:
        return False
    weight, bias = (torch.as_tensor(t, dtype=torch.float64) for t in result)
    if torch.allclose(weight, centres) and torch.allclose(bias, -(centres**2).sum(-1) / 2):
        return say(False, "that is half of it (W = c, b = -||c||^2 / 2): the same decisions, half the logits")
    if not (torch.allclose(weight, 2 * centres) and torch.allclose(bias, -(centres**2).sum(-1))):
        return say(False, "-||h - c||^2 = 2 c.h - ||c||^2 - ||h||^2: read W and b off the terms that depend on c")
    return say(True, "W = 2c, b = -||c||^2: a ProtoNet is a linear classifier on its embedding")


def check_cosine_ceiling(probability: float | None) -> bool:
    """The largest probability a 5-way softmax over cosine similarities (scale 1) can give the right class."""
    best = math.e / (math.e + 4 / math.e)  # right class at cos = 1, the four others at cos = -1
    if probability is None:
        return say(
            False, "cosine ceiling: not answered yet. Cosines lie in [-1, 1]: put the right one at 1, the rest at -1."
        )
    if abs(probability - 1.0) < 1e-6:
        return say(False, "a softmax of bounded logits never reaches 1: cosines lie in [-1, 1]")
    if abs(probability - best) > 1e-3:
        return say(False, f"{probability:g}: e^1 / (e^1 + 4 e^-1) is the best case")
    return say(True, f"{best:.3f}: a cosine softmax cannot be confident without a scale (1/temperature) on the logits")
