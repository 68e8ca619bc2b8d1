"""The adaptation explorer: trained gradient-based learners, one task, their inner loops step by step, live.

    panel = adaptation_explorer(zoo.load("maml-5w1s"), splits)    # sliders: inner lr, steps, ways, shots, task seed
    panel = adaptation_explorer({"MAML": maml, "Meta Dropout": dropout}, splits)   # several learners, same task

Each change draws a new test task and adapts each trained initialisation to it with plain SGD on its own inner
loss (with a Meta Dropout backbone: the noisy support loss, as at meta-test time), then shows the task's support
images, the query accuracy and the support and query losses after every inner step. Earlier settings stay on the
curves as faint lines, so a change is seen against the last ones. No training: it answers in about a second on a
CPU.

The trained model has a fixed `n_way`-way output layer, which is part of what MAML learned: the ways slider stops
at it (a larger task would need rows the model never trained; reusing rows would not be MAML). Fewer ways use
the first rows: labels are shuffled per task, so no row belongs to a class.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor, nn

from ..errors import ConfigError
from ..inner_loop import Params, adapt, sgd
from ..models import meta_dropout
from ..tasks import TaskBatch, TaskSampler
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
    """Name of the last nn.Linear of a model that the inner loop adapts (its output layer; not a noise generator)."""
    names = [
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and not getattr(module, "outer_loop_only", False)
    ]
    if not names:
        raise ValueError("the explorer needs a backbone whose last nn.Linear is its output layer")
    return names[-1]


def resize_head(params: Params, head: str, n_way: int) -> Params:
    """The same weights with an n_way-way output layer, n_way <= the trained ways: the first n_way output rows."""
    trained = params[f"{head}.weight"].shape[0]
    if n_way > trained:
        raise ConfigError(f"this model's output layer has {trained} rows and cannot answer a {n_way}-way task; "
                          f"use at most {trained} ways, or a model trained for {n_way}")  # fmt: skip
    rows = torch.arange(n_way, device=params[f"{head}.weight"].device)
    return {**params, f"{head}.weight": params[f"{head}.weight"][rows], f"{head}.bias": params[f"{head}.bias"][rows]}


def adaptation_curve(learner: nn.Module, task: TaskBatch, inner_lr: float, steps: int) -> AdaptationCurve:
    """Adapt `learner` (a MAML-family MetaLearner) to task 0 of `task` with `steps` SGD steps of `inner_lr`.

    The steps descend the learner's own inner loss (Meta Dropout: with its support-set noise, averaged over its
    evaluation draws). Returns the query accuracy, the query loss and the noise-free support loss before and after
    each step.
    """
    sx, sy, qx, qy = (t[0] for t in task)
    n_way = int(sy.max()) + 1
    params, fixed = learner.task_weights(sx, sy)
    params = resize_head({name: w.detach() for name, w in params.items()}, output_layer(learner.backbone), n_way)

    def support_loss(p: Params) -> Tensor:
        return F.cross_entropy(learner.logits(p, fixed, sx), sy)

    def inner_loss(p: Params) -> Tensor:
        return meta_dropout.support_loss(learner.backbone, lambda: support_loss(p))

    was_training = learner.training
    learner.eval()
    try:
        path = adapt(inner_loss, params, steps, sgd(inner_lr), first_order=True, trace=True)
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


COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red")


def draw_adaptation(
    task: TaskBatch, curves: dict[str, AdaptationCurve], earlier: list[dict[str, AdaptationCurve]] = ()
) -> Figure:
    """The support images (top), then each learner's query accuracy and losses against inner steps (one colour
    per learner); the curves of earlier settings faint grey."""
    figure = plt.figure(figsize=(11, 5.2))
    grid = figure.add_gridspec(2, 2, height_ratios=[1, 3.2], hspace=0.35, wspace=0.25)
    support_strip(figure.add_subplot(grid[0, :]), task)
    accuracy_ax, loss_ax = figure.add_subplot(grid[1, 0]), figure.add_subplot(grid[1, 1])
    for old in (curve for run in earlier for curve in run.values()):
        accuracy_ax.plot(old.accuracy, color="grey", alpha=0.3)
        loss_ax.plot(old.query_loss, color="grey", alpha=0.3)
    several = len(curves) > 1
    for (name, curve), colour in zip(curves.items(), COLOURS, strict=False):
        steps = range(len(curve.accuracy))
        label = f"{name}: {curve.label()}" if several else curve.label()
        accuracy_ax.plot(steps, curve.accuracy, "o-", color=colour, label=label)
        loss_ax.plot(steps, curve.query_loss, "o-", color=colour, label=f"{name}: query" if several else "query loss")
        loss_ax.plot(
            steps,
            curve.support_loss,
            "s--",
            color=colour,
            alpha=0.7,
            label=f"{name}: support" if several else "support loss",
        )
    n_way = next(iter(curves.values())).settings["n_way"]
    accuracy_ax.axhline(100 / n_way, color="grey", linestyle=":", label="chance")
    accuracy_ax.set(xlabel="inner steps", ylabel="query accuracy (%)", ylim=(0, 102), title="query accuracy")
    loss_ax.set(xlabel="inner steps", ylabel="cross-entropy", title="losses (faint: earlier query losses)")
    for ax in (accuracy_ax, loss_ax):
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=7)
    return figure


def support_strip(ax: plt.Axes, task: TaskBatch, most: int = 25) -> None:
    """Task 0's support images in one strip with their labels below (one imshow is fast, 25 subplots are not)."""
    sx, sy = task.support_x[0], task.support_y[0]
    shown = min(len(sx), most)
    strip = torch.cat([F.pad(x[0].detach().float().cpu(), (1, 1, 1, 1), value=0.25) for x in sx[:shown]], dim=1)
    ax.imshow(strip.numpy(), cmap="gray_r", vmin=0, vmax=1)
    width = strip.shape[1] / shown
    ax.set_xticks([width * (j + 0.5) for j in range(shown)], [str(y) for y in sy[:shown].tolist()], fontsize=7)
    ax.set_yticks([])
    ax.set_title(f"support set: {shown} of {len(sx)} images, labels below ({len(task.query_x[0])} queries)", fontsize=9)


