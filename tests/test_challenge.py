"""Lake's one-shot challenge: the official runs as data, the Hausdorff baseline, within-alphabet tasks, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mlscratch import zoo
from mlscratch.challenge import check_trained_on, score_hausdorff, score_predictions, wilson_interval
from mlscratch.cli import main
from mlscratch.data import ClassImages, load_splits
from mlscratch.data.lake_runs import RUNS, WAYS, load_lake_runs, read_index
from mlscratch.data.omniglot import list_drawings, locate_omniglot
from mlscratch.errors import ConfigError
from mlscratch.experiment import Settings, samplers
from mlscratch.tasks import TaskSampler, alphabet_table

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["--dataset", "synthetic", "--image-size", "16", "--algo", "protonet", "--width", "4", "--ways", "5",
        "--meta-batch", "1", "--queries", "2", "--iterations", "1", "--val-every", "1", "--val-tasks", "1",
        "--eval-tasks", "2", "--no-progress"]  # fmt: skip


# ---------------------------------------------------------------- the runs as data


def test_the_index_holds_20_runs_of_20_plus_20_images_each_answered_once():
    runs = read_index()
    assert len(runs) == RUNS and sum(len(r["test"]) for r in runs) == 400
    for run in runs:
        assert len(run["train"]) == len(set(run["train"])) == WAYS and sorted(run["answer"]) == list(range(WAYS))
        for j, a in enumerate(run["answer"]):  # the answer is another drawing of the same character
            assert run["test"][j].rsplit("/", 1)[0] == run["train"][a].rsplit("/", 1)[0]


def test_every_indexed_image_resolves_in_images_evaluation(omniglot_root: Path):
    source = locate_omniglot(omniglot_root, download=False)["images_evaluation"]
    members = {member for entries in list_drawings(source, "images_evaluation").values() for _, member in entries}
    names = [f"images_evaluation/{n}" for r in read_index() for n in (*r["train"], *r["test"])]
    assert len(names) == 800 and set(names) <= members


@pytest.fixture(scope="module")
def original_runs(omniglot_root: Path):
    return load_lake_runs(omniglot_root, image_size=105)


def test_each_run_is_20_characters_of_one_alphabet(original_runs):
    assert len(original_runs) == RUNS
    for run in original_runs:
        assert run.train.shape == run.test.shape == (WAYS, 1, 105, 105) and run.answer.shape == (WAYS,)
        assert {n.split("/")[0] for n in run.train_names + run.test_names} == {run.alphabet}
        assert len({n.rsplit("/", 1)[0] for n in run.train_names}) == WAYS
        assert set(run.train.unique().tolist()) == {0.0, 1.0}  # the one-bit originals, ink = 1
    assert len({run.alphabet for run in original_runs}) == 10  # two runs per alphabet


def test_resized_runs_match_the_cached_omniglot_pixels(omniglot_root: Path, omniglot):
    run = load_lake_runs(omniglot_root, image_size=28)[0]
    character = omniglot.names.index(run.train_names[0].rsplit("/", 1)[0])
    drawer = int(run.train_names[0][-6:-4])
    index = omniglot.drawers[character].tolist().index(drawer)
    assert torch.allclose(run.train[0], omniglot.images[character, index], atol=1 / 255)


# ---------------------------------------------------------------- scoring


@pytest.mark.slow  # 30 s of CPU: about 1,000 ink points per 105x105 image, 8,000 image pairs
def test_the_modified_hausdorff_baseline_makes_the_official_demos_38_8_percent_errors(original_runs):
    """demo_classification.py prints 38.75 (155 of 400), which its comment rounds to 38.8; about a minute on 1 core."""
    result = score_hausdorff(original_runs)
    assert int(result.wrong.sum()) == 155 and result.error == pytest.approx(38.75)
    assert sum(result.run_errors()) / RUNS == pytest.approx(38.75)


def test_perfect_and_wrong_predictions_and_the_interval(original_runs):
    answers = torch.stack([run.answer for run in original_runs])
    assert score_predictions("oracle", answers, original_runs).error == 0.0
    assert score_predictions("shifted", (answers + 1) % WAYS, original_runs).error == 100.0
    low, high = wilson_interval(0, 400)
    assert low == pytest.approx(0.0, abs=1e-9) and 0.5 < high < 1.5
    low, high = wilson_interval(40, 400)
    assert 2.4 < (high - low) / 2 < 3.2  # about +-2.7 points around 10%
    with pytest.raises(ConfigError, match="one prediction per test image"):
        score_predictions("short", answers[:3], original_runs)


def test_a_paper_split_model_is_refused_with_the_reason_and_the_fix():
    with pytest.raises(ConfigError, match="evaluation alphabets.*--protocol lake"):
        check_trained_on({"protocol": "paper"}, "checkpoint m.pt")
    with pytest.raises(ConfigError, match="names no background-only training"):
        check_trained_on({}, "checkpoint m.pt")
    check_trained_on({"protocol": "lake"}, "checkpoint m.pt")


# ---------------------------------------------------------------- within-alphabet tasks


def labelled_classes() -> ClassImages:
    """Alphabets A (3 classes), B (5) and C (2); every image of class c is filled with the value c."""
    names = [f"A/character{i:02d}" for i in range(3)] + [f"B/character{i:02d}" for i in range(5)] + ["C/c1", "C/c2"]
    images = torch.arange(len(names), dtype=torch.float32).reshape(-1, 1, 1, 1, 1).expand(-1, 4, 1, 2, 2)
    return ClassImages(images.clone(), torch.full((len(names),), 4), names)


def drawn_classes(batch) -> torch.Tensor:
    return batch.support_x[:, :, 0, 0, 0].long()  # [B, N*K]: the class of each support image


def test_within_alphabet_tasks_stay_in_one_alphabet_and_skip_small_alphabets():
    classes = labelled_classes()
    batch = TaskSampler(classes, 3, 1, 1, 200, seed=0, within_alphabet=True).sample()
    ids = drawn_classes(batch)
    alphabets = [{classes.names[c][0] for c in task.tolist()} for task in ids]
    assert all(len(a) == 1 for a in alphabets) and {a.pop() for a in alphabets} == {"A", "B"}  # C has 2 < 3
    assert all(len(set(task.tolist())) == 3 for task in ids)  # distinct classes
    assert (batch.query_x[:, :, 0, 0, 0].long() == ids).all()  # queries of the same classes, in the same order
    again = TaskSampler(classes, 3, 1, 1, 200, seed=0, within_alphabet=True).sample()
    assert torch.equal(again.support_x, batch.support_x)  # same seed, same tasks
    other = TaskSampler(classes, 3, 1, 1, 200, seed=1, within_alphabet=True).sample()
    assert not torch.equal(other.support_x, batch.support_x)


def test_without_the_option_the_task_stream_is_unchanged():
    classes = labelled_classes()
    plain = TaskSampler(classes, 3, 1, 1, 50, seed=0).sample()
    assert torch.equal(plain.support_x, TaskSampler(classes, 3, 1, 1, 50, seed=0, within_alphabet=False).sample()[0])
    assert any(len({classes.names[c][0] for c in task}) > 1 for task in drawn_classes(plain).tolist())


def test_within_alphabet_errors_name_the_fix():
    with pytest.raises(ConfigError, match="no alphabet has 6 classes.*largest has 5"):
        TaskSampler(labelled_classes(), 6, 1, 1, within_alphabet=True)
    nameless = ClassImages.from_tensors(torch.rand(4, 3, 1, 2, 2))
    with pytest.raises(ConfigError, match="needs class names like 'Alphabet/character01'"):
        TaskSampler(nameless, 2, 1, 1, within_alphabet=True)


def test_the_four_small_background_alphabets_never_enter_20_way_tasks(omniglot):
    train = load_splits("omniglot", "lake", root=omniglot.source)["train"]
    kept = {train.names[int(row[0])].split("/")[0] for row in alphabet_table(train.names, 20)}
    small = {"Blackfoot", "Ojibwe", "Inuktitut", "Tagalog"}  # 14, 14, 16 and 17 characters
    assert not {alphabet.split("_")[0] for alphabet in kept} & small and len(kept) >= 18
    sampler = TaskSampler(train, 20, 1, 1, 4, seed=0, within_alphabet=True)
    assert sampler.sample().support_x.shape == (4, 20, 1, 28, 28)


# ---------------------------------------------------------------- the command line


def test_train_within_alphabet_from_the_command_line(tmp_path: Path):
    code = main(["train", *TINY, "--protocol", "lake", "--within-alphabet", "--json", str(tmp_path / "r.json")])
    assert code == 0 and json.loads((tmp_path / "r.json").read_text())["within_alphabet"] is True


def test_challenge_scores_a_lake_checkpoint(tmp_path: Path, omniglot_root: Path, capsys):
    checkpoint = str(tmp_path / "lake.pt")
    assert main(["train", *TINY, "--protocol", "lake", "--checkpoint", checkpoint]) == 0
    capsys.readouterr()
    assert main(["challenge", "--checkpoint", checkpoint, "--root", str(omniglot_root),
                 "--json", str(tmp_path / "c.json")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "errors (95% CI" in out and "people: 4.5%" in out and "Bayesian Program Learning: 3.3%" in out
    report = json.loads((tmp_path / "c.json").read_text())
    assert report["test_images"] == 400 and 0 <= report["error"] <= 100 and len(report["run_errors"]) == RUNS


def test_challenge_refuses_a_paper_split_checkpoint_in_one_line(tmp_path: Path, capsys):
    checkpoint = str(tmp_path / "paper.pt")
    assert main(["train", *TINY, "--protocol", "paper", "--checkpoint", checkpoint]) == 0
    capsys.readouterr()
    assert main(["challenge", "--checkpoint", checkpoint]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "evaluation alphabets" in err and "--protocol lake" in err


def test_rotate_and_within_alphabet_settings_reach_the_samplers():
    splits = {"train": labelled_classes(), "val": labelled_classes(), "test": labelled_classes()}
    settings = Settings(algo="protonet", ways=3, queries=1, eval_queries=1, within_alphabet=True, rotate=True)
    tasks = samplers(settings, splits, torch.device("cpu"))
    assert tasks["train"].rotate and not tasks["val"].rotate and not tasks["test"].rotate  # augmentation: training
    for name in ("train", "val", "test"):  # Lake's runs test within one alphabet, so validation and test do too
        ids = drawn_classes(tasks[name].sample())
        assert all(len({splits[name].names[c][0] for c in task}) == 1 for task in ids.tolist())
    plain = samplers(Settings(algo="protonet", ways=3, queries=1, eval_queries=1), splits, torch.device("cpu"))
    assert not plain["train"].rotate and not plain["test"].within_alphabet  # None: the split's own (lake: upright)


def test_lake_models_are_not_offered_for_paper_tasks(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(zoo.store, "weights_path", lambda name: tmp_path / name)
    for name in ("maml-5w1s", "maml-20w1s", "protonet-lake-20w1s"):
        (tmp_path / name).touch()
    assert zoo.available() == ["maml-5w1s", "maml-20w1s"] and zoo.available(20, 1) == ["maml-20w1s"]
    assert zoo.available(protocol="lake") == ["protonet-lake-20w1s"]
    assert set(zoo.available(protocol=None)) == {"maml-5w1s", "maml-20w1s", "protonet-lake-20w1s"}


def test_the_upright_twin_draws_the_same_classes_and_drawings_unturned():
    classes = ClassImages.from_tensors(torch.rand(6, 4, 1, 5, 5), rotate=True)
    turned = TaskSampler(classes, 3, 1, 2, 8, seed=0).sample()
    upright = TaskSampler(classes, 3, 1, 2, 8, seed=0).upright().sample()
    for t in range(8):
        for j in range(3):
            image, turned_image = upright.support_x[t, j, 0], turned.support_x[t, j, 0]
            assert any(torch.equal(torch.rot90(image, k), turned_image) for k in range(4))
    assert not torch.equal(turned.support_x, upright.support_x)  # some turns are real
    again = TaskSampler(classes, 3, 1, 2, 8, seed=0).upright()
    again.sample()
    follow = TaskSampler(classes, 3, 1, 2, 8, seed=0)
    follow.sample()
    second = follow.sample()  # the next batch, too, pairs: the turns were drawn either way
    assert all(
        any(torch.equal(torch.rot90(a[0], k), b[0]) for k in range(4))
        for a, b in zip(again.sample().query_x.flatten(0, 1), second.query_x.flatten(0, 1), strict=True)
    )


def test_rotate_false_makes_every_task_upright():
    splits = {name: ClassImages.from_tensors(torch.rand(6, 4, 1, 5, 5), rotate=True)
              for name in ("train", "val", "test")}  # fmt: skip
    tasks = samplers(Settings(algo="protonet", ways=3, queries=1, eval_queries=1, rotate=False), splits, "cpu")
    assert not tasks["train"].rotate and not tasks["val"].rotate
    assert torch.equal(tasks["test"]._rotations[3], tasks["test"]._rotations[0])  # turns drawn, none applied


# ---------------------------------------------------------------- the shipped challenge models


@pytest.mark.slow
@pytest.mark.parametrize("name", zoo.available(protocol="lake"))
def test_a_shipped_lake_model_scores_its_recorded_picks_on_the_runs(name: str, omniglot_root: Path):
    from mlscratch.challenge import ChallengeResult, score_learner

    learner = zoo.load(name)
    runs = load_lake_runs(omniglot_root, image_size=learner.zoo["settings"]["image_size"])
    stored = ChallengeResult.from_record(learner.zoo["challenge"], runs)  # its picks give its error
    again = score_learner(learner, runs, name)
    same = float((again.picks == stored.picks).float().mean())
    # Picks are argmaxes of float scores: another CPU's kernels may flip a near tie, never many.
    assert same >= 0.98 and abs(again.error - stored.error) <= 1.0, (same, again.error, stored.error)
    assert learner.zoo["between_alphabet"]["n_tasks"] > 0
    assert learner.zoo["between_alphabet"]["accuracy"] > learner.zoo["result"]["accuracy"]  # across is easier


def test_the_lake_baseline_record_reproduces_its_error_from_its_picks(omniglot_root: Path):
    from mlscratch.challenge import ChallengeResult
    from mlscratch.compare.shipped_baseline import SHIPPED_BASELINES, read_baseline
    from mlscratch.course.ch09_challenge import BASELINE_FILE

    _, record = read_baseline(SHIPPED_BASELINES / BASELINE_FILE)
    result = ChallengeResult.from_record(record["challenge"], load_lake_runs(omniglot_root))
    assert result.n_test == 400 and result.error == record["challenge"]["error"]
    damaged = {**record["challenge"], "error": record["challenge"]["error"] + 1}
    with pytest.raises(ConfigError, match="the record is damaged"):
        ChallengeResult.from_record(damaged, load_lake_runs(omniglot_root))


def test_challenge_scores_the_lake_baseline_by_name(omniglot_root: Path, capsys):
    assert main(["challenge", "--model", "pretrain-finetune", "--root", str(omniglot_root)]) == 0
    assert "pretrain-finetune (pretrained on the background set):" in capsys.readouterr().out
