"""No stale numbers: a zoo figure quoted in a chapter or the README is the zoo record's, at the digits quoted.

A quote is a zoo model's name (e.g. `maml-5w1s`) followed in the same sentence, before any other model's name, by
an accuracy "97.52 ± 0.28" (or "97.52%"). When a model is retrained, its record changes and every sentence that
still quotes the old figure fails here, naming the file, the model and both numbers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from mlscratch import zoo
from mlscratch.evaluation import mean_ci95

ROOT = Path(__file__).resolve().parents[1]
NAMES = sorted(zoo.available(protocol=None), key=len, reverse=True)
MODEL = re.compile("|".join(re.escape(n) for n in NAMES)) if NAMES else None
FIGURE = re.compile(r"(?<![\d.])(\d{2}\.\d{1,2})(?:\s*±\s*(\d\.\d{1,2}))?\s*%?")


def documents() -> dict[str, str]:
    """README and every chapter's markdown cells (code is not prose: its printed numbers are this run's)."""
    texts = {"README.md": (ROOT / "README.md").read_text(encoding="utf-8")}
    for path in sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        texts[path.name] = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return texts


def quotes(text: str) -> list[tuple[str, str, str | None, str]]:
    """(model, accuracy, ci or None, context) for each figure that follows a model's name in the same sentence."""
    found = []
    for match in MODEL.finditer(text):
        rest = text[match.end() : match.end() + 160]
        rest = re.split(r"(?<=[a-z)`])\.\s|\n\n|\|\s*\n", rest)[0]  # the sentence (or table row) it starts
        other = MODEL.search(rest)
        rest = rest[: other.start()] if other else rest
        rest = rest.split("paper", 1)[0]  # "(paper 98.7)" is the paper's figure, not the record's
        figure = FIGURE.search(rest)
        if figure and not rest[: figure.start()].rstrip().endswith(("+", "-", "−")):
            found.append((match.group(), figure.group(1), figure.group(2), text[match.start() : match.end() + 80]))
    return found


def matches(quoted: str, value: float) -> bool:
    digits = len(quoted.split(".")[1])
    return abs(round(value, digits) - float(quoted)) < 0.5 * 10**-digits + 1e-9


@pytest.mark.parametrize("name", list(documents()))
def test_quoted_zoo_figures_match_the_records(name: str) -> None:
    stale = []
    for model, accuracy, ci, context in quotes(documents()[name]):
        result = zoo.load(model).zoo["result"]
        if not matches(accuracy, result["accuracy"]) or (ci is not None and not matches(ci, result["ci95"])):
            stale.append(f"{model}: quoted {accuracy}{' ± ' + ci if ci else ''}, record "
                         f"{result['accuracy']:.2f} ± {result['ci95']:.2f} ({context!r})")  # fmt: skip
    assert not stale, f"{name} quotes stale zoo figures:\n" + "\n".join(stale)


def test_the_quote_finder_finds_quotes_and_skips_papers_and_differences() -> None:
    text = ("`maml-5w1s` scores 97.52 ± 0.28% (paper 98.7). `protonet-5w1s` is +0.07 ± 0.26 points from it.\n\n"
            "| maml-5w1s | 5-way 1-shot | 12.34 ± 0.10 |")  # fmt: skip
    found = [(m, a, c) for m, a, c, _ in quotes(text)]
    assert ("maml-5w1s", "97.52", "0.28") in found and ("maml-5w1s", "12.34", "0.10") in found
    assert not any(m == "protonet-5w1s" for m, _, _ in found)  # a paired difference is not the model's figure
    assert matches("97.5", 97.524) and not matches("97.53", 97.524)


@pytest.mark.parametrize("model", NAMES)
def test_a_record_reads_the_same_at_two_digits_as_its_tasks(model: str) -> None:
    """The record's mean ± CI, printed at 2 digits, is what its per-task accuracies give (no double rounding)."""
    result = zoo.load(model).zoo["result"]
    mean, ci = mean_ci95(torch.tensor(result["task_accuracies"], dtype=torch.float64))
    assert f"{result['accuracy']:.2f} ± {result['ci95']:.2f}" == f"{mean:.2f} ± {ci:.2f}"
