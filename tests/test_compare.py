"""`compare`: the same test tasks for everyone, paired differences computed right, clear errors."""

from __future__ import annotations

import math
import re

import pytest
import torch

from mlscratch import experiment, zoo
from mlscratch.algorithms import build
from mlscratch.baselines import PixelNearestNeighbour
from mlscratch.cli import main
from mlscratch.compare import entries, paired, race, shipped_baseline, zoo_table
from mlscratch.data import load_splits
from mlscratch.errors import ConfigError, DataError
from mlscratch.evaluation import evaluate
from mlscratch.experiment import Settings, evaluation_tasks, load_data

torch.set_num_threads(1)


def test_paired_difference_matches_a_hand_computation():
    a, b = [100.0, 80.0, 60.0, 100.0], [80.0, 80.0, 40.0, 60.0]
    mean, ci = paired.paired_difference(a, b)
    diffs = [20.0, 0.0, 20.0, 40.0]  # mean 20, sample std sqrt(((0)^2 + 20^2 + 0^2 + 20^2) / 3)
    assert mean == pytest.approx(20.0)
    assert ci == pytest.approx(3.182 * math.sqrt(800 / 3) / math.sqrt(4))  # 4 tasks: Student's t, 3 dof
    assert paired.paired_difference(diffs, diffs) == (0.0, 0.0)
    with pytest.raises(ConfigError, match="same tasks"):
        paired.paired_difference([1.0], [1.0, 2.0])


def test_every_algorithm_sees_identical_task_tensors():
    splits = load_data(Settings(dataset="synthetic", image_size=16))
    seen = {}
    for algo in ("maml", "metanet-embedding", "pixel-nn"):
        learner = PixelNearestNeighbour() if algo == "pixel-nn" else build(algo, n_way=3, image_size=16, width=4)
        calls = seen.setdefault(algo, [])
        original = learner.predict

        def recording(sx, sy, qx, calls=calls, original=original):
            calls.append((sx.clone(), sy.clone(), qx.clone()))
            return original(sx, sy, qx)

        learner.predict = recording
        entries.score(learner, splits["test"], ways=3, shots=1, queries=2, tasks=6)
    # the six test tasks (one batch), a warm-up task and LATENCY_TASKS timed one at a time ([N*K] = 3 support images
    # each), then one batch of a single task to measure memory
    assert [call[0].shape[0] for call in seen["maml"]] == [6, 3, 3, 3, 3, 1]
    for other in ("metanet-embedding", "pixel-nn"):
        for first, second in zip(seen["maml"], seen[other], strict=True):
            for x, y in zip(first, second, strict=True):
                assert torch.equal(x, y)


def test_zoo_comparison_and_its_errors(tiny_zoo_model, capsys):
    rows = zoo_table.compare_zoo([tiny_zoo_model], ways=3, shots=1, queries=2, tasks=8)
    assert len(rows[0].task_accuracies) == 8 and rows[0].paper == 50.0 and rows[0].peak_bytes > 0
    paired.add_differences(rows, tiny_zoo_model)
    assert rows[0].difference == 0.0
    with pytest.raises(ConfigError, match="3-way output layer and cannot be tested 5-way"):
        zoo_table.compare_zoo([tiny_zoo_model], ways=5, tasks=4)
    with pytest.raises(ConfigError, match="unknown algorithm or zoo model"):
        zoo_table.compare_zoo(["no-such"], tasks=4)
    with pytest.raises(DataError, match="zoo train maml-20w1s"):
        zoo_table.compare_zoo(["maml-20w1s"], ways=20, tasks=4)
    assert main(["compare", "--algos", "no-such", "--tasks", "4"]) == 2
    assert "unknown algorithm" in capsys.readouterr().err
    figure = entries.plot(rows)
    assert figure.axes[0].get_ylabel() == "test accuracy (%)"


