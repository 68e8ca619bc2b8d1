"""Chapter 09, Lake's one-shot challenge: the 20 official runs as a person sees them, each model's picks, the error
rates beside people, BPL and the published neural results, within- against between-alphabet tasks, a live panel of
picks, "what to observe" written from the records, and the exercise checks.

The scoring itself is the library's `mlscratch.challenge`; the runs are `mlscratch.data.lake_runs`.

    show_run(runs[0], test=3)                        # the 20 training drawings and one test drawing, no answers
    plot_picks(runs[0], {"protonet": picks})         # each test drawing above the training drawing each model chose
    plot_errors(results)                             # error rates with 95% intervals beside the published figures
    picks_panel(runs, picks)                         # live: choose a run and a model
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import Tensor

from .. import zoo
from ..challenge import (
    BPL,
    HAUSDORFF_DEMO,
    HUMANS,
    ChallengeResult,
    Reference,
    hausdorff_predictions,
    modified_hausdorff,
    wilson_interval,
)
from ..commands.challenge import LAKE_BASELINE as BASELINE_FILE
from ..compare import race
from ..compare.shipped_baseline import SHIPPED_BASELINES, read_baseline
from ..data.lake_runs import LakeRun
from .checks import attempt, say

# What the chapter uses from the course's shared modules, so that it imports the course from this one module.
from .notebook import report, setup  # noqa: F401
from .viz import show_image
from .widgets import Panel

KOCH = Reference(
    "convolutional Siamese network",
    8.0,
    "Koch, Zemel & Salakhutdinov 2015, ICML Deep Learning Workshop, Table 2 (92.0% correct; trained on 40 alphabets "
    "with affine distortions, more than the background set)",
)
DEMO = Reference("modified Hausdorff distance, official demo", HAUSDORFF_DEMO.error, HAUSDORFF_DEMO.source)
PUBLISHED = (HUMANS, BPL, KOCH, DEMO)
STORED_HAUSDORFF = race.STORED / "challenge-hausdorff.json"  # python -m mlscratch challenge --hausdorff --json ...
RIGHT, WRONG = "#2e7d32", "#c62828"


# --- the contestants ------------------------------------------------------------------------------------------


def challengers(device: torch.device | str = "cpu") -> dict[str, tuple[torch.nn.Module, dict]]:
    """Every shipped model trained on the background set only: the zoo's `lake` models and the lake-pretrained
    baseline, each as (learner in eval mode, its record: settings, budget, measured results)."""
    found = {name: zoo.load(name, device) for name in zoo.available(protocol="lake")}
    models = {name: (learner, learner.zoo) for name, learner in found.items()}
    if (SHIPPED_BASELINES / BASELINE_FILE).is_file():
        learner, record = read_baseline(SHIPPED_BASELINES / BASELINE_FILE)
        models["pretrain-finetune-lake"] = (learner.to(device), {k: v for k, v in record.items() if k != "state"})
    return models


def stored_hausdorff(runs: list[LakeRun]) -> ChallengeResult:
    """The official baseline's result on the 105x105 drawings, read from its stored picks (checked against the
    answers): it takes about 30 s to compute, so the chapter recomputes one run live and reads the rest."""
    return ChallengeResult.from_record(json.loads(Path(STORED_HAUSDORFF).read_text()), runs)


def hausdorff_run(run_105: LakeRun) -> Tensor:
    """[20] the modified-Hausdorff pick of each test drawing of one run (original 105x105 drawings)."""
    return hausdorff_predictions([run_105])[0]


def budget(record: dict) -> str:
    """'6,000 iterations, 1,120 s' or '3,000 batches, 480 s': what a model's result cost."""
    if "pretraining" in record:
        done = record["pretraining"]
        return f"{done['iterations']:,} batches of 64, {done['seconds']:,.0f} s"
    seconds = f", {record['train_seconds']:,.0f} s" if record.get("train_seconds") else ""
    return f"{record['iteration']:,} iterations{seconds}"


# --- pictures -------------------------------------------------------------------------------------------------


