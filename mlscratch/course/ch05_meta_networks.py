"""Chapter 05, Meta Networks: the block diagram, the generated-weights explorer, the exercises' checks."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from torch import Tensor, nn

from ..tasks import TaskBatch, TaskSampler
from .ch02_maml import toy_problem
from .checks import all_close, attempt, say
from .explorer import adaptation_curve, support_strip, task_sliders

# What the chapter uses from the course's shared modules, so that it imports the course from this one module.
from .notebook import describe_splits, load_data, report, setup  # noqa: F401
from .plots import plot_history  # noqa: F401
from .widgets import (
    Panel,
    training_panel,  # noqa: F401
)

# ====================================================================================================
# the block diagram (Munkhdalai & Yu 2017, Figure 1)
# ====================================================================================================

READ = "attention read\n$a = \\mathrm{softmax}_i \\cos(u, r_i)$\n$W^* = \\sum_i a_i W^*_i$"
SLOW_FAST = "base learner, slow + fast:\n$\\mathrm{ReLU}(Wh) + \\mathrm{ReLU}(W^*h)$\n$\\to$ logits"

# name: (centre x, centre y, text, colour). Colours: data grey, slow networks blue, generators orange,
# generated (fast) weights green, the query's path purple.
BOXES: dict[str, tuple[float, float, str, str]] = {
    "support": (1.2, 5.0, "support set\n$(x_i, y_i)$, $i = 1..NK$", "0.85"),
    "base": (5.2, 6.4, "base learner $b$\nslow weights $W$", "#c6dbef"),
    "representation": (5.2, 3.6, "representation net $u$\nslow weights $Q$", "#c6dbef"),
    "m": (9.4, 6.4, "meta learner $m$\n(MLP, per coordinate)", "#fdd0a2"),
    "d": (9.4, 3.6, "meta learner $d$\n(LSTM, per coordinate)", "#fdd0a2"),
    "memory": (13.6, 6.4, "memory $M$: example-level\nfast weights $W^*_i$", "#c7e9c0"),
    "task_fast": (13.6, 3.6, "task-level fast\nweights $Q^*$", "#c7e9c0"),
    "keys": (13.6, 2.2, "keys $r_i = u(Q, Q^*, x_i)$", "#c7e9c0"),
    "query": (1.2, 0.6, "query $x$", "0.85"),
    "query_key": (5.2, 0.6, "query embedding\n$u(Q, Q^*, x)$", "#dadaeb"),
    "attention": (9.4, 0.6, READ, "#dadaeb"),
    "slow_fast": (13.6, 0.6, SLOW_FAST, "#dadaeb"),
}

# (from, to, label on the arrow, where along the arrow the label sits: 0 tail, 1 head)
ARROWS: list[tuple[str, str, str, float]] = [
    ("support", "base", "", 0.5),
    ("support", "representation", "", 0.5),
    ("base", "m", "per-example gradients\n$\\nabla_W \\mathcal{L}(x_i)$, log/sign", 0.5),
    ("representation", "d", "per-example gradients\n$\\nabla_Q \\mathcal{L}_{emb}(x_i)$, log/sign", 0.5),
    ("m", "memory", "$W^*_i = m(\\nabla_i)$", 0.5),
    ("d", "task_fast", "$Q^* = d(\\nabla_1, \\dots)$", 0.5),
    ("task_fast", "keys", "", 0.5),
    ("query", "query_key", "", 0.5),
    ("task_fast", "query_key", "", 0.5),
    ("query_key", "attention", "", 0.5),
    ("keys", "attention", "keys", 0.5),
    ("memory", "attention", "values", 0.8),
    ("attention", "slow_fast", "$W^*$", 0.5),
]

BOX_WIDTH, BOX_HEIGHT = 2.7, 1.0


def _edge(start: tuple[float, float], end: tuple[float, float]) -> tuple[float, float]:
    """The point where the segment from a box's centre `start` towards `end` leaves the box."""
    dx, dy = end[0] - start[0], end[1] - start[1]
    scale = min(BOX_WIDTH / 2 / abs(dx) if dx else float("inf"), BOX_HEIGHT / 2 / abs(dy) if dy else float("inf"))
    return start[0] + scale * dx, start[1] + scale * dy


