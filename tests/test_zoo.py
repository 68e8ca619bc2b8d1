"""The model zoo: shipped weights load and re-measure as recorded; recipes round-trip; bad files say how to fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from mlscratch import zoo
from mlscratch.algorithms import build
from mlscratch.cli import main
from mlscratch.commands import compare as compare_command
from mlscratch.errors import ConfigError, DataError
from mlscratch.experiment import Settings, evaluation_tasks, load_data
from mlscratch.zoo import store
from mlscratch.zoo.recipes import Recipe

VERIFY_TASKS = 50  # per shipped model: keeps the whole check near a minute on 2 CPU cores


@pytest.fixture
def tiny_recipe():
    settings = Settings(
        algo="maml",
        hparams={"width": 4, "test_inner_steps": 2},
        dataset="synthetic",
        image_size=16,
        ways=3,
        shots=1,
        queries=1,
        eval_queries=2,
        meta_batch=2,
        iterations=4,
        val_tasks=5,
        eval_tasks=20,
    )
    recipe = zoo.add(Recipe("tiny-test", settings, None, "a test"))
    yield recipe
    del zoo.RECIPES["tiny-test"]


def test_train_resumes_exports_float16_and_records_the_evaluators_measurement(tiny_recipe, tmp_path: Path):
    folders = {"checkpoint_folder": tmp_path / "runs", "weights_folder": tmp_path / "weights", "progress": False}
    half = zoo.train("tiny-test", until=2, **folders)
    assert half["iteration"] == 2 and half["settings"]["iterations"] == 4
    full = zoo.train("tiny-test", **folders)  # resumes at 2, trains 3 and 4
    assert full["iteration"] == 4 and len(full["result"]["task_accuracies"]) == 20
    record = store.read("tiny-test", tmp_path / "weights")
    assert all(t.dtype in (torch.float16, torch.int64) for t in record["state"].values())
    # the recorded accuracy is what the evaluator measures on the shipped (float16) weights
    learner = build(record["algo"], **record["hparams"])
    learner.load_state_dict(store.expand(record["state"]))
    splits = load_data(tiny_recipe.settings)
    result = zoo.measure(learner, tiny_recipe.settings, 20, splits)
    assert result.accuracy == pytest.approx(record["result"]["accuracy"], abs=1e-3)
    # an uninterrupted run gives the same weights: resume is exact
    straight = zoo.train(
        "tiny-test", checkpoint_folder=tmp_path / "straight", weights_folder=tmp_path / "w2", progress=False
    )
    for name, tensor in record["state"].items():
        torch.testing.assert_close(tensor, store.read("tiny-test", tmp_path / "w2")["state"][name], msg=name)
    assert straight["result"]["task_accuracies"] == full["result"]["task_accuracies"]


def test_a_time_boxed_part_keeps_the_recipes_schedule_and_continues_the_same_run(tmp_path: Path):
    """--until / --seconds stop early without shortening the schedule: Reptile's step anneals to 0 at the recipe's
    last iteration, not at the stop, and the parts together are the uninterrupted run."""
    settings = Settings(algo="reptile", hparams={"width": 4, "inner_steps": 2, "inner_batch": 2, "test_inner_steps": 2},
                        dataset="synthetic", image_size=16, ways=3, shots=1, queries=1, eval_queries=2, meta_batch=2,
                        iterations=4, outer_lr=1.0, val_tasks=5, eval_tasks=10)  # fmt: skip
    zoo.add(Recipe("tiny-reptile", settings, None, "a test"))
    try:
        folders = {"checkpoint_folder": tmp_path / "parts", "weights_folder": tmp_path / "w1", "progress": False}
        assert zoo.train("tiny-reptile", until=2, **folders)["iteration"] == 2
        checkpoint = zoo.read_checkpoint(zoo.checkpoint_path("tiny-reptile", tmp_path / "parts"))
        assert checkpoint["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1.0 * (1 - 2 / 4))
        assert zoo.train("tiny-reptile", seconds=1e-9, **folders)["iteration"] == 3  # the time box: one more
        parts = zoo.train("tiny-reptile", **folders)
        straight = zoo.train("tiny-reptile", checkpoint_folder=tmp_path / "one", weights_folder=tmp_path / "w2",
                             progress=False)  # fmt: skip
        assert parts["iteration"] == straight["iteration"] == 4
        for name, tensor in parts["state"].items():
            torch.testing.assert_close(tensor, straight["state"][name], msg=name)
        with pytest.raises(ConfigError, match="--seconds must be a positive"):
            zoo.train("tiny-reptile", seconds=0, **folders)
    finally:
        del zoo.RECIPES["tiny-reptile"]


def test_cli_export_writes_the_last_checkpoint_and_says_how_to_train_without_one(
    tiny_recipe, tmp_path: Path, monkeypatch, capsys
):
    monkeypatch.setattr(zoo, "CHECKPOINTS", tmp_path / "runs")
    monkeypatch.setattr(store, "WEIGHTS", tmp_path / "weights")
    assert main(["zoo", "export", "tiny-test", "--no-progress"]) != 0
    assert re.search(r"no checkpoint at .*tiny-test.*zoo train tiny-test", capsys.readouterr().err)
    assert not (tmp_path / "weights" / "tiny-test.pt").exists()
    trained = zoo.train("tiny-test", until=3, progress=False)
    (tmp_path / "weights" / "tiny-test.pt").unlink()
    assert main(["zoo", "export", "tiny-test", "--no-progress", "--device", "cpu"]) == 0
    exported = store.read("tiny-test")
    assert exported["iteration"] == 3 and exported["result"]["task_accuracies"] == trained["result"]["task_accuracies"]
    if "step_correct" in trained["result"]:  # per-step counts are tensors: compared exactly
        assert torch.equal(exported["result"]["step_correct"], trained["result"]["step_correct"])
    assert "3 of 4 it" in capsys.readouterr().out


def test_missing_and_corrupted_weights_name_the_file_and_the_fix(tmp_path: Path):
    with pytest.raises(DataError, match=r"no weights file at .*nothing\.pt.*zoo train nothing"):
        store.read("nothing", tmp_path)
    (tmp_path / "broken.pt").write_bytes(b"not a torch file")
    with pytest.raises(DataError, match=r"broken\.pt are unreadable.*zoo train broken"):
        store.read("broken", tmp_path)
    with pytest.raises(ConfigError, match="no zoo model named"):
        zoo.load("no-such-model")


def test_list_shows_every_recipe_with_the_papers_figure(capsys):
    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    for name, recipe in zoo.RECIPES.items():
        assert name in out
        if recipe.paper is not None:
            assert f"{recipe.paper:.2f}" in out


def test_available_filters_by_the_task_shape_trained_for(tiny_recipe, monkeypatch, tmp_path: Path, capsys):
    shipped = ["maml-5w1s", "maml-5w5s", "tiny-test"]
    for name in shipped:
        (tmp_path / name).touch()
    monkeypatch.setattr(store, "weights_path", lambda name: tmp_path / (name if name in shipped else "absent"))
    assert zoo.available() == shipped
    assert zoo.available(5, 1) == ["maml-5w1s"] and zoo.available(shots=5) == ["maml-5w5s"]
    assert zoo.available(3, 1) == ["tiny-test"]
    assert compare_command.zoo_entries(None, 5, 1)[:1] == ["maml-5w1s"]  # then the baselines
    assert "trained for other task shapes, skipped: maml-5w5s, tiny-test" in capsys.readouterr().out


def test_every_recipe_trains_on_the_fixed_paper_split():
    """...except the challenge recipes (`-lake-` in the name), which train on the background alphabets only."""
    for recipe in zoo.RECIPES.values():
        s = recipe.settings
        protocol = "lake" if "-lake-" in recipe.name else "paper"
        assert (s.dataset, s.protocol, s.split_seed, s.eval_tasks) == ("omniglot", protocol, 0, 600), recipe.name


@pytest.mark.slow
@pytest.mark.parametrize("name", zoo.available(protocol=None))
def test_shipped_model_re_measures_as_recorded(name: str, omniglot_root: Path):
    learner = zoo.load(name)
    settings = Settings.from_dict(learner.zoo["settings"])
    assert learner.zoo["result"]["n_tasks"] == 600
    check = zoo.verify(name, VERIFY_TASKS, splits=load_data(settings, root=str(omniglot_root)))
    assert check.ok, f"{name}: measured {check.measured:.2f}, recorded {check.recorded:.2f} ± {check.tolerance:.2f}"
    tasks = evaluation_tasks(load_data(settings, root=str(omniglot_root))["test"], settings.ways, settings.shots, 2)
    batch = tasks.sample(1)
    assert learner.predict(*batch[:3]).shape == (1, settings.ways * 2, settings.ways)
