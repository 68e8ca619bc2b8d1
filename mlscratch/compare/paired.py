"""Paired statistics: the per-task difference of two models scored on the same tasks, and verdicts from it."""

from __future__ import annotations

import torch

from ..errors import ConfigError
from ..evaluation import mean_ci95
from .entries import Entry


def paired_difference(a: list[float], b: list[float]) -> tuple[float, float]:
    """Mean and 95% CI of the per-task differences a - b on the same tasks."""
    if len(a) != len(b) or not a:
        raise ConfigError(f"paired differences need results on the same tasks, got {len(a)} and {len(b)}")
    return mean_ci95(torch.tensor(a) - torch.tensor(b))


def add_differences(rows: list[Entry], reference: str) -> list[Entry]:
    """Fill each entry's paired difference to the entry named (or of algorithm) `reference`."""
    match = [r for r in rows if reference in (r.name, r.algo)]
    if not match:
        raise ConfigError(f"reference {reference!r} is not among the compared: {', '.join(r.name for r in rows)}")
    for row in rows:
        row.difference, row.difference_ci95 = paired_difference(row.task_accuracies, match[0].task_accuracies)
    return rows


def verdict(difference: float, ci95: float, better: str = "better", worse: str = "worse", why: bool = True) -> str:
    """The words for a paired difference and its 95% half-width: "no detectable difference" when the interval
    includes 0 (not "a tie": these tasks cannot tell the two apart, which is not evidence that they are equal).
    why=False leaves out the parenthesis that says so (for a table's verdict column)."""
    if abs(difference) <= ci95:
        return "no detectable difference" + (" (the paired 95% interval includes 0)" if why else "")
    return (better if difference > 0 else worse) + (" (the paired 95% interval excludes 0)" if why else "")


def verdicts(rows: list[Entry], reference: str) -> list[str]:
    """One line per entry: its paired difference to `reference`; "no detectable difference" when the paired 95%
    interval includes 0 (not "a tie": the data cannot tell the two apart, which is not evidence they are equal)."""
    lines = []
    for row in add_differences(rows, reference):
        if reference in (row.name, row.algo):
            continue
        words = verdict(row.difference, row.difference_ci95)
        lines.append(f"{row.name} vs {reference}: {row.difference:+.2f} ± {row.difference_ci95:.2f} points, {words}")
    return lines
