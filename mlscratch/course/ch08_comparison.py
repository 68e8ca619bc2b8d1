"""Chapter 08, the comparison: the stored races, the chapter's exercise checks, and "what to observe" written from
this run's numbers (the comparison itself is the library's `mlscratch.compare` and `mlscratch.generalisation`)."""

from __future__ import annotations

import json
import math

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from .. import zoo
from ..compare import race
from ..compare.bn_protocols import BnRow, format_rows, rank_changes
from ..compare.entries import Entry
from ..compare.paired import verdict
from ..evaluation import quantile95
from ..generalisation import ShapeResult, Shift, TurnEffect
from .checks import attempt, say

# What the chapter uses from the course's shared modules, so that it imports the course from this one module.
from .notebook import describe_splits, load_data, report, setup  # noqa: F401

STORED_RACE = race.STORED / "race-5w1s.json"  # `python -m mlscratch compare --source scratch ...`: see its settings
STORED_UPRIGHT = race.STORED / "race-5w1s-upright.json"  # the same race under `paper` with no quarter turns at all
STORED_BN = race.STORED / "bn-5w1s.json"  # python -m mlscratch compare --bn both --tasks 200 --json ...


def stored_race() -> tuple[dict[str, list[Entry]], dict]:
    """The shipped race (rows per protocol) and its record (settings, machine), or ({}, {}) when missing."""
    return race.load_race(STORED_RACE) if STORED_RACE.is_file() else ({}, {})


def stored_upright_race() -> list[Entry]:
    """The stored race's `paper` part rerun with every task upright (training and test), or [] when missing."""
    return race.load_race(STORED_UPRIGHT)[0].get("paper", []) if STORED_UPRIGHT.is_file() else []


def stored_bn() -> tuple[list[BnRow], dict]:
    """The zoo's models under both BatchNorm protocols on the same tasks (rows), and how that was run."""
    if not STORED_BN.is_file():
        return [], {}
    record = json.loads(STORED_BN.read_text())
    return [BnRow(**row) for row in record["rows"]], record


def bn_summary(rows: list[BnRow], record: dict) -> Markdown:
    """The table both ways, then which rows change rank: the confound made visible."""
    changes = rank_changes(rows)
    moved = ", ".join(f"{name} ({t} → {s})" for name, t, s in changes) or "none"
    machine = record.get("machine", {})
    return Markdown(format_rows(rows) + f"\n\nRanks that change when every model is scored the same way: {moved}. "
                    f"{rows[0].n_tasks} fixed test tasks per model and protocol, paired; measured on "
                    f"{machine.get('cpu', 'this machine')} on {record.get('created', '?')}.")  # fmt: skip


