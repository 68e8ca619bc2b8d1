"""Chapter 04, Meta Dropout: the paired comparison of the trained variants and the exercises' checks."""

from __future__ import annotations

import math
from collections.abc import Callable

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from IPython.display import Markdown

from ..compare import paired
from ..evaluation import mean_ci95
from .checks import attempt, say

# What the chapter uses from the course's shared modules, so that it imports the course from this one module.
from .explorer import adaptation_explorer  # noqa: F401
from .notebook import describe_splits, load_data, report, setup, train_and_evaluate  # noqa: F401
from .plots import plot_inner_steps  # noqa: F401
from .widgets import Panel  # noqa: F401

# ====================================================================================================
# the trained variants, paired on the same tasks
# ====================================================================================================

# The zoo's models of the chapter, by the labels the chapter uses, and the short keys of `report`.
ZOO_MODELS = {
    "MAML": ("maml-5w1s", "maml"),
    "Meta Dropout (learned)": ("maml-dropout-5w1s", "learned"),
    "consistent dropout": ("maml-masks-5w1s", "consistent"),
    "learned gate, no noise": ("maml-gate-5w1s", "gate"),
}
# Paired contrasts between two variants: (minuend, subtrahend, what the difference measures).
CONTRASTS = (
    ("Meta Dropout (learned)", "consistent dropout", "learned noise minus consistent masks"),
    ("Meta Dropout (learned)", "learned gate, no noise", "learned noise minus the noise-free gate (what noise adds)"),
)


def verdict(difference: tuple[float, float]) -> str:
    """A paired difference (mean, 95% half-width) in the words of a table's verdict column."""
    return paired.verdict(*difference, why=False)


def compare_trained(accuracies: dict[str, torch.Tensor], iterations: dict[str, int]) -> dict:
    """Print the trained variants' table and contrasts; return the numbers for `report`.

    accuracies: label -> per-task accuracy [T] on the same T test tasks (MAML's label must be among them);
    iterations: label -> the iterations the model was trained for.
    """
    summary = {}
    base = accuracies["MAML"]
    print(f"{'zoo model':<24}{'iterations':>11}{'mean ± 95% CI':>17}{'vs MAML (paired)':>20}  verdict")
    for label, acc in accuracies.items():
        key = ZOO_MODELS[label][1]
        (mean, ci), difference = mean_ci95(acc), mean_ci95(acc - base)
        shown = "" if label == "MAML" else f"{difference[0]:>+13.2f} ± {difference[1]:<5.2f}  {verdict(difference)}"
        print(f"{label:<24}{iterations[label]:>11,}{mean:>10.2f} ± {ci:<5.2f}{shown}")
        summary[f"zoo_{key}_accuracy"], summary[f"zoo_{key}_iterations"] = round(mean, 2), iterations[label]
        if label != "MAML":
            summary[f"zoo_{key}_minus_maml"] = [round(v, 2) for v in difference]
    for first, second, meaning in CONTRASTS:
        if first in accuracies and second in accuracies:
            difference = mean_ci95(accuracies[first] - accuracies[second])
            print(f"{meaning}, paired: {difference[0]:+.2f} ± {difference[1]:.2f}  {verdict(difference)}")
            summary[f"zoo_{ZOO_MODELS[first][1]}_minus_{ZOO_MODELS[second][1]}"] = [round(v, 2) for v in difference]
    return summary


