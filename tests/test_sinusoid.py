"""The sinusoid toy: tasks from the paper's distribution, MAML beats the pretrained baseline after one step."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from mlscratch.course import ch02_maml as sinusoid  # noqa: E402


def test_waves_follow_the_papers_distribution():
    waves = sinusoid.sample_waves(1000, torch.Generator().manual_seed(0))
    assert 0.1 <= waves.amplitude.min() and waves.amplitude.max() <= 5.0
    assert 0.0 <= waves.phase.min() and waves.phase.max() <= math.pi
    x, y = waves.points(7, torch.Generator().manual_seed(1))
    assert x.shape == y.shape == (1000, 7, 1)
    assert torch.allclose(y, waves.amplitude[:, None, None] * torch.sin(x - waves.phase[:, None, None]))


def test_adapt_takes_sgd_steps_and_lowers_the_support_loss():
    model = sinusoid.mlp()
    x = torch.linspace(-5, 5, 10)[:, None]
    y = 2 * torch.sin(x)
    path = sinusoid.adapt(model, dict(model.named_parameters()), x, y, lr=0.01, steps=3)
    assert len(path) == 4
    losses = [sinusoid.mse(model, p, x, y).item() for p in path]
    assert losses[-1] < losses[0]


def test_maml_adapts_better_than_the_pretrained_baseline():
    torch.set_num_threads(1)
    maml, maml_losses = sinusoid.train_maml(iterations=300)
    baseline, _ = sinusoid.train_pretrained(iterations=300)
    assert len(maml_losses) == 300
    curves = sinusoid.fine_tune_curves({"maml": maml, "pretrained": baseline}, n_tasks=100, steps=1)
    assert curves["maml"].mse.shape == (100, 2)
    # the paired difference after one step, on the same waves and points
    difference = curves["pretrained"].mse[:, 1] - curves["maml"].mse[:, 1]
    assert difference.mean() > 3 * difference.std() / math.sqrt(100)


def test_the_same_seed_gives_the_same_model():
    a, _ = sinusoid.train_maml(iterations=3, seed=4)
    b, _ = sinusoid.train_maml(iterations=3, seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_plots_draw():
    model = sinusoid.mlp()
    figure = sinusoid.plot_fits({"a": model, "b": model}, steps=(0, 1))
    assert len(figure.axes) == 2
    curves = sinusoid.fine_tune_curves({"a": model}, n_tasks=5, steps=2)
    assert len(sinusoid.plot_curves(curves).axes[0].lines) == 1
