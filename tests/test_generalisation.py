"""`generalisation`: accuracy against the test task shape, and the drop from `paper` to `lake`."""

from __future__ import annotations

import pytest
import torch

from mlscratch import generalisation
from mlscratch.algorithms import build
from mlscratch.baselines import PixelNearestNeighbour
from mlscratch.cli import main
from mlscratch.compare import entries
from mlscratch.experiment import Settings, load_data

torch.set_num_threads(1)


def test_shape_sweep_skips_fixed_output_layers_and_the_cli_prints_it(tiny_zoo_model, capsys):
    splits = load_data(Settings(dataset="synthetic", image_size=16))
    learners = {"maml": build("maml", n_way=3, image_size=16, width=4), "pixel-nn": PixelNearestNeighbour()}
    results = generalisation.shape_sweep(learners, splits["test"], [(3, 1), (5, 2)], queries=2, tasks=4)
    assert [(r.name, r.ways, r.shots, r.accuracy is None) for r in results] == [
        ("maml", 3, 1, False), ("pixel-nn", 3, 1, False), ("maml", 5, 2, True), ("pixel-nn", 5, 2, False)
    ]  # fmt: skip
    assert results[2].note == "3-way output layer"
    assert generalisation.plot_shapes(results, ways=3, shots=1).axes[0].get_xlabel() == "shots at test (3 ways)"
    assert main(["compare", "--algos", tiny_zoo_model, "--ways", "3", "4", "--shots", "1", "--tasks", "4",
                 "--queries", "2"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "4-way  1-shot     -   (3-way output layer)" in out and "3-way  1-shot" in out


def test_domain_shift_drop_and_its_unpaired_ci():
    def row(name, accuracy, ci):
        return entries.Entry(name, name, accuracy, ci, [], 0.0, 0)

    shifts = generalisation.domain_shift([row("a", 90.0, 3.0), row("b", 80.0, 1.0)], [row("a", 86.0, 4.0)])
    assert len(shifts) == 1 and shifts[0].drop == 4.0 and shifts[0].drop_ci95 == 5.0
    assert "+4.00 ± 5.00" in generalisation.format_shift(shifts)


def test_turn_effect_pairs_the_same_tasks_upright_and_turned():
    test = load_data(Settings(dataset="synthetic", image_size=16))["test"]  # the paper split turns its classes
    assert test.rotate
    torch.manual_seed(0)
    learners = {"maml": build("maml", n_way=3, image_size=16, width=4).eval()}
    (row,) = generalisation.turn_effect(learners, test, 3, 1, 2, tasks=6)
    assert row.difference == pytest.approx(row.upright - row.turned, abs=1e-4)
    assert "upright - turned (paired)" in generalisation.format_turns([row])
    pixels = generalisation.turn_effect({"pixel-nn": PixelNearestNeighbour()}, test, 3, 1, 2, tasks=6)[0]
    assert pixels.difference == pytest.approx(pixels.upright - pixels.turned, abs=1e-4)  # a learner without weights
