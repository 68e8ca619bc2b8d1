"""The adaptation explorer: curves of a real inner loop, resized heads, safe slider ranges, overlays."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("ipywidgets")

from random_tasks import tiny_splits  # noqa: E402

from mlscratch import TaskSampler  # noqa: E402
from mlscratch.algorithms import build  # noqa: E402
from mlscratch.course.explorer import adaptation_curve, adaptation_explorer, resize_head, slider_ranges  # noqa: E402
from mlscratch.errors import ConfigError  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models run fastest on one thread


def test_resize_head_keeps_the_first_rows_and_refuses_more_ways_than_trained():
    params = {"head.weight": torch.arange(10.0).reshape(5, 2), "head.bias": torch.arange(5.0), "other": torch.ones(1)}
    smaller = resize_head(params, "head", 3)
    assert torch.equal(smaller["head.bias"], torch.arange(3.0)) and smaller["other"] is params["other"]
    with pytest.raises(ConfigError, match="5 rows and cannot answer a 7-way task"):
        resize_head(params, "head", 7)  # reusing rows would not be MAML


def test_curve_matches_the_learners_own_adaptation():
    torch.manual_seed(0)
    learner = build("maml", n_way=3, width=8, inner_lr=0.3, test_inner_steps=2)
    task = TaskSampler(tiny_splits()["test"], 3, 1, 2, 1, seed=0).sample()
    curve = adaptation_curve(learner, task, inner_lr=0.3, steps=2)
    assert len(curve.accuracy) == len(curve.query_loss) == len(curve.support_loss) == 3
    logits = learner.adaptation_logits(*task[:3], steps=2)[0]  # [3, N*Q, N]
    expected = (logits.argmax(-1) == task.query_y[0]).float().mean(-1) * 100
    assert curve.accuracy == pytest.approx(expected.tolist(), abs=1e-4)
    assert curve.support_loss[-1] < curve.support_loss[0]  # SGD on the support set lowers its loss


def test_fewer_ways_than_the_output_layer_work():
    learner = build("maml", n_way=5, width=8)
    task = TaskSampler(tiny_splits()["test"], 3, 1, 2, 1, seed=0).sample()
    curve = adaptation_curve(learner, task, inner_lr=0.4, steps=1)
    assert curve.settings["n_way"] == 3 and len(curve.accuracy) == 2


def test_slider_ranges_never_make_an_impossible_task():
    classes = tiny_splits(per_class=8)["test"]
    limits = slider_ranges(classes, k_query=5)
    assert limits["max_shots"] == 3  # 3 shots + 5 queries = 8 drawings
    assert limits["max_ways"] == 10
    learner = build("maml", n_way=5, width=8)
    panel = adaptation_explorer(learner, tiny_splits(per_class=8), k_query=5, steps=1)
    assert panel.controls["k_shot"].max == 3 and panel.controls["n_way"].max == 5  # its 5-way head: at most 5
    panel.controls["k_shot"].value = panel.controls["k_shot"].max
    panel.controls["n_way"].value = panel.controls["n_way"].max
    assert "5-way 3-shot" in panel.message.value  # the largest setting ran


def test_panel_keeps_earlier_settings_as_overlays():
    learner = build("maml", n_way=5, width=8)
    panel = adaptation_explorer(learner, tiny_splits(), k_query=3, steps=2)
    panel.controls["inner_lr"].value = 0.1
    panel.controls["seed"].value = 3
    assert panel.runs == 3
    history = [run["MAML"] for run in panel.compute.history]
    assert [c.settings["inner_lr"] for c in history] == [0.4, 0.1, 0.1]
    assert history[-1].settings["seed"] == 3
    grey_lines = [line for line in panel.result[0].axes[1].lines if line.get_color() == "grey"]
    assert len(grey_lines) >= 2  # the two earlier curves, faint


def test_step_accuracies_are_paired_rows_of_the_evaluators_tasks():
    from mlscratch.course.explorer import step_accuracies
    from mlscratch.evaluation import evaluate

    torch.manual_seed(0)
    learner = build("maml", n_way=3, width=8, test_inner_steps=2)
    sampler = TaskSampler(tiny_splits()["test"], 3, 1, 2, batch_size=4, seed=5)
    table = step_accuracies(learner, sampler, 8, steps=2)
    assert table.shape == (8, 3)
    result = evaluate(learner, sampler, 8, steps=2)  # 8 = two whole batches: the same tasks
    assert table[:, 2].tolist() == pytest.approx(result.task_accuracies, abs=1e-4)
    assert table.mean(0).tolist() == pytest.approx(result.step_accuracies, abs=1e-4)
    # task i does not depend on how many tasks are asked for (whole batches are drawn)
    assert torch.equal(step_accuracies(learner, sampler, 6, steps=2), table[:6])


def test_two_learners_adapt_to_the_same_task_with_their_own_inner_loss():
    torch.manual_seed(0)
    plain = build("maml", n_way=3, width=8)
    noisy = build("maml", n_way=3, width=8, meta_dropout="learned", meta_dropout_options={"eval_samples": 4})
    noisy.load_state_dict(plain.state_dict(), strict=False)  # same backbone; only the noise generator differs
    panel = adaptation_explorer({"MAML": plain, "Meta Dropout": noisy}, tiny_splits(), k_query=3, steps=2)
    run = panel.compute.history[-1]
    assert set(run) == {"MAML", "Meta Dropout"}
    # same task, same start: BatchNorm undoes the near-uniform gate softplus(mu ~ 0) before adaptation
    assert run["MAML"].accuracy[0] == run["Meta Dropout"].accuracy[0]
    # the noisy support loss moves the weights elsewhere than plain SGD would
    assert run["MAML"].query_loss[-1] != pytest.approx(run["Meta Dropout"].query_loss[-1], abs=1e-6)
    assert "Meta Dropout minus MAML on this task" in panel.message.value
    panel.controls["seed"].value = 1
    panel.controls["seed"].value = 0  # back: the same noise draws give the same curve
    assert panel.compute.history[-1]["Meta Dropout"].query_loss == run["Meta Dropout"].query_loss
    coloured = {line.get_color() for line in panel.result[0].axes[1].lines if line.get_color() != "grey"}
    assert {"tab:blue", "tab:orange"} <= coloured


def test_task_sliders_refuse_queries_that_leave_no_drawing_for_a_shot():
    from mlscratch.course.explorer import task_sliders

    classes = tiny_splits(per_class=8)["test"]
    assert task_sliders(classes, 7, n_way=5, k_shot=3, seed=1)["k_shot"] == (1, 1, 1)
    with pytest.raises(ValueError, match="8 queries and one shot need more than 8 drawings per class; some have 8"):
        task_sliders(classes, 8, n_way=5, k_shot=1, seed=1)
