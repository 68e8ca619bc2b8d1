"""The adaptation explorer: one trained gradient-based learner, one task, its inner loop step by step, live.

    panel = adaptation_explorer(zoo.load("maml-5w1s"), splits)    # sliders: inner lr, steps, ways, shots, task seed

Each change draws a new test task and adapts the trained initialisation to it with plain SGD, then shows the task's
support images, the query accuracy and the support and query losses after every inner step. Earlier settings stay
on the curves as faint lines, so a change is seen against the last ones. No training: it answers in about a second
on a CPU.

The trained model has a fixed `n_way`-way output layer. For another number of ways the explorer gives task class
j the output row j mod n_way: labels are shuffled per task, so no row belongs to a class and every row starts as
good as any other (MAML's rows start near chance, see the before-adaptation accuracy).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor, nn

from .inner_loop import Params, adapt, sgd
from .tasks import TaskBatch, TaskSampler
from .widgets import Panel


@dataclass
class AdaptationCurve:
    """One task's inner loop: values before adaptation (index 0) and after each step, lists of steps+1 floats."""

    settings: dict
    accuracy: list[float]  # query accuracy, percent
    query_loss: list[float]
    support_loss: list[float]

    def label(self) -> str:
        s = self.settings
        return f"lr {s['inner_lr']:g}, {s['n_way']}-way {s['k_shot']}-shot, seed {s['seed']}"


def output_layer(model: nn.Module) -> str:
    """Name of the last nn.Linear of a model (its output layer)."""
    names = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not names:
        raise ValueError("the explorer needs a backbone whose last nn.Linear is its output layer")
    return names[-1]


def resize_head(params: Params, head: str, n_way: int) -> Params:
    """The same weights with an n_way-way output layer: output row j is the trained row j mod (trained ways)."""
    trained = params[f"{head}.weight"].shape[0]
    rows = torch.arange(n_way, device=params[f"{head}.weight"].device) % trained
    return {**params, f"{head}.weight": params[f"{head}.weight"][rows], f"{head}.bias": params[f"{head}.bias"][rows]}


def adaptation_curve(learner: nn.Module, task: TaskBatch, inner_lr: float, steps: int) -> AdaptationCurve:
    """Adapt `learner` (a MAML-family MetaLearner) to task 0 of `task` with `steps` SGD steps of `inner_lr`.

    Returns the query accuracy and the query and support losses before and after each step.
    """
    sx, sy, qx, qy = (t[0] for t in task)
    n_way = int(sy.max()) + 1
    params, fixed = learner.task_weights(sx, sy)
    params = resize_head({name: w.detach() for name, w in params.items()}, output_layer(learner.backbone), n_way)

    def support_loss(p: Params) -> Tensor:
        return F.cross_entropy(learner.logits(p, fixed, sx), sy)

    was_training = learner.training
    learner.eval()
    try:
        path = adapt(support_loss, params, steps, sgd(inner_lr), first_order=True, trace=True)
        with torch.no_grad():
            query_logits = [learner.logits(p, fixed, qx, sx) for p in path]
            support = [support_loss(p).item() for p in path]
    finally:
        learner.train(was_training)
    return AdaptationCurve(
        {"inner_lr": inner_lr, "steps": steps, "n_way": n_way, "k_shot": len(sy) // n_way},
        [(logits.argmax(-1) == qy).float().mean().item() * 100 for logits in query_logits],
        [F.cross_entropy(logits, qy).item() for logits in query_logits],
        support,
    )


def draw_adaptation(task: TaskBatch, curve: AdaptationCurve, earlier: list[AdaptationCurve] = ()) -> Figure:
    """The support images (top), then query accuracy and losses against inner steps; earlier curves faint."""
    sx, sy = task.support_x[0], task.support_y[0]
    shown = min(len(sx), 25)
    figure = plt.figure(figsize=(11, 5.2))
    grid = figure.add_gridspec(2, 2, height_ratios=[1, 3.2], hspace=0.35, wspace=0.25)
    images_ax = figure.add_subplot(grid[0, :])  # one strip of images: one imshow is fast, 25 subplots are not
    strip = torch.cat([F.pad(x[0].detach().float().cpu(), (1, 1, 1, 1), value=0.25) for x in sx[:shown]], dim=1)
    images_ax.imshow(strip.numpy(), cmap="gray_r", vmin=0, vmax=1)
    width = strip.shape[1] / shown
    images_ax.set_xticks([width * (j + 0.5) for j in range(shown)], [str(y) for y in sy[:shown].tolist()], fontsize=7)
    images_ax.set_yticks([])
    accuracy_ax, loss_ax = figure.add_subplot(grid[1, 0]), figure.add_subplot(grid[1, 1])
    for old in earlier:
        accuracy_ax.plot(old.accuracy, color="grey", alpha=0.3)
        loss_ax.plot(old.query_loss, color="grey", alpha=0.3)
    steps = range(len(curve.accuracy))
    accuracy_ax.plot(steps, curve.accuracy, "o-", color="tab:blue", label=curve.label())
    accuracy_ax.axhline(100 / curve.settings["n_way"], color="grey", linestyle=":", label="chance")
    accuracy_ax.set(xlabel="inner steps", ylabel="query accuracy (%)", ylim=(0, 102), title="query accuracy")
    loss_ax.plot(steps, curve.query_loss, "o-", color="tab:blue", label="query loss")
    loss_ax.plot(steps, curve.support_loss, "s--", color="tab:orange", label="support loss")
    loss_ax.set(xlabel="inner steps", ylabel="cross-entropy", title="losses (faint: earlier query losses)")
    for ax in (accuracy_ax, loss_ax):
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=7)
    images_ax.set_title(
        f"support set: {shown} of {len(sx)} images, labels below ({len(task.query_x[0])} queries)", fontsize=9
    )
    return figure