@dataclass
class Explorer:
    """compute() of the panel: the learners by name, the tasks' sampler settings, and the earlier curves."""

    learners: dict[str, nn.Module]
    classes: object  # ClassImages of the split the tasks come from
    k_query: int
    overlays: int = 4
    history: list[dict[str, AdaptationCurve]] = field(default_factory=list)

    def __call__(self, inner_lr: float, steps: int, n_way: int, k_shot: int, seed: int) -> tuple[Figure, str]:
        device = next(next(iter(self.learners.values())).parameters()).device
        task = TaskSampler(self.classes, n_way, k_shot, self.k_query, 1, seed=seed, device=device).sample()
        with torch.random.fork_rng():  # learned noise draws: the same for the same settings, no global side effect
            torch.manual_seed(seed)
            curves = {name: adaptation_curve(learner, task, inner_lr, steps) for name, learner in self.learners.items()}
        for curve in curves.values():
            curve.settings["seed"] = seed
        figure = draw_adaptation(task, curves, self.history[-self.overlays :])
        self.history.append(curves)
        lines = [
            f"{n_way}-way {k_shot}-shot test task (seed {seed}), {self.k_query} queries per class, {steps} step(s) "
            f"of lr {inner_lr:g}:"
        ]
        for name, curve in curves.items():
            lines.append(
                f"{name}: {curve.accuracy[0]:.0f}% before adaptation, {curve.accuracy[-1]:.0f}% after; query loss "
                f"{curve.query_loss[0]:.2f} -> {curve.query_loss[-1]:.2f}"
            )
        if len(curves) == 2:
            (first, a), (second, b) = curves.items()
            lines.append(
                f"{second} minus {first} on this task: {b.accuracy[-1] - a.accuracy[-1]:+.0f} points (one task: "
                "see the paired difference over many tasks before believing it)"
            )
        return figure, "\n".join(lines)


def slider_ranges(classes: object, k_query: int, max_ways: int = 10, max_shots: int = 5) -> dict[str, int]:
    """Largest ways and shots that always make a drawable task: n_way <= classes, k_shot + k_query <= drawings."""
    fewest = int(classes.counts.min())
    return {"max_ways": min(max_ways, classes.n_classes), "max_shots": max(1, min(max_shots, fewest - k_query))}


def task_sliders(classes: object, k_query: int, n_way: int, k_shot: int, seed: int, max_ways: int = 10) -> dict:
    """Panel controls for ways, shots and the task seed whose every setting is a task the classes can give."""
    fewest = int(classes.counts.min())
    if k_query < 1 or fewest <= k_query:
        raise ValueError(
            f"{k_query} queries and one shot need more than {k_query} drawings per class; some have {fewest}"
        )
    limits = slider_ranges(classes, k_query, max_ways)
    return {
        "n_way": (2, limits["max_ways"], min(n_way, limits["max_ways"])),
        "k_shot": (1, limits["max_shots"], min(k_shot, limits["max_shots"])),
        "seed": (0, 999, seed),
    }


def adaptation_explorer(
    learners: nn.Module | dict[str, nn.Module],
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
    """A live panel on trained learners (one module, or a dict name -> module adapted to the same task): inner lr,
    inner steps, ways, shots and task seed; redraws on each change.

    Slider ranges are chosen so that every setting is a task the split can give (`slider_ranges`).
    """
    if isinstance(learners, nn.Module):
        learners = {type(learners).__name__: learners}
    classes = splits[split]
    heads = [getattr(m, "n_way", None) for m in learners.values()]
    most_ways = min((h for h in heads if h), default=10)  # a fixed output layer: no more ways than it has rows
    controls = {
        "inner_lr": (0.0, 2.0, inner_lr, 0.05),
        "steps": (0, 10, steps),
        **task_sliders(classes, k_query, min(n_way, most_ways), k_shot, seed, max_ways=most_ways),
    }
    compute = Explorer(learners, classes, k_query)
    title = f"Adapting the trained {' and '.join(learners)} to one {split} task"
    return Panel(compute, controls, title=title, run_now=run_now)


__all__ = [
    "step_accuracies",
    "AdaptationCurve",
    "Explorer",
    "adaptation_curve",
    "adaptation_explorer",
    "draw_adaptation",
    "resize_head",
    "slider_ranges",
    "support_strip",
    "task_sliders",
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