def draw_meta_networks(ax: plt.Axes | None = None) -> Figure:
    """Draw `BOXES` joined by `ARROWS`: one text per box and per arrow label; returns the Figure."""
    if ax is None:
        _, ax = plt.subplots(figsize=(14, 6.2))
    for x, y, text, colour in BOXES.values():
        ax.add_patch(
            FancyBboxPatch(
                (x - BOX_WIDTH / 2, y - BOX_HEIGHT / 2), BOX_WIDTH, BOX_HEIGHT,
                boxstyle="round,pad=0.05", facecolor=colour, edgecolor="0.3", gid="box",
            )
        )  # fmt: skip
        ax.text(x, y, text, ha="center", va="center", fontsize=8.5)
    # the query passes its input to the slow + fast base learner below the boxes, not through them
    ax.add_patch(
        FancyArrowPatch(
            (1.2, 0.6 - BOX_HEIGHT / 2), (13.6, 0.6 - BOX_HEIGHT / 2), connectionstyle="arc3,rad=0.12",
            arrowstyle="-|>", mutation_scale=12, color="0.35", gid="arrow",
        )
    )  # fmt: skip
    ax.text(7.4, -0.5, "the query itself", ha="center", fontsize=7.5, color="0.3")
    for start, end, label, where in ARROWS:
        a, b = BOXES[start][:2], BOXES[end][:2]
        tail, head = _edge(a, b), _edge(b, a)
        ax.add_patch(FancyArrowPatch(tail, head, arrowstyle="-|>", mutation_scale=12, color="0.35", gid="arrow"))
        if label:
            x, y = tail[0] + where * (head[0] - tail[0]), tail[1] + where * (head[1] - tail[1])
            ax.text(x, y + 0.08, label, ha="center", va="bottom", fontsize=7.5, color="0.2")
    ax.text(0.0, 7.35, "support: write fast weights", fontsize=10, weight="bold")
    ax.text(0.0, 1.5, "query: read them", fontsize=10, weight="bold")
    ax.set_xlim(-0.4, 15.2)
    ax.set_ylim(-0.7, 7.6)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title("Meta Networks: gradients in, weights out (Munkhdalai & Yu 2017)")
    return ax.figure


# ====================================================================================================
# the generated-weights explorer
# ====================================================================================================


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
        if self.maml is not None and n_way > self.maml.n_way:
            lines.append(f"MAML: not shown for {n_way} ways: its {self.maml.n_way}-way output layer is part of the "
                         "trained model (a 20-way MAML is a model of its own: the zoo's maml-20w1s)")  # fmt: skip
        elif self.maml is not None:
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


# ====================================================================================================
# exercise checks
# ====================================================================================================


def reference_distance_scorer(query: Tensor, weights: Tensor) -> Tensor:
    """query [Q, E] (V f(x)), weights [N, E] (w_c) -> logits [Q, N] = -||V f(x) - w_c||^2."""
    return -((query[:, None] - weights[None]) ** 2).sum(-1)


def check_distance_scorer(scorer: Callable | None) -> bool:
    """scorer(query [Q, E], weights [N, E]) -> logits [Q, N], the negative squared distance."""
    hint = "Broadcast query[:, None] - weights[None] to [Q, N, E], square, sum over E, negate."
    generator = torch.Generator().manual_seed(0)
    query = torch.randn(6, 8, generator=generator, dtype=torch.float64)
    weights = torch.randn(3, 8, generator=generator, dtype=torch.float64)
    answered, result = attempt("distance_scorer", scorer, hint, query, weights)
    if not answered:
        return False
    result = torch.as_tensor(result)
    expected = reference_distance_scorer(query, weights)
    if result.shape != expected.shape:
        return say(False, f"logits need shape [Q, N] = {list(expected.shape)}, got {list(result.shape)}")
    if torch.allclose(result, query @ weights.T):
        return say(False, "that is the dot product the chapter uses: score by the negative squared distance")
    if torch.allclose(result, -expected):
        return say(False, "wrong sign: the nearest class must get the largest logit")
    if torch.allclose(result, -torch.cdist(query, weights)):
        return say(False, "not squared: -||a - w|| ranks classes alike but gives other logits and another softmax")
    if torch.allclose(result, expected):
        return say(True, "-||a - w_c||^2 = 2 a.w_c - ||w_c||^2 - ||a||^2: twice the dot product plus a per-class bias")
    shift = result - expected  # a constant per query (e.g. dropping -||a||^2) leaves the softmax unchanged
    if torch.allclose(shift, shift[:, :1].expand_as(shift)):
        return say(True, "the same softmax as -||a - w_c||^2 (you dropped a term that is equal for every class)")
    return say(False, "not the negative squared distance between each query and each class weight")