def show_run(run: LakeRun, test: int = 0, size: float = 0.9) -> Figure:
    """What a person in Lake et al.'s study saw: one test drawing, and the 20 training drawings to choose from."""
    fig = plt.figure(figsize=(size * 11.5, size * 2.9))
    grid = fig.add_gridspec(2, 11, width_ratios=[1.4, *[1] * 10])
    show_image(fig.add_subplot(grid[:, 0]), run.test[test], f"test drawing {test + 1}")
    for j, image in enumerate(run.train):
        show_image(fig.add_subplot(grid[j // 10, 1 + j % 10]), image, str(j + 1))
    fig.suptitle(f"{run.name}, alphabet {run.alphabet}: which of the 20 shows the same character?", fontsize=10)
    return fig


def outline(ax: plt.Axes, colour: str) -> None:
    ax.add_patch(Rectangle((0, 0), 1, 1, transform=ax.transAxes, fill=False, edgecolor=colour, linewidth=3))


def plot_picks(run: LakeRun, picks: Mapping[str, Tensor], size: float = 0.62) -> Figure:
    """The run's 20 test drawings (top row) and, below each, the training drawing each model picked: green when it
    shows the same character, red when not (the right one is then drawn small in the corner)."""
    names = list(picks)
    fig, axes = plt.subplots(1 + len(names), 20, figsize=(size * 20, size * 1.3 * (1 + len(names))), squeeze=False)
    for j in range(20):
        show_image(axes[0, j], run.test[j], str(j + 1))
        for row, name in enumerate(names, start=1):
            pick = int(picks[name][j])
            show_image(axes[row, j], run.train[pick])
            right = pick == int(run.answer[j])
            outline(axes[row, j], RIGHT if right else WRONG)
            if not right:
                inset = axes[row, j].inset_axes([0.6, 0.6, 0.4, 0.4])
                show_image(inset, run.train[int(run.answer[j])])
        for row, name in enumerate(names, start=1):
            errors = int((picks[name].cpu() != run.answer).sum())
            axes[row, 0].set_ylabel(f"{name}\n{errors} wrong", fontsize=7, rotation=0, ha="right", va="center")
    axes[0, 0].set_ylabel("test", fontsize=7, rotation=0, ha="right", va="center")
    fig.suptitle(f"{run.name} ({run.alphabet}): each model's pick for each test drawing", fontsize=10)
    fig.tight_layout()
    return fig


def plot_errors(results: list[ChallengeResult], published: tuple[Reference, ...] = PUBLISHED) -> Figure:
    """Error rates on the 400 test drawings with 95% Wilson intervals (ours, solid) beside published figures
    (hatched; their sources are in the table below the figure)."""
    rows = [(r.who, r.error, r.interval, False) for r in results]
    rows += [(f"{p.who} (published)", p.error, None, True) for p in published]
    rows.sort(key=lambda row: row[1])
    fig, ax = plt.subplots(figsize=(8, 0.42 * len(rows) + 1))
    for y, (_, error, interval, is_published) in enumerate(rows):
        ax.barh(y, error, color="#bbbbbb" if is_published else "#1f77b4", hatch="//" if is_published else None)
        if interval is not None:
            ax.errorbar(error, y, xerr=[[error - interval[0]], [interval[1] - error]], color="black", capsize=3)
        ax.text(error + 0.6, y + 0.25, f"{error:.1f}%", fontsize=8)
    ax.set_yticks(range(len(rows)), [row[0] for row in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("errors on the 20 runs (%), lower is better")
    ax.set_title("Lake's one-shot challenge: 20 runs x 20 test drawings", fontsize=10)
    fig.tight_layout()
    return fig


def plot_within_between(records: Mapping[str, dict]) -> Figure:
    """Each model's accuracy on random 20-way tasks within one evaluation alphabet (the runs' kind) and across
    alphabets (the kind most papers report), with 95% intervals over tasks."""
    names = [name for name, r in records.items() if "between_alphabet" in r]
    fig, ax = plt.subplots(figsize=(7, 3.4))
    width = 0.38
    for i, name in enumerate(names):
        within, between = records[name]["result"], records[name]["between_alphabet"]
        for offset, part, colour in ((-width / 2, within, "#1f77b4"), (width / 2, between, "#ff7f0e")):
            ax.bar(i + offset, part["accuracy"], width, yerr=part["ci95"], color=colour, capsize=3)
    ax.bar(0, 0, color="#1f77b4", label="within one alphabet (like the runs)")
    ax.bar(0, 0, color="#ff7f0e", label="across alphabets (most papers)")
    ax.set_xticks(range(len(names)), names, fontsize=8)
    low = min(min(records[n]["result"]["accuracy"], records[n]["between_alphabet"]["accuracy"]) for n in names)
    ax.set_ylim(max(0, low - 10), 100)
    ax.set_ylabel("accuracy on 20-way 1-shot tasks (%)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    fig.tight_layout()
    return fig


def picks_panel(runs: list[LakeRun], picks: Mapping[str, Tensor], run: int = 1) -> Panel:
    """Live: choose a run (1-20) and a model, and see its pick for each of the run's test drawings.

    picks: name -> [20 runs, 20] training drawing chosen for each test drawing."""
    names = list(picks)

    def draw(run: int, model: str) -> tuple[Figure, str]:
        chosen = names if model == "all" else [model]
        figure = plot_picks(runs[run - 1], {name: picks[name][run - 1] for name in chosen})
        wrong = {name: int((picks[name][run - 1] != runs[run - 1].answer).sum()) for name in chosen}
        return figure, ", ".join(f"{name}: {n} of 20 wrong" for name, n in wrong.items())

    return Panel(draw, {"run": (1, len(runs), run), "model": ["all", *names]}, title="Each model's picks, run by run")


# --- tables and observations ----------------------------------------------------------------------------------


def error_table(results: list[ChallengeResult], records: Mapping[str, dict], published=PUBLISHED) -> Markdown:
    """Markdown: ours with their intervals and budgets, then the published figures with their sources."""
    lines = ["| who | errors (%) | 95% interval | trained on / budget | source |", "|---|---|---|---|---|"]
    for r in sorted(results, key=lambda r: r.error):
        low, high = r.interval
        record = records.get(r.who)
        trained = f"background set, {budget(record)}" if record else "no training"
        lines.append(f"| {r.who} | {r.error:.2f} | {low:.1f}-{high:.1f} | {trained} | measured here |")
    for p in published:
        lines.append(f"| {p.who} | {p.error:g} | | | {p.source} |")
    return Markdown("\n".join(lines))


def observations(results: list[ChallengeResult], records: Mapping[str, dict], live_seconds: float) -> Markdown:
    """'What to observe' as sentences with the numbers of the tables above."""
    best = min((r for r in results if r.who in records), key=lambda r: r.error, default=None)
    lines = []
    if best is not None:
        low, high = best.interval
        gap = best.error - HUMANS.error
        lines.append(f"- **Best model here:** {best.who}, {best.error:.2f}% errors (95% interval {low:.1f}-{high:.1f}) "
                     f"after {budget(records[best.who])} on a CPU. People make {HUMANS.error}%: "
                     f"{'within' if low <= HUMANS.error else f'{gap:.1f} points above'} people's figure"
                     f"{'' if low <= HUMANS.error else ', and the interval excludes it'}. Koch et al.'s Siamese "
                     f"network made {KOCH.error:.1f}%, trained on more alphabets with affine distortions.")  # fmt: skip
    pixels = next((r for r in results if r.who == "pixel-nn"), None)
    hausdorff = next((r for r in results if r.who == "modified Hausdorff distance"), None)
    if pixels is not None and hausdorff is not None:
        lines.append(f"- **No learning:** nearest pixels {pixels.error:.2f}% errors (chance: 95%), the official "
                     f"Hausdorff baseline {hausdorff.error:.2f}% ({int(hausdorff.wrong.sum())} of "
                     f"{hausdorff.n_test}; the official demo prints {HAUSDORFF_DEMO.error}%).")  # fmt: skip
    both = {n: r for n, r in records.items() if "between_alphabet" in r}
    if both:
        parts = [f"{n} {r['result']['accuracy']:.1f} within vs {r['between_alphabet']['accuracy']:.1f} across"
                 for n, r in both.items()]  # fmt: skip
        lines.append("- **Within against across alphabets** (random 20-way tasks on the evaluation alphabets, "
                     "% correct): " + "; ".join(parts) + ". Characters of one alphabet share strokes and style, "
                     "so telling them apart is harder: the 2019 progress report's point.")  # fmt: skip
    if results:
        hard = sorted(range(len(results[0].runs)), key=lambda i: -sum(float(r.wrong[i].sum()) for r in results))[:3]
        lines.append("- **Hardest runs for all contestants together:** "
                     + ", ".join(f"{results[0].runs[i]}" for i in hard) + ".")  # fmt: skip
    lines.append(f"- This run took {live_seconds:.0f} s; every figure above is measured in it or read from the shipped "
                 "record named beside it (the published ones from their sources).")  # fmt: skip
    return Markdown("\n".join(lines))


# --- exercise checks ------------------------------------------------------------------------------------------

EXAMPLE_WRONG = torch.zeros(20, 20, dtype=torch.bool)
EXAMPLE_WRONG[0, :5] = True  # 5 wrong in run 1
EXAMPLE_WRONG[7, :3] = True  # 3 wrong in run 8
EXAMPLE_WRONG[19, :1] = True  # 1 wrong in run 20


def check_error_rate(error_rate: Callable | None) -> bool:
    """error_rate(wrong) -> percent: wrong is [20 runs, 20 test drawings] bool; the official rule is errors over
    all 400 test drawings."""
    answered, value = attempt("error rate", error_rate, "count the True entries and divide by all entries",
                              EXAMPLE_WRONG.clone())  # fmt: skip
    if not answered:
        return False
    value = float(value)
    if abs(value - 100 * 9 / 400) < 1e-6:
        return say(True, "2.25%: 9 errors over 400 test drawings (also the mean of the 20 runs' error rates)")
    if abs(value - 9 / 400) < 1e-6:
        return say(False, f"{value:g} is a fraction: the challenge reports percent")
    per_run = {100 * int(row.sum()) / 20 for row in EXAMPLE_WRONG} | {100 * 9 / 20}  # one run's rate, or sum / 20
    if any(abs(value - v) < 1e-6 for v in per_run):
        return say(False, f"{value:g}%: divide by all 400 test drawings, not by one run's 20")
    return say(False, f"{value:g}: expected the percentage of wrong test drawings over all 20 runs")


def check_wilson(interval: tuple[float, float] | None) -> bool:
    """The 95% Wilson interval (percent) of 12 errors in 400 test drawings."""
    if interval is None:
        return say(False, "Wilson interval: not answered yet. Use wilson_interval(errors, n) or its formula.")
    low, high = (float(v) for v in interval)
    expected = wilson_interval(12, 400)
    p = 12 / 400
    normal = (100 * (p - 1.96 * math.sqrt(p * (1 - p) / 400)), 100 * (p + 1.96 * math.sqrt(p * (1 - p) / 400)))
    if max(abs(low - normal[0]), abs(high - normal[1])) < 0.01:
        return say(False, f"({low:.2f}, {high:.2f}) is the normal approximation, symmetric around 3%: near 0 errors "
                          "it is too narrow on the low side; use the Wilson score interval")  # fmt: skip
    if max(abs(low - expected[0]), abs(high - expected[1])) > 0.02:
        return say(False, f"expected ({expected[0]:.2f}, {expected[1]:.2f}) percent")
    return say(True, f"({expected[0]:.2f}, {expected[1]:.2f}): not symmetric around 3.00, and wider above it")


def check_mhd(mhd: Callable | None) -> bool:
    """mhd(a, b) -> float: the modified Hausdorff distance of point sets a [n, 2] and b [m, 2] (Dubuisson & Jain):
    the larger of the two mean distances from each point to the nearest point of the other set."""
    a = torch.tensor([[0.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    b = torch.tensor([[0.0, 1.0], [1.0, 1.0], [5.0, 1.0]], dtype=torch.float64)
    answered, value = attempt("modified Hausdorff", mhd, "d = torch.cdist(a, b); two means of row and column minima",
                              a, b)  # fmt: skip
    if not answered:
        return False
    expected = float(modified_hausdorff([a], [b])[0, 0])  # max(1, (1 + 1 + sqrt(17)) / 3)
    value = float(value)
    if abs(value - 1.0) < 1e-6:
        return say(False, "1.0 is only a -> b; b's far point (5, 1) must count too: take the larger direction")
    if abs(value - float(torch.cdist(a, b).min(0).values.max())) < 1e-6:
        return say(False, f"{value:.3f} is the classic Hausdorff distance (a maximum); the modified one averages")
    if abs(value - expected) > 1e-6:
        return say(False, f"{value:.3f}: expected {expected:.3f}")
    return say(True, f"{expected:.3f}: the mean over b's points, (1 + 1 + sqrt(17)) / 3, is the larger direction")


__all__ = [
    "KOCH",
    "PUBLISHED",
    "budget",
    "challengers",
    "check_error_rate",
    "check_mhd",
    "check_wilson",
    "error_table",
    "hausdorff_run",
    "observations",
    "picks_panel",
    "plot_errors",
    "plot_picks",
    "plot_within_between",
    "report",
    "setup",
    "show_run",
    "stored_hausdorff",
]
