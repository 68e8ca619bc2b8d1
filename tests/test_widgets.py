"""Widget panels, driven headless: set values, click, check that the output changed."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

widgets = pytest.importorskip("ipywidgets")

from random_tasks import tiny_splits  # noqa: E402

from mlscratch.course.widgets import Panel, control, maml_panel, panel, task_explorer, training_panel  # noqa: E402
from mlscratch.errors import ConfigError  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models run fastest on one thread


def line_plot(slope: float, points: int):
    figure, axis = plt.subplots(figsize=(2, 2))
    axis.plot([slope * i for i in range(points)])
    return figure, f"slope {slope}, {points} points"


def test_control_specs_make_the_expected_widgets():
    assert isinstance(control("n", (1, 10, 5)), widgets.IntSlider)
    assert isinstance(control("lr", (0.01, 1.0, 0.4)), widgets.FloatSlider)
    assert control("split", ["val", "train"]).value == "val"
    assert isinstance(control("flag", True), widgets.Checkbox)
    with pytest.raises(TypeError, match="no widget"):
        control("bad", object())


def test_live_panel_reruns_on_every_change():
    calls = []

    def compute(slope, points):
        calls.append((slope, points))
        return line_plot(slope, points)

    live = panel(compute, slope=(0.0, 2.0, 1.0), points=(2, 20, 5))
    first = bytes(live.image.value)
    assert calls == [(1.0, 5)] and first.startswith(b"\x89PNG") and "slope 1.0" in live.message.value
    live.controls["slope"].value = 2.0
    assert calls[-1] == (2.0, 5) and live.runs == 2
    assert bytes(live.image.value) != first


def test_button_panel_waits_for_the_click():
    calls = []

    def compute(points):
        calls.append(points)
        return f"{points} points"

    slow = Panel(compute, {"points": (1, 9, 3)}, button="Run", run_now=False)
    slow.controls["points"].value = 7
    assert calls == [] and slow.runs == 0
    slow.button.click()
    assert calls == [7] and "7 points" in slow.message.value and slow.result == "7 points"


def test_config_errors_are_shown_not_raised():
    def compute(n):
        raise ConfigError(f"n_way={n} is too large; use fewer")

    failing = panel(compute, n=(1, 5, 2))
    assert "too large" in failing.message.value and failing.runs == 0


def test_bugs_are_shown_in_the_panel_and_still_raised():
    def compute(n):
        raise ValueError("shapes do not match")

    broken = Panel(compute, {"n": (1, 5, 2)}, button="Run", run_now=False)
    with pytest.raises(ValueError):
        broken.update()
    assert "ValueError: shapes do not match" in broken.message.value and not broken.button.disabled


def test_task_explorer_redraws_for_new_settings():
    explorer = task_explorer(tiny_splits(), n_way=3, k_shot=1, k_query=2)
    first = bytes(explorer.image.value)
    assert first.startswith(b"\x89PNG") and "3-way 1-shot" in explorer.message.value
    explorer.controls["seed"].value = 1
    second = bytes(explorer.image.value)
    assert second != first
    explorer.controls["n_way"].value = 5
    assert "5-way" in explorer.message.value and bytes(explorer.image.value) != second
    explorer.controls["split"].value = "test"
    assert "test:" in explorer.message.value
    explorer.controls["n_way"].value = 20  # only 12 classes: the error is shown in the panel
    assert "n_way=20" in explorer.message.value


def test_maml_panel_trains_and_evaluates_on_click_and_redraws():
    splits = tiny_splits()
    maml = maml_panel(
        splits, iterations=2, eval_tasks=4, meta_batch=2, k_query=2, width=8, seed=0, device="cpu", progress=False
    )
    assert maml.runs == 0 and bytes(maml.image.value) == b""  # training waits for the button
    maml.controls["n_way"].value = 3
    maml.button.click()
    first = bytes(maml.image.value)
    assert maml.runs == 1 and first.startswith(b"\x89PNG")
    assert "maml 3-way 1-shot, 2 iterations" in maml.message.value and "4 tasks" in maml.message.value
    maml.controls["inner_lr"].value = 0.05
    maml.controls["inner_steps"].value = 2
    maml.button.click()
    assert maml.runs == 2 and bytes(maml.image.value) != first
    assert not maml.button.disabled


def test_training_panel_exposes_any_hyperparameter():
    seen = {}

    def fake_experiment(splits, algo, settings, **values):
        seen.update(algo=algo, **settings, **values)
        return "done"

    import mlscratch.course.widgets as module

    original = module.run_experiment
    module.run_experiment = fake_experiment
    try:
        generic = training_panel(tiny_splits(), "fomaml", {"width": [8, 16]}, iterations=3, meta_batch=2)
        generic.controls["width"].value = 16
        generic.button.click()
    finally:
        module.run_experiment = original
    assert seen == {
        "algo": "fomaml",
        "iterations": 3,
        "eval_tasks": 100,
        "meta_batch": 2,
        "n_way": 5,
        "k_shot": 1,
        "width": 16,
    }