def test_scratch_comparison_trains_each_for_the_same_budget():
    rows = race.compare_scratch(["maml", "metanet-embedding"], seconds=0.5, seeds=2, ways=3, queries=2, tasks=4,
                                   data={"dataset": "synthetic", "image_size": 16}, width=4)  # fmt: skip
    for row in rows:
        assert len(row.seed_accuracies) == 2 and row.iterations >= 1 and row.train_seconds > 0
    table = entries.format_table(paired.add_differences(rows, "maml"), "maml")
    assert "vs maml (paired)" in table and "+0.00 ± 0.00" in table


def test_training_peak_is_one_outer_step_of_the_algorithm_itself_on_a_copy(monkeypatch):
    splits = experiment.load_data(
        race.scratch_settings("reptile", 3, 1, 2, 0, {"dataset": "synthetic", "image_size": 16})
    )
    measured = []
    monkeypatch.setattr(race, "peak_memory", lambda fn: measured.append(fn) or 1)
    learner, _, _, peak = race.train_scratch("reptile", splits, 0.3, 0, (3, 1, 2),
                                                {"dataset": "synthetic", "image_size": 16}, False, width=4)  # fmt: skip
    before = {name: p.clone() for name, p in learner.state_dict().items()}
    calls = []
    monkeypatch.setattr(type(learner), "outer_step", lambda self, *args: calls.append(self) or {})
    measured[0]()  # what was measured: Reptile's outer step (not MAML's meta_loss), on a copy of the learner
    assert peak == 1 and len(calls) == 1 and calls[0] is not learner
    for name, tensor in learner.state_dict().items():
        assert torch.equal(tensor, before[name]), name


@pytest.mark.parametrize("protocol", ["paper", "lake"])
def test_train_and_test_classes_are_disjoint_under_both_protocols(protocol):
    splits = load_splits("synthetic", protocol, image_size=16)
    entries.check_disjoint(splits)  # the check compare_scratch runs before training
    names = {split: set(part.names) for split, part in splits.items()}
    assert names["test"] and not names["train"] & names["test"] and not names["val"] & names["test"]
    if protocol == "lake":  # whole alphabets are new at test
        alphabets = {split: {n.split("/")[0] for n in ns} for split, ns in names.items()}
        assert not alphabets["train"] & alphabets["test"]
    leaky = dict(splits, test=splits["train"].subset([0, 1]))
    with pytest.raises(ConfigError, match="train and test share 2 characters"):
        entries.check_disjoint(leaky)


def test_lake_keeps_alphabets_apart_even_when_characters_differ():
    splits = load_splits("synthetic", "lake", image_size=16)
    test = splits["test"].subset([0])
    test.names = [splits["train"].names[0].split("/")[0] + "/character99"]  # a new character of a seen alphabet
    with pytest.raises(ConfigError, match="train and test share 1 alphabets"):
        entries.check_disjoint(dict(splits, test=test))


def test_real_omniglot_protocols_are_disjoint(omniglot):
    for protocol in ("paper", "lake"):
        entries.check_disjoint(load_splits("omniglot", protocol, root=omniglot.source))


def test_the_zoos_stored_results_are_what_scoring_again_gives(tiny_zoo_model):
    stored = zoo_table.compare_zoo([tiny_zoo_model], ways=3, shots=1, queries=2, tasks=8)
    again = zoo_table.compare_zoo([tiny_zoo_model], ways=3, shots=1, queries=2, tasks=8, remeasure=True)
    assert stored[0].task_accuracies == pytest.approx(again[0].task_accuracies, abs=1e-3)  # stored to 3 decimals
    assert len(set(again[0].task_accuracies)) > 1  # tasks of different difficulty: the order is checked too
    record = zoo.load(tiny_zoo_model).zoo
    first = zoo_table.compare_zoo([tiny_zoo_model], ways=3, shots=1, queries=2, tasks=5, remeasure=True)
    assert zoo_table.stored_accuracies(record, 3, 1, 2, 5) == record["result"]["task_accuracies"][:5]
    assert first[0].task_accuracies == pytest.approx(again[0].task_accuracies[:5], abs=1e-3)  # the first 5 of 8
    assert zoo_table.stored_accuracies(record, 3, 1, 2, 9) is None  # more than the zoo measured
    assert zoo_table.stored_accuracies(record, 3, 2, 2, 8) is None  # another shape
    lake = load_data(Settings(dataset="synthetic", image_size=16, protocol="lake"))
    assert zoo_table.stored_accuracies(record, 3, 1, 2, 8, lake["test"]) is None  # other test classes
    other = zoo_table.compare_zoo([tiny_zoo_model], ways=3, shots=1, queries=2, tasks=8, splits=lake)
    assert other[0].task_accuracies != stored[0].task_accuracies