def plot_learning_curves(names: list[str]) -> Figure:
    """Validation accuracy against training seconds from each zoo record that kept its curve; a record without one
    shows only its end point (test accuracy, hollow marker). One time axis: the honest race at full length."""
    fig, ax = plt.subplots(figsize=(8, 4))
    ends = []  # (seconds, accuracy, name) of records without a curve
    for name in names:
        if name not in zoo.RECIPES or name not in zoo.available(protocol=None):
            continue
        record = zoo.store.read(name)
        curve = record.get("history") or {}
        if curve.get("val_accuracy"):
            ax.plot(curve["val_seconds"], curve["val_accuracy"], marker="o", label=f"{name} (validation)")
        elif record.get("train_seconds"):
            ends.append((record["train_seconds"], record["result"]["accuracy"], name))
    for k, (seconds, accuracy, name) in enumerate(sorted(ends)):  # labels alternate above and below their point
        ax.scatter([seconds], [accuracy], facecolors="none", edgecolors="black", zorder=3)
        ax.annotate(name.removesuffix("-5w1s"), (seconds, accuracy), fontsize=7, ha="center",
                    xytext=(0, 7 if k % 2 else -11), textcoords="offset points")  # fmt: skip
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("training seconds (one CPU core, as recorded; log scale)")
    ax.set_ylabel("accuracy, 5-way 1-shot (%)")
    ax.set_title("Training curves where the record kept them; hollow: end point only", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def race_summary(record: dict) -> str:
    """One line: how the stored race was run, so its numbers are read with their budget and machine."""
    s, m = record["settings"], record["machine"]
    return (f"stored race: {s['seconds']:g} s of training per algorithm and seed, seeds 0..{s['seeds'] - 1} for every "
            f"algorithm, {s['tasks']} fixed test tasks; run on {m['cpu']} ({m['cores']} cores, {m['torch_threads']} "
            f"torch threads, torch {m['torch']}) on {record['created']}")  # fmt: skip


def seed_interval(row: Entry) -> str:
    """'mean ± CI over seeds (t)', the spread that the task interval leaves out."""
    return f"{row.accuracy:.2f} ± {row.seed_ci95:.2f}" if row.seed_ci95 is not None else f"{row.accuracy:.2f}"


def observations(
    converged: list[Entry], reference: str, race_rows: list[Entry], shapes: list[ShapeResult], shifts: list[Shift],
    seconds: float, seeds: int, bn_rows: list[BnRow] | None = None, turns: list[TurnEffect] | None = None,
    upright_shifts: list[Shift] | None = None,
) -> Markdown:  # fmt: skip
    """'What to observe' as sentences with this run's numbers: every figure comes from the tables above."""
    by_name = {r.name: r for r in converged}
    lines = [
        "**The converged models, paired on the same tasks** (reference: " + reference + ", one training seed "
        "each: a verdict about two algorithms from one seed says nothing about the spread across seeds):"
    ]
    for r in converged:
        if r.name == reference or r.difference is None:
            continue
        budget = f"{r.iterations:,} iterations" if r.iterations else "no training"
        words = verdict(r.difference, r.difference_ci95, "higher", "lower")
        lines.append(f"- {r.name}: {r.accuracy:.2f} ± {r.ci95:.2f}% ({budget}), {r.difference:+.2f} ± "
                     f"{r.difference_ci95:.2f} points: {words}.")  # fmt: skip
    if race_rows:
        leader = max(race_rows, key=lambda r: r.accuracy)
        last = min(race_rows, key=lambda r: r.accuracy)
        lines.append(f"\n**The race** ({seconds:g} s per algorithm, {seeds} seeds each, the same seeds for all): "
                     f"{leader.name} leads with {seed_interval(leader)}% (mean ± 95% interval over seeds, "
                     f"Student's t), {last.name} is last with {seed_interval(last)}%. Seed spreads: "
                     + ", ".join(f"{r.name} {r.seed_spread:.2f}" for r in race_rows if r.seed_spread is not None)
                     + " points (standard deviations), against task intervals of "
                     + ", ".join(f"{r.ci95:.2f}" for r in race_rows) + ": both matter.")  # fmt: skip
    grown = [r for r in shapes if r.accuracy is not None]
    if grown:
        widest = max(r.ways for r in grown)
        at_widest = sorted((r for r in grown if r.ways == widest), key=lambda r: -r.accuracy)
        lines.append(f"\n**Shapes.** At {widest} ways: " + ", ".join(f"{r.name} {r.accuracy:.1f} ± {r.ci95:.1f}%"
                     for r in at_widest) + " (each shape's tasks are the same for every model; differences to "
                     "the reference are paired in the table).")  # fmt: skip
    if shifts:
        lines.append(
            "\n**The shift of domain** (trained and tested within `paper`, then within `lake`; different "
            "test tasks, so the drop's interval is unpaired): "
            + ", ".join(f"{s.name} {s.drop:+.2f} ± {s.drop_ci95:.2f}" for s in shifts)
            + " points (paper − lake)."
        )
    if bn_rows:
        changes = rank_changes(bn_rows)
        lines.append(
            "\n**BatchNorm both ways.** Scored with the other protocol, "
            + ", ".join(
                f"{r.name} moves {r.difference:+.2f} ± {r.difference_ci95:.2f} (support − transductive)"
                for r in bn_rows
            )
            + ". Rows that change rank: "
            + (", ".join(f"{n} {t}→{s}" for n, t, s in changes) or "none")
            + "."
        )
    if turns:
        lines.append(
            "\n**Quarter turns at test** (the same tasks upright and turned, paired): "
            + ", ".join(f"{r.name} {r.difference:+.2f} ± {r.difference_ci95:.2f}" for r in turns)
            + " points upright − turned."
        )
    if upright_shifts:
        lines.append(
            "\n**The shift with everyone upright** (the race rerun under `paper` with no turns, against the "
            "same `lake` rows): "
            + ", ".join(f"{s.name} {s.drop:+.2f} ± {s.drop_ci95:.2f}" for s in upright_shifts)
            + " points (paper − lake)."
        )
    if "pretrain-finetune" in by_name and reference in by_name:
        base, ref = by_name["pretrain-finetune"], by_name[reference]
        if base.train_seconds and ref.train_seconds:
            lines.append(f"\n**Budget.** Pretrain-finetune is {base.difference:+.2f} ± {base.difference_ci95:.2f} "
                         f"points from {reference} after {base.train_seconds:,.0f} s of pretraining, against "
                         f"{ref.train_seconds:,.0f} s of meta-training: {ref.train_seconds / base.train_seconds:.0f}x "
                         "less compute for nearly the same accuracy.")  # fmt: skip
    return Markdown("\n".join(lines))


# --- exercise checks ----------------------------------------------------------------------------------------


def check_t_interval(half_width: float | None) -> bool:
    """The 95% half-width of the mean of the seeds [81.0, 84.0, 79.5] (three training seeds)."""
    seeds = torch.tensor([81.0, 84.0, 79.5], dtype=torch.float64)
    expected = quantile95(3) * seeds.std().item() / math.sqrt(3)
    if half_width is None:
        return say(False, "t interval: not answered yet. Three seeds: Student's t with 2 degrees of freedom, not 1.96.")
    if abs(half_width - 1.96 * seeds.std().item() / math.sqrt(3)) < 1e-3:
        return say(False, f"{half_width:.2f} uses 1.96: with 3 values the t quantile is {quantile95(3)}")
    if abs(half_width - expected) > 1e-2:
        return say(False, f"expected {expected:.2f}: t(0.975, 2 dof) * std / sqrt(3), with Bessel's std")
    return say(True, f"± {expected:.2f}: more than twice the normal approximation's width with three seeds")


def check_paired_verdict(verdict: str | None) -> bool:
    """Paired difference +0.07 ± 0.26 points: 'better', 'worse' or 'no detectable difference'?"""
    if verdict is None:
        return say(False, "paired verdict: not answered yet. Does the interval [-0.19, +0.33] include 0?")
    if verdict.strip().lower() != "no detectable difference":
        return say(False, f"{verdict!r}: the interval includes 0, so the data cannot tell the two apart")
    return say(True, "no detectable difference: not evidence that they are equal, only that 600 tasks cannot tell")


def check_compute_ratio(ratio: float | None, meta_seconds: float, pretrain_seconds: float) -> bool:
    """How many times more training seconds the meta-learner used than the baseline's pretraining."""
    answered, value = attempt("compute ratio", (lambda: ratio) if ratio is not None else None,
                              "divide the meta-learner's training seconds by the baseline's")  # fmt: skip
    if not answered:
        return False
    expected = meta_seconds / pretrain_seconds
    if abs(value - expected) > 0.05 * expected:
        return say(False, f"{value:g}: expected {expected:.1f} ({meta_seconds:,.0f} s / {pretrain_seconds:,.0f} s)")
    return say(True, f"{expected:.1f}x: accuracy has to be read beside what it cost")
