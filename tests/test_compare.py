"""`compare`: the same test tasks for everyone, paired differences computed right, clear errors."""

from __future__ import annotations

import math

import pytest
import torch

from mlscratch import compare, zoo
from mlscratch.algorithms import build
from mlscratch.cli import main
from mlscratch.errors import ConfigError, DataError
from mlscratch.experiment import Settings, load_data
from mlscratch.zoo.recipes import Recipe

torch.set_num_threads(1)


def test_paired_difference_matches_a_hand_computation():
    a, b = [100.0, 80.0, 60.0, 100.0], [80.0, 80.0, 40.0, 60.0]
    mean, ci = compare.paired_difference(a, b)
    diffs = [20.0, 0.0, 20.0, 40.0]  # mean 20, sample std sqrt(((0)^2 + 20^2 + 0^2 + 20^2) / 3)
    assert mean == pytest.approx(20.0)
    assert ci == pytest.approx(1.96 * math.sqrt(800 / 3) / math.sqrt(4))
    assert compare.paired_difference(diffs, diffs) == (0.0, 0.0)
    with pytest.raises(ConfigError, match="same tasks"):
        compare.paired_difference([1.0], [1.0, 2.0])


def test_every_algorithm_sees_identical_task_tensors():
    splits = load_data(Settings(dataset="synthetic", image_size=16))
    seen = {}
    for algo in ("maml", "metanet-embedding"):
        learner = build(algo, n_way=3, image_size=16, width=4)
        calls = seen.setdefault(algo, [])
        original = learner.predict

        def recording(sx, sy, qx, calls=calls, original=original):
            calls.append((sx.clone(), sy.clone(), qx.clone()))
            return original(sx, sy, qx)

        learner.predict = recording
        compare.score(learner, splits["test"], ways=3, shots=1, queries=2, tasks=6)
    for first, second in zip(seen["maml"], seen["metanet-embedding"], strict=True):
        for x, y in zip(first, second, strict=True):
            assert torch.equal(x, y)


@pytest.fixture
def tiny_zoo_model(tmp_path, monkeypatch):
    settings = Settings(algo="maml", hparams={"width": 4}, dataset="synthetic", image_size=16, ways=3, queries=1,
                        eval_queries=2, meta_batch=2, iterations=2, val_tasks=4, eval_tasks=8)  # fmt: skip
    zoo.add(Recipe("tiny-compare", settings, 50.0, "a test"))
    monkeypatch.setattr(zoo.store, "WEIGHTS", tmp_path / "weights")
    zoo.train("tiny-compare", checkpoint_folder=tmp_path / "runs", progress=False)
    yield "tiny-compare"
    del zoo.RECIPES["tiny-compare"]


def test_zoo_comparison_and_its_errors(tiny_zoo_model, capsys):
    rows = compare.compare_zoo([tiny_zoo_model], ways=3, shots=1, queries=2, tasks=8)
    assert len(rows[0].task_accuracies) == 8 and rows[0].paper == 50.0 and rows[0].peak_bytes > 0
    compare.add_differences(rows, tiny_zoo_model)
    assert rows[0].difference == 0.0
    with pytest.raises(ConfigError, match="3-way output layer and cannot be tested 5-way"):
        compare.compare_zoo([tiny_zoo_model], ways=5, tasks=4)
    with pytest.raises(ConfigError, match="unknown algorithm or zoo model"):
        compare.compare_zoo(["no-such"], tasks=4)
    with pytest.raises(DataError, match="zoo train maml-20w1s"):
        compare.compare_zoo(["maml-20w1s"], ways=20, tasks=4)
    assert main(["compare", "--algos", "no-such", "--tasks", "4"]) == 2
    assert "unknown algorithm" in capsys.readouterr().err
    figure = compare.plot(rows)
    assert figure.axes[0].get_ylabel() == "test accuracy (%)"


def test_scratch_comparison_trains_each_for_the_same_budget():
    rows = compare.compare_scratch(["maml", "metanet-embedding"], seconds=0.5, seeds=2, ways=3, queries=2, tasks=4,
                                   data={"dataset": "synthetic", "image_size": 16}, width=4)  # fmt: skip
    for row in rows:
        assert len(row.seed_accuracies) == 2 and row.iterations >= 1 and row.train_seconds > 0
    table = compare.format_table(compare.add_differences(rows, "maml"), "maml")
    assert "vs maml (paired)" in table and "+0.00 ± 0.00" in table
