"""Plots for chapters: training curves, before vs after adaptation, accuracy vs inner steps.

Each function draws on `ax` (a new figure when None) and returns the figure.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np

from ..evaluation import EvaluationResult
from ..training import History


def _axes(ax, ncols: int = 1, width: float = 5.0):
    if ax is not None:
        axes = list(np.atleast_1d(ax))
        return axes[0].figure, axes
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, 3.5), squeeze=False)
    return fig, list(axes[0])


def _smooth(values: list[float], window: int) -> np.ndarray:
    """Moving average over `window` points (len(values) - window + 1 points)."""
    return np.convolve(np.asarray(values, dtype=float), np.ones(window) / window, mode="valid")


def plot_history(history: History | Mapping[str, History], ax=None, smooth: int = 20):
    """Meta-training loss (left) and query accuracy with validation points (right); several runs by name."""
    runs = history if isinstance(history, Mapping) else {"": history}
    fig, (loss_ax, acc_ax) = _axes(ax, ncols=2)
    for name, run in runs.items():
        window = smooth if len(run.iteration) >= smooth else 1
        x = np.asarray(run.iteration)[window - 1 :]
        (line,) = loss_ax.plot(x, _smooth(run.loss, window), label=name or "train")
        acc_ax.plot(x, _smooth(run.accuracy, window), color=line.get_color(), alpha=0.6, label=f"{name} train".strip())
        if run.val_accuracy:
            acc_ax.errorbar(
                run.val_iteration,
                run.val_accuracy,
                yerr=run.val_ci95 or None,
                fmt="o-",
                color=line.get_color(),
                label=f"{name} validation".strip(),
            )
    loss_ax.set(xlabel="meta-iteration", ylabel="query loss", title="meta-training loss")
    acc_ax.set(xlabel="meta-iteration", ylabel="query accuracy (%)", title="accuracy after adaptation")
    acc_ax.legend()
    if len(runs) > 1:
        loss_ax.legend()
    fig.tight_layout()
    return fig


def _named(results: EvaluationResult | Mapping[str, EvaluationResult]) -> dict[str, EvaluationResult]:
    return dict(results) if isinstance(results, Mapping) else {"": results}


def plot_adaptation(results: EvaluationResult | Mapping[str, EvaluationResult], ax=None):
    """Bars: accuracy before adaptation vs after the inner loop, with 95% CIs, per learner."""
    runs = {name: r for name, r in _named(results).items() if r.step_accuracies}
    fig, (ax,) = _axes(ax)
    x = np.arange(len(runs))
    before = [r.step_accuracies[0] for r in runs.values()]
    after = [r.accuracy for r in runs.values()]
    ax.bar(x - 0.2, before, 0.4, yerr=[r.step_ci95[0] for r in runs.values()], label="before adaptation")
    ax.bar(x + 0.2, after, 0.4, yerr=[r.ci95 for r in runs.values()], label="after adaptation")
    if runs:
        chance = 100 / next(iter(runs.values())).n_way
        ax.axhline(chance, color="grey", linestyle=":", label=f"chance ({chance:.0f}%)")
    ax.set_xticks(x, [name or "learner" for name in runs])
    ax.set(ylabel="query accuracy (%)", ylim=(0, 100), title="before vs after adaptation")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def plot_inner_steps(results: EvaluationResult | Mapping[str, EvaluationResult], ax=None):
    """Accuracy (with 95% CI band) against the number of inner steps taken at test time."""
    fig, (ax,) = _axes(ax)
    runs = {name: r for name, r in _named(results).items() if r.step_accuracies}
    for name, r in runs.items():
        steps = np.arange(len(r.step_accuracies))
        mean, ci = np.asarray(r.step_accuracies), np.asarray(r.step_ci95)
        ax.plot(steps, mean, "o-", label=name or None)
        ax.fill_between(steps, mean - ci, mean + ci, alpha=0.2)
    ax.set(xlabel="inner steps at test time", ylabel="query accuracy (%)", title="accuracy vs inner steps")
    ax.xaxis.get_major_locator().set_params(integer=True)
    if any(runs):
        ax.legend()
    fig.tight_layout()
    return fig