def plot_trained(accuracies: dict[str, torch.Tensor], queries_per_task: int):
    """Each variant against MAML on the same tasks: the paired differences, one bin per possible value (a task's
    accuracy moves in steps of one query), and one dot per task. accuracies: label -> per-task accuracy [T]."""
    base = accuracies["MAML"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
    low = min(acc.min().item() for acc in accuracies.values()) - 2
    step = 100 / queries_per_task
    reach = round(max((acc - base).abs().max().item() for acc in accuracies.values()) / step)
    bins = (torch.arange(-reach - 1, reach + 1) + 0.5) * step
    for label, acc in accuracies.items():
        if label != "MAML":
            difference = acc - base
            wins, losses = (difference > 0).sum().item(), (difference < 0).sum().item()
            axes[0].hist(difference, bins=bins, histtype="step", linewidth=2,
                         label=f"{label}: wins {wins}, loses {losses}, ties {len(acc) - wins - losses}")  # fmt: skip
            axes[1].scatter(base + torch.randn(len(acc)) * 0.4, acc + torch.randn(len(acc)) * 0.4, s=6, alpha=0.4,
                            label=label)  # fmt: skip
    axes[0].set(xlabel="per-task accuracy minus MAML's, same task (points)", ylabel="test tasks",
                title=f"paired differences on the {len(base)} zoo test tasks")  # fmt: skip
    axes[1].plot([low, 101], [low, 101], color="grey", linestyle=":")
    axes[1].set(
        xlim=(low, 101),
        ylim=(low, 101),
        xlabel="MAML's accuracy on a task (%)",
        ylabel="variant's accuracy (%)",
        title="one dot per task (jittered): above the line, the variant wins",
    )
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _paired_sentence(difference: torch.Tensor) -> str:
    """Per-task differences [T] -> 'd ± ci points (better on W tasks, worse on L): verdict'."""
    mean, ci = mean_ci95(difference)
    wins, losses = int((difference > 0).sum()), int((difference < 0).sum())
    return f"{mean:+.2f} ± {ci:.2f} points (better on {wins} tasks, worse on {losses}): {verdict((mean, ci))}"


def trained_observations(accuracies: dict[str, torch.Tensor], iterations: dict[str, int]) -> Markdown:
    """'What to observe' for the trained variants, as sentences with their records' numbers.

    accuracies: label -> per-task accuracy [T] on the same T test tasks; iterations: label -> training iterations.
    """
    base, tasks = accuracies["MAML"], len(accuracies["MAML"])
    scores = "; ".join(
        f"{ZOO_MODELS[label][0]} ({iterations[label]:,} iterations) {mean:.2f} ± {ci:.2f}%"
        for label, (mean, ci) in ((label, mean_ci95(acc)) for label, acc in accuracies.items())
    )
    lines = [f"- **Trained, one training seed each**, on the same {tasks} test tasks: {scores}."]
    lines += [f"- {label[:1].upper() + label[1:]} minus MAML, paired: {_paired_sentence(acc - base)}."
              for label, acc in accuracies.items() if label != "MAML"]  # fmt: skip
    for first, second, meaning in CONTRASTS:
        if first in accuracies and second in accuracies:
            difference = accuracies[first] - accuracies[second]
            lines.append(f"- {meaning[:1].upper() + meaning[1:]}, paired: {_paired_sentence(difference)}.")
    if "learned gate, no noise" in accuracies and "Meta Dropout (learned)" in accuracies:
        reading = {
            "no detectable difference": "the noise adds nothing detectable to the gate it rides on, so what Meta "
            "Dropout gains here the gate's extra capacity can explain as well",
            "better": "the noise itself helps, beyond the capacity of the gate",
            "worse": "the noise costs accuracy against the same gate without it",
        }[verdict(mean_ci95(accuracies["Meta Dropout (learned)"] - accuracies["learned gate, no noise"]))]
        lines.append(f"- **Noise or capacity?** With one seed per model: {reading}.")
    return Markdown("\n".join(lines))


# ====================================================================================================
# exercise checks
# ====================================================================================================


def _masks_are_valid(masks: list, rate: float) -> bool:
    values = torch.tensor([0.0, 1 / (1 - rate)])
    return all(torch.isclose(m[..., None], values).any(-1).all() for m in masks)


def check_support_masks(support_masks: Callable | None) -> bool:
    """support_masks(dropout, h, steps, fresh) -> the `steps` masks that one task's inner loop applies.

    dropout is a ConsistentDropout in training mode, h [M, C, H, W] the task's support features; fresh=False keeps
    one mask for the task (the chapter's variant), fresh=True draws a new mask at every step.
    """
    from ..models.meta_dropout import ConsistentDropout  # here: checks stays importable without it

    hint = "Call dropout.reset_task() when the task starts (and, if fresh, before every step); read dropout.mask."
    rate, steps = 0.5, 4
    dropout = ConsistentDropout(rate).train()
    h = torch.ones(3, 4, 5, 5)
    torch.manual_seed(0)
    answered, consistent = attempt("support_masks", support_masks, hint, dropout, h, steps, False)
    if not answered:
        return False
    fresh = support_masks(dropout, h, steps, True)
    next_task = support_masks(dropout, h, steps, False)
    if any(len(masks) != steps for masks in (consistent, fresh, next_task)):
        return say(False, f"return one mask per inner step: {steps} steps, {steps} masks")
    consistent, fresh, next_task = ([torch.as_tensor(m) for m in masks] for masks in (consistent, fresh, next_task))
    if not _masks_are_valid(consistent + fresh, rate):
        return say(False, f"a mask of rate {rate} holds 0 and 1 / (1 - rate) = {1 / (1 - rate):g}: use dropout.mask")
    if not all(torch.equal(consistent[0], m) for m in consistent):
        return say(False, "fresh=False must keep one mask through the task's steps: do not reset between them")
    if all(torch.equal(fresh[0], m) for m in fresh):
        return say(False, "fresh=True gave the same mask at every step: call reset_task() before each step")
    if torch.equal(consistent[0], next_task[0]):
        return say(False, "the next task reused the last task's mask: call reset_task() when a task starts")
    return say(True, "one mask per task, or a new one per step: with one inner step the two coincide")


def check_softplus_noise(mean: float | None, fraction_below_one: float | None) -> bool:
    """Meta Dropout at initialisation, z ~ N(0, 1): the mean of softplus(z), and how often it shrinks a feature."""
    if mean is None or fraction_below_one is None:
        return say(
            False,
            "softplus noise: not answered yet. Draw z = torch.randn(100_000) and read F.softplus(z) off the samples.",
        )
    z = torch.linspace(-12, 12, 200_001, dtype=torch.float64)
    density = torch.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    expected_mean = torch.trapezoid(F.softplus(z) * density, z).item()
    expected_fraction = 0.5 * (1 + math.erf(math.log(math.e - 1) / math.sqrt(2)))  # softplus(z) < 1 iff z < log(e - 1)
    if abs(mean - expected_mean) > 0.01:
        reason = " (log 2 = softplus(0) is the median, not the mean)" if abs(mean - 0.693) < 0.01 else ""
        return say(False, f"the mean of softplus(z) is {expected_mean:.3f}, not {mean:.3f}{reason}")
    if abs(fraction_below_one - expected_fraction) > 0.01:
        return say(False, f"softplus(z) < 1 when z < log(e - 1) = 0.541: a fraction {expected_fraction:.3f}")
    return say(
        True,
        f"mean {expected_mean:.3f}, below 1 for {100 * expected_fraction:.1f}% of the draws: at initialisation "
        "the noise shrinks most features and amplifies a few",
    )


def check_kept_scale(kept_scale: Callable | None) -> bool:
    """kept_scale(rate) -> the factor a kept feature is multiplied by under (inverted) dropout of that rate."""
    rates = (0.05, 0.15, 0.5)
    hint = "A feature is kept with probability 1 - rate; what factor keeps its expected value unchanged?"
    answered, values = attempt("kept_scale", kept_scale, hint, rates[0])
    if not answered:
        return False
    values = [float(kept_scale(rate)) for rate in rates]
    if all(abs(v - (1 - r)) < 1e-9 for v, r in zip(values, rates, strict=True)):
        return say(False, "1 - rate is the probability of keeping a feature; the kept ones must be scaled *up*")
    expected = [1 / (1 - rate) for rate in rates]
    if not all(abs(v - e) < 1e-6 for v, e in zip(values, expected, strict=True)):
        return say(False, f"at rates {rates} expected {[round(e, 4) for e in expected]}")
    return say(True, "1 / (1 - rate): at 0.15 kept values are 1.1765, as the mask above shows; E[mask * h] = h")
