"""First-order vs exact meta-gradient: the cosine and its panel."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("ipywidgets")

from random_tasks import tiny_splits  # noqa: E402

from mlscratch import TaskSampler  # noqa: E402
from mlscratch.algorithms import build  # noqa: E402
from mlscratch.course.ch03_fomaml import CosineExplorer, cosine_panel, gradient_cosine, meta_gradients  # noqa: E402


@pytest.fixture
def problem():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    learner = build("maml", n_way=3, width=4, inner_lr=0.4, inner_steps=1).double()
    batch = TaskSampler(tiny_splits()["train"], 3, 1, 2, 2, seed=0).sample()
    return learner, type(batch)(*(t.double() if t.is_floating_point() else t for t in batch))


def test_gradients_differ_and_settings_are_restored(problem):
    learner, batch = problem
    exact, first = meta_gradients(learner, batch, inner_lr=0.4, steps=2)
    assert exact.shape == first.shape == (sum(w.numel() for w in learner.parameters()),)
    assert not torch.allclose(exact, first)
    assert (learner.inner_lr, learner.inner_steps, learner.first_order) == (0.4, 1, False)


def test_cosine_goes_to_one_as_the_inner_lr_goes_to_zero(problem):
    learner, batch = problem
    small, large = gradient_cosine(learner, batch, 1e-4, 1), gradient_cosine(learner, batch, 0.8, 1)
    assert small > 0.999
    assert large < small


def test_panel_caches_curves_and_overlays_other_step_counts(problem):
    learner, batch = problem
    explorer = CosineExplorer(learner, batch, sweep=(0.01, 0.1))
    panel = cosine_panel(explorer, inner_lr=0.2, steps=1)
    panel.controls["steps"].value = 2
    assert set(explorer.curves) == {1, 2}
    assert "2 inner step(s)" in panel.message.value
    assert any(line.get_color() == "grey" for line in panel.result[0].axes[0].lines)