def test_baselines_are_entries_of_a_scratch_race_on_the_lake_protocol():
    rows = race.compare_scratch(["pixel-nn", "pretrain-finetune"], seconds=0.3, ways=3, queries=2, tasks=4,
                                   data={"dataset": "synthetic", "image_size": 16, "protocol": "lake"})  # fmt: skip
    pixel, pretrained = rows
    assert (pixel.name, pixel.iterations, pixel.train_peak_bytes) == ("pixel-nn", 0, None)
    assert pretrained.iterations >= 1 and pretrained.train_peak_bytes > 0 and len(pretrained.task_accuracies) == 4
    with pytest.raises(ConfigError, match="unknown algorithm 'nearest'.*pixel-nn, pretrain-finetune"):
        race.compare_scratch(["nearest"], seconds=1)


def test_zoo_comparison_includes_the_baselines(monkeypatch, tmp_path):
    monkeypatch.setattr(shipped_baseline, "BASELINE_CACHE", tmp_path)
    splits = load_data(Settings(dataset="synthetic", image_size=16))
    shape = {"ways": 3, "queries": 2, "tasks": 4, "pretrain_steps": 2, "splits": splits}
    rows = zoo_table.compare_zoo(["pixel-nn", "pretrain-finetune"], **shape)
    assert [r.algo for r in rows] == ["pixel-nn", "pretrain-finetune"] and rows[1].iterations == 2
    (kept,) = tmp_path.iterdir()
    assert kept.name == "pretrain-finetune-synthetic-paper0-16px-2steps.pt"
    assert all(v.dtype != torch.float32 for v in torch.load(kept, weights_only=True)["state"].values())  # float16
    monkeypatch.setattr(
        shipped_baseline, "pretrain", lambda *a, **k: pytest.fail("pretrained again instead of reading")
    )
    cached = zoo_table.compare_zoo(["pretrain-finetune"], **shape)
    assert cached[0].task_accuracies == rows[1].task_accuracies  # the kept float16 weights are what was tested


def test_a_damaged_baseline_file_names_the_file_and_the_fix(monkeypatch, tmp_path):
    monkeypatch.setattr(shipped_baseline, "BASELINE_CACHE", tmp_path)
    splits = load_data(Settings(dataset="synthetic", image_size=16))
    (tmp_path / shipped_baseline.baseline_file("pretrain-finetune", splits, 2)).write_bytes(b"half a file")
    with pytest.raises(DataError, match="pretrain-finetune-synthetic.*unreadable.*zoo train pretrain-finetune"):
        shipped_baseline.cached_baseline("pretrain-finetune", splits, 2)


