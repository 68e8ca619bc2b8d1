"""`python -m mlscratch train / evaluate` end to end on synthetic data, and the one-line errors."""

import json

import pytest
import torch

from mlscratch.cli import main

torch.set_num_threads(1)  # tiny tensors: extra threads only add overhead (and stall on a busy machine)

TINY = [
    "--dataset",
    "synthetic",
    "--image-size",
    "16",
    "--width",
    "4",
    "--meta-batch",
    "2",
    "--queries",
    "2",
    "--iterations",
    "2",
    "--val-every",
    "1",
    "--val-tasks",
    "2",
    "--eval-tasks",
    "4",
    "--no-progress",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    code = main(
        [
            "train",
            "--algo",
            "fomaml",
            *TINY,
            "--ways",
            "3",
            "--checkpoint",
            str(folder / "m.pt"),
            "--json",
            str(folder / "train.json"),
        ]
    )
    assert code == 0
    return folder


def test_train_writes_the_report(trained):
    report = json.loads((trained / "train.json").read_text())
    assert report["algo"] == "fomaml" and report["iterations"] == 2 and report["device"] == "cpu"
    assert 0 <= report["test_accuracy"] <= 100 and report["test_ci95"] >= 0
    assert report["before_adaptation_accuracy"] is not None and len(report["step_accuracies"]) == 4
    assert report["train_seconds"] > 0 and report["eval_tasks"] == 4 and report["ways"] == 3


def test_evaluate_a_checkpoint_uses_its_settings(trained, capsys):
    code = main(
        [
            "evaluate",
            "--checkpoint",
            str(trained / "m.pt"),
            "--eval-tasks",
            "4",
            "--no-progress",
            "--json",
            str(trained / "eval.json"),
        ]
    )
    assert code == 0 and "test accuracy" in capsys.readouterr().out
    evaluation = json.loads((trained / "eval.json").read_text())
    training = json.loads((trained / "train.json").read_text())
    assert evaluation["eval_ways"] == 3 and evaluation["iterations"] == 2
    assert evaluation["test_accuracy"] == training["test_accuracy"]  # same seed -> same test tasks, same numbers


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--ways", "0", *TINY], "--ways must be at least 1"),
        (["train", *TINY, "--shots", "10", "--queries", "15"], "k_shot + k_query"),
        (["evaluate", "--checkpoint", "does-not-exist.pt"], "not found"),
        (["train", *TINY, "--ways", "1"], "--ways must be at least 2, got 1: a 1-way task has one answer"),
        (["train", *TINY, "--outer-lr", "nan"], "--outer-lr must be a positive finite number, got nan"),
        (["train", *TINY, "--outer-lr", "-0.001"], "--outer-lr must be a positive finite number, got -0.001"),
        (["train", *TINY, "--inner-lr", "inf"], "--inner-lr must be a positive finite number, got inf"),
        (["train", *TINY, "--inner-lr", "nan"], "--inner-lr must be a positive finite number, got nan"),
        (["train", *TINY, "--clip-grad", "0"], "--clip-grad must be a positive finite number, got 0.0"),
    ],
)
def test_bad_flags_give_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_wrong_ways_for_a_checkpoint(trained, capsys):
    assert main(["evaluate", "--checkpoint", str(trained / "m.pt"), "--ways", "5", "--no-progress"]) == 2
    assert "3-way output layer" in capsys.readouterr().err


def test_unknown_algorithm_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--algo", "no-such-algorithm"])
    assert exit_info.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_an_unwritable_checkpoint_is_refused_before_training(tmp_path, capsys):
    """A checkpoint beneath a regular file cannot be saved: said at once, not after training (losing the model)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["train", *TINY, "--checkpoint", str(blocker / "sub" / "m.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write the checkpoint") and "a-file" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_checkpoint_folder_is_a_path_error(tmp_path, capsys):
    assert main(["train", *TINY, "--checkpoint", str(tmp_path)]) == 2
    assert "it is a folder" in capsys.readouterr().err and not list(tmp_path.iterdir())


def test_the_checkpoint_check_leaves_no_probe_behind(trained):
    assert not [p.name for p in trained.iterdir() if p.name.startswith(".")]


def test_help_says_the_test_tasks_run_after_any_training(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "test tasks scored after training, however few the iterations (default 600" in help_text
