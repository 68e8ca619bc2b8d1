"""The parameter-space picture: the closed forms are the minimisers they claim to be."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from mlscratch.course.ch02_maml import default_tasks, parameter_space, plot_parameter_space  # noqa: E402


def test_closed_forms_are_minimisers():
    space = parameter_space(alpha=0.5)
    tasks = space.tasks
    for theta, objective in (
        (space.pretrained, lambda t: tasks.loss(t.expand(3, 2)).sum()),
        (space.maml, lambda t: tasks.loss(tasks.step(t, 0.5)).sum()),
    ):
        point = theta.clone().requires_grad_(True)
        (gradient,) = torch.autograd.grad(objective(point), point)
        assert gradient.abs().max() < 1e-10


def test_maml_beats_pretraining_after_one_step_and_not_before():
    space = parameter_space()
    assert space.loss_after_step(space.maml) < space.loss_after_step(space.pretrained)
    tasks = default_tasks()
    assert tasks.loss(space.pretrained.expand(3, 2)).sum() < tasks.loss(space.maml.expand(3, 2)).sum()


def test_alpha_zero_makes_both_the_same():
    space = parameter_space(alpha=0.0)
    assert torch.allclose(space.maml, space.pretrained)


def test_picture_draws_contours_points_and_arrows():
    figure = plot_parameter_space()
    ax = figure.axes[0]
    assert len(ax.texts) == 6  # one arrow per task from each initialisation
    assert ax.get_legend() is not None
