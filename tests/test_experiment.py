"""One experiment path: the CLI and the notebooks run the same training and report the same accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mlscratch.cli import main
from mlscratch.course.notebook import train_and_evaluate
from mlscratch.errors import ConfigError
from mlscratch.experiment import Settings, load_data, run

torch.set_num_threads(1)

SETTINGS = {"ways": 3, "shots": 1, "queries": 2, "eval_queries": 3, "meta_batch": 2, "iterations": 3}


def test_cli_and_notebook_report_the_same_accuracy(tmp_path: Path):
    argv = ["train", "--algo", "maml", "--dataset", "synthetic", "--image-size", "16", "--width", "4"]
    argv += ["--ways", "3", "--shots", "1", "--queries", "2", "--eval-queries", "3", "--meta-batch", "2"]
    argv += ["--iterations", "3", "--eval-tasks", "10", "--seed", "4", "--no-progress"]
    assert main([*argv, "--json", str(tmp_path / "cli.json")]) == 0
    cli = json.loads((tmp_path / "cli.json").read_text())
    splits = load_data(Settings(dataset="synthetic", image_size=16))
    notebook = train_and_evaluate(
        splits, "maml", n_way=3, k_shot=1, k_query=3, train_queries=2, meta_batch=2, iterations=3,
        eval_tasks=10, seed=4, device="cpu", progress=False, width=4,
    )  # fmt: skip
    assert cli["test_accuracy"] == pytest.approx(round(notebook.result.accuracy, 3))
    assert cli["test_ci95"] == pytest.approx(round(notebook.result.ci95, 3))


def test_the_run_seed_changes_training_not_the_test_tasks_or_the_split():
    splits = load_data(Settings(dataset="synthetic", image_size=16))
    one = run(Settings(dataset="synthetic", image_size=16, hparams={"width": 4}, eval_tasks=6, seed=1, **SETTINGS),
              splits, validate=False, progress=False)  # fmt: skip
    two = run(Settings(dataset="synthetic", image_size=16, hparams={"width": 4}, eval_tasks=6, seed=2, **SETTINGS),
              splits, validate=False, progress=False)  # fmt: skip
    assert one.history.loss != two.history.loss
    assert load_data(Settings(dataset="synthetic", image_size=16, seed=1))["test"].names == splits["test"].names


def test_settings_refuse_what_they_do_not_know():
    with pytest.raises(ConfigError, match="choose one of"):
        Settings(algo="no-such")
    with pytest.raises(ConfigError, match="ways must be a positive integer"):
        Settings(ways=0)
    with pytest.raises(ConfigError, match="unknown experiment settings colour"):
        Settings.from_dict({"colour": "red"})
    assert Settings.from_dict({"colour": "red", "ways": 3}, strict=False).ways == 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--algo", "metanet", "--inner-lr", "0.1"], "metanet does not take --inner-lr"),
        (["--algo", "metanet-embedding", "--test-inner-steps", "2"], "does not take --test-inner-steps"),
        (["--algo", "fomaml", "--meta-dropout", "learned"], "needs second-order MAML"),
    ],
)
def test_a_flag_the_algorithm_does_not_take_exits_2_naming_it(argv, message, capsys):
    assert main(["train", *argv, "--dataset", "synthetic", "--iterations", "0", "--no-progress"]) == 2
    assert message in capsys.readouterr().err