@dataclass
class Explorer:
    """compute() of the panel: keeps the tasks' sampler settings and the earlier curves."""

    learner: nn.Module
    classes: object  # ClassImages of the split the tasks come from
    k_query: int
    overlays: int = 4
    history: list[AdaptationCurve] = field(default_factory=list)

    def __call__(self, inner_lr: float, steps: int, n_way: int, k_shot: int, seed: int) -> tuple[Figure, str]:
        device = next(self.learner.parameters()).device
        task = TaskSampler(self.classes, n_way, k_shot, self.k_query, 1, seed=seed, device=device).sample()
        curve = adaptation_curve(self.learner, task, inner_lr, steps)
        curve.settings["seed"] = seed
        figure = draw_adaptation(task, curve, self.history[-self.overlays :])
        self.history.append(curve)
        text = (
            f"{n_way}-way {k_shot}-shot test task (seed {seed}), {self.k_query} queries per class: "
            f"{curve.accuracy[0]:.0f}% before adaptation, {curve.accuracy[-1]:.0f}% after {steps} step(s) of lr "
            f"{inner_lr:g}; query loss {curve.query_loss[0]:.2f} -> {curve.query_loss[-1]:.2f}"
        )
        return figure, text


def slider_ranges(classes: object, k_query: int, max_ways: int = 10, max_shots: int = 5) -> dict[str, int]:
    """Largest ways and shots that always make a drawable task: n_way <= classes, k_shot + k_query <= drawings."""
    fewest = int(classes.counts.min())
    return {"max_ways": min(max_ways, classes.n_classes), "max_shots": max(1, min(max_shots, fewest - k_query))}


def adaptation_explorer(
    learner: nn.Module,
    splits: dict,
    *,
    split: str = "test",
    inner_lr: float = 0.4,
    steps: int = 5,
    n_way: int = 5,
    k_shot: int = 1,
    k_query: int = 5,
    seed: int = 0,
    run_now: bool = True,
) -> Panel:
    """A live panel on a trained learner: inner lr, inner steps, ways, shots and task seed; redraws on each change.

    Slider ranges are chosen so that every setting is a task the split can give (`slider_ranges`).
    """
    classes = splits[split]
    limits = slider_ranges(classes, k_query)
    if limits["max_shots"] < 1 or k_query < 1:
        raise ValueError(f"the {split} split has too few drawings per class for {k_query} queries")
    compute = Explorer(learner, classes, k_query)
    controls = {
        "inner_lr": (0.0, 2.0, inner_lr, 0.05),
        "steps": (0, 10, steps),
        "n_way": (2, limits["max_ways"], min(n_way, limits["max_ways"])),
        "k_shot": (1, limits["max_shots"], min(k_shot, limits["max_shots"])),
        "seed": (0, 999, seed),
    }
    return Panel(
        compute, controls, title=f"Adapting the trained {type(learner).__name__} to one {split} task", run_now=run_now
    )


__all__ = [
    "step_accuracies",
    "AdaptationCurve",
    "Explorer",
    "adaptation_curve",
    "adaptation_explorer",
    "draw_adaptation",
    "resize_head",
    "slider_ranges",
]


def step_accuracies(learner: nn.Module, sampler: TaskSampler, n_tasks: int, steps: int) -> Tensor:
    """Query accuracy (percent) of every task before adaptation and after each inner step: [n_tasks, steps+1].

    Row i is the i-th task of `sampler` reseeded with its seed, drawn in whole batches, so it is the i-th task of
    the zoo's recorded per-task accuracies for any n_tasks. Two columns are paired: the same tasks, the same
    queries. Differences between steps need this pairing.
    """
    state = sampler.state_dict()
    sampler.generator.manual_seed(sampler.seed)
    rows = []
    try:
        while sum(len(r) for r in rows) < n_tasks:
            batch = sampler.sample()  # always a whole batch, so task i is the same for every n_tasks
            batch = TaskBatch(*(t[: n_tasks - sum(len(r) for r in rows)] for t in batch))
            was_training = learner.training
            learner.eval()
            try:
                logits = learner.adaptation_logits(*batch[:3], steps=steps)  # [B, steps+1, N*Q, N]
            finally:
                learner.train(was_training)
            rows.append((logits.argmax(-1) == batch.query_y[:, None]).float().mean(-1).cpu() * 100)
    finally:
        sampler.load_state_dict(state)
    return torch.cat(rows)