def reference_per_example_gradients(model: nn.Module, x: Tensor, y: Tensor) -> dict[str, Tensor]:
    """x [M, ...], y [M] -> {name: [M, *param.shape]}: the cross-entropy gradient of each example alone (a loop)."""
    params = dict(model.named_parameters())
    rows = [
        torch.autograd.grad(F.cross_entropy(model(xi[None]), yi[None]), list(params.values()))
        for xi, yi in zip(x, y, strict=True)
    ]
    return {name: torch.stack([row[i] for row in rows]) for i, name in enumerate(params)}


def check_per_example_gradients(per_example_gradients: Callable | None) -> bool:
    """per_example_gradients(model, x, y) -> {name: [M, *param.shape]}, each example's loss gradient alone."""
    hint = "Loop over the examples (x[i:i+1]) with torch.autograd.grad, or vmap(grad(loss)) over them; stack."
    model, (_, _, x, y) = toy_problem()
    answered, result = attempt("per_example_gradients", per_example_gradients, hint, model, x, y)
    if not answered:
        return False
    expected = reference_per_example_gradients(model, x, y)
    if not isinstance(result, dict) or set(result) != set(expected):
        return say(False, f"return a dict with the parameter names {sorted(expected)}")
    got = [torch.as_tensor(result[name]).detach() for name in expected]
    if all_close(got, list(expected.values())):
        return say(True, f"{len(x)} gradients per weight tensor, one per example: Meta Networks' meta information")
    mean = [g.mean(0) for g in expected.values()]
    if all(r.shape[1:] == m.shape and torch.allclose(r, m.expand_as(r)) for r, m in zip(got, mean, strict=True)):
        return say(False, "every row is the batch's mean gradient: take the loss of each example on its own")
    if all_close([r.sum(0) for r in got], mean):
        return say(False, "these rows add up to the mean gradient: use each example's own loss, not the loss / M")
    return say(False, "not the per-example gradients: compare with a loop over the examples")


# --- what to observe, from the zoo's records ------------------------------------------------------------------


def zoo_observations(names: tuple[str, ...] = ("metanet-embedding-5w1s", "metanet-5w1s"), reference: str = "maml-5w1s"):
    """Markdown: each trained Meta Network against the zoo's MAML, paired on the 600 recorded tasks, with its budget.

    Written from the weights records, so the sentences follow the models when they are retrained."""
    from IPython.display import Markdown

    from .. import zoo
    from ..compare.paired import verdict
    from ..evaluation import mean_ci95

    shipped = set(zoo.available())
    if reference not in shipped:
        return Markdown(f"(`{reference}` is not shipped: `python -m mlscratch zoo train {reference}`)")
    base = zoo.load(reference).zoo
    lines = []
    for name in (n for n in names if n in shipped):
        record = zoo.load(name).zoo
        ours, theirs = (torch.tensor(r["result"]["task_accuracies"]) for r in (record, base))
        difference, ci = mean_ci95(ours - theirs)
        words = verdict(difference, ci, "higher", "lower")
        target = record["settings"]["iterations"]
        result = record["result"]
        lines.append(f"- `{name}`: {result['accuracy']:.2f} ± {result['ci95']:.2f}% on 600 test tasks after "
                     f"{record['iteration']:,} of its recipe's {target:,} iterations; against `{reference}` "
                     f"({base['iteration']:,} iterations), paired: {difference:+.2f} ± {ci:.2f} points, {words}. "
                     "One training seed each.")  # fmt: skip
    return Markdown("\n".join(lines))


def check_class_weights(class_weights: Callable | None) -> bool:
    """class_weights(h [N*K, E], labels [N*K], U [E, E], e [E]) -> w [N, E], w_c = mean over class c of (U h_i + e)."""
    generator = torch.Generator().manual_seed(1)
    h = torch.randn(6, 4, generator=generator, dtype=torch.float64)
    labels = torch.tensor([1, 0, 2, 2, 0, 1])
    u, e = torch.randn(4, 4, generator=generator, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    hint = "Project every support embedding (h @ U.T + e), then average the rows of each class."
    answered, result = attempt("class_weights", class_weights, hint, h, labels, u, e)
    if not answered:
        return False
    projected = h @ u.T + e
    expected = torch.stack([projected[labels == c].mean(0) for c in range(3)])
    result = torch.as_tensor(result, dtype=torch.float64)
    if result.shape == expected.shape and torch.allclose(
        result, torch.stack([(h @ u.T)[labels == c].mean(0) for c in range(3)])
    ):
        return say(False, "the bias e is missing: w_c = mean_i (U h_i + e)")
    if result.shape != expected.shape or not torch.allclose(result, expected):
        return say(
            False, f"expected [N, E] = {tuple(expected.shape)}, row c the mean of class c's projected embeddings"
        )
    return say(True, "one row per class, written in one forward pass: any number of ways, no gradient step")