def test_a_shipped_baseline_is_read_with_its_accuracy_instead_of_pretraining(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(shipped_baseline, "SHIPPED_BASELINES", tmp_path / "shipped")
    monkeypatch.setattr(shipped_baseline, "BASELINE_CACHE", tmp_path / "cache")
    splits = load_data(Settings(dataset="synthetic", image_size=16))
    record = shipped_baseline.ship_baseline(splits, steps=3, tasks=4)
    assert record["pretraining"]["iterations"] == 3 and record["result"]["n_tasks"] == 4
    monkeypatch.setattr(
        shipped_baseline, "pretrain", lambda *a, **k: pytest.fail("pretrained again instead of reading")
    )
    learner, pretraining = shipped_baseline.cached_baseline("pretrain-finetune", splits, 3)
    accuracies, _, _ = entries.score(learner, splits["test"], 5, 1, 15, 4)
    assert accuracies == record["result"]["task_accuracies"]
    assert pretraining == {**record["pretraining"], "result": record["result"]}  # with its measurement
    assert not (tmp_path / "cache").exists()
    assert main(["zoo", "list"]) == 0
    row = re.search(r"^pretrain-finetune +5-way 1-shot +([\d.]+) ± .*3 batches", capsys.readouterr().out, re.M)
    assert row and float(row[1]) == pytest.approx(record["result"]["accuracy"], abs=0.01)


@pytest.mark.slow
def test_the_shipped_baseline_re_measures_as_recorded(omniglot_root):
    """The package's pretrain-finetune (3,000 batches) loads without pretraining and scores what its record says."""
    splits = load_data(Settings(), root=str(omniglot_root))
    path = shipped_baseline.SHIPPED_BASELINES / shipped_baseline.baseline_file(
        "pretrain-finetune", splits, shipped_baseline.PRETRAIN_STEPS
    )
    assert path.is_file(), f"{path} is missing: python -m mlscratch zoo train pretrain-finetune"
    learner, record = shipped_baseline.read_baseline(path)
    recorded = record["result"]["task_accuracies"][:50]
    accuracies, _, _ = entries.score(learner, splits["test"], 5, 1, 15, 50)
    assert sum(accuracies) / 50 == pytest.approx(sum(recorded) / 50, abs=0.5)
    assert record["pretraining"]["iterations"] == shipped_baseline.PRETRAIN_STEPS and record["result"]["accuracy"] > 90


def test_cli_errors_name_the_fix(capsys):
    assert main(["compare", "--protocol", "lake", "--tasks", "4"]) == 2
    assert "use --source scratch --protocol lake" in capsys.readouterr().err
    assert main(["compare", "--source", "scratch", "--ways", "5", "20", "--tasks", "4"]) == 2
    assert "use --source zoo" in capsys.readouterr().err


def test_verdicts_call_a_difference_inside_the_paired_ci_no_detectable_difference():
    def row(name, accuracies):
        return entries.Entry(name, name, 0.0, 0.0, accuracies, 0.0, 0)

    rows = [row("ref", [80.0, 60.0, 80.0, 60.0]), row("same", [80.0, 80.0, 60.0, 60.0]),
            row("up", [100.0, 80.0, 100.0, 80.0]), row("down", [60.0, 20.0, 60.0, 40.0])]  # fmt: skip
    lines = paired.verdicts(rows, "ref")
    # 4 tasks: Student's t (3.182), not 1.96: +-3.182 * 16.33 / 2
    assert (
        lines[0] == "same vs ref: +0.00 ± 25.98 points, no detectable difference (the paired 95% interval includes 0)"
    )
    assert "+20.00 ± 0.00 points, better" in lines[1] and lines[2].startswith("down vs ref") and "worse" in lines[2]


def test_cli_scratch_race_writes_a_record_that_loads_back(omniglot_root, tmp_path, capsys):
    path = tmp_path / "race.json"
    argv = ["compare", "--source", "scratch", "--algos", "pixel-nn", "--seconds", "0.1", "--seeds", "2"]
    argv += ["--tasks", "4", "--protocol", "paper", "lake", "--root", str(omniglot_root), "--json", str(path)]
    assert main(argv) == 0
    assert "pixel-nn" in capsys.readouterr().out
    rows, record = race.load_race(path)
    assert set(rows) == {"paper", "lake"} and rows["paper"][0].name == "pixel-nn"
    assert len(rows["paper"][0].seed_accuracies) == 2 and record["machine"]["cores"] >= 1
    assert record["settings"]["seeds"] == 2 and "shift" in record


def test_an_upright_race_tests_upright_too():
    data = {"dataset": "synthetic", "image_size": 16, "rotate": False}
    (row,) = race.compare_scratch(["pixel-nn"], 0.1, 1, ways=3, shots=1, queries=2, tasks=6, data=data)
    test = load_data(Settings(dataset="synthetic", image_size=16))["test"]
    upright = evaluate(PixelNearestNeighbour(), evaluation_tasks(test, 3, 1, 2, upright=True), 6, per_step=False)
    assert row.accuracy == pytest.approx(upright.accuracy, abs=1e-6)
