"""The baselines: pixel nearest neighbour as chapter 01 defines it, and pretrain-then-fit-the-last-layer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mlscratch.baselines import (
    BASELINES,
    PixelNearestNeighbour,
    PretrainFinetune,
    class_batch,
    fit_linear,
    pixel_nearest_neighbour,
    pretrain,
)
from mlscratch.errors import ConfigError
from mlscratch.evaluation import evaluate
from mlscratch.experiment import Settings, evaluation_tasks, load_data
from mlscratch.tasks import TaskSampler

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def splits():
    return load_data(Settings(dataset="synthetic", image_size=16))


def test_pixel_nn_learner_agrees_with_the_chapter_01_function(splits):
    batch = TaskSampler(splits["test"], 5, 2, 3, batch_size=20, seed=4).sample()
    per_task = pixel_nearest_neighbour(batch) * 100
    result = evaluate(PixelNearestNeighbour(), evaluation_tasks(splits["test"], 5, 2, 3), 20, per_step=False)
    logits = PixelNearestNeighbour().predict(*batch[:3])
    assert logits.shape == (20, 15, 5)
    assert torch.equal((logits.argmax(-1) == batch.query_y).float().mean(1) * 100, per_task)
    assert 100 / 5 < result.accuracy < 100  # far above chance on glyphs, not perfect


def test_pixel_nn_finds_a_copied_support_image():
    support = torch.rand(6, 1, 8, 8)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    logits = PixelNearestNeighbour().predict(support, labels, support[[3, 4, 1]])
    assert logits.argmax(-1).tolist() == [1, 2, 0]
    assert logits[0, 1] == 0  # minus the distance to the nearest image of the class, which is the image itself


def test_fit_linear_separates_and_is_deterministic():
    features = F.normalize(torch.tensor([[1.0, 0.1], [0.9, -0.1], [-1.0, 0.2], [-0.8, -0.3]]), dim=1)
    labels = torch.tensor([0, 0, 1, 1])
    weight, bias = fit_linear(features, labels, steps=50, lr=1.0, weight_decay=1e-3)
    assert weight.shape == (2, 2) and bias.shape == (2,)
    assert (features @ weight.T + bias).argmax(1).tolist() == labels.tolist()
    again = fit_linear(features, labels, steps=50, lr=1.0, weight_decay=1e-3)
    assert torch.equal(weight, again[0]) and torch.equal(bias, again[1])


def test_class_batch_labels_are_classes_of_the_split(splits):
    train = splits["train"]
    images, labels = class_batch(train, 32, torch.Generator().manual_seed(0))
    assert images.shape == (32, *train.image_shape) and int(labels.max()) < train.n_classes
    for image, label in zip(images[:5], labels[:5], strict=True):  # each image is one of its class's drawings
        drawings = train.images[label, : train.counts[label]]
        assert any(torch.equal(image, d) for d in drawings)


def test_pretraining_learns_and_the_backbone_stays_frozen_at_test(splits):
    train = splits["train"].subset(list(range(20)))
    torch.manual_seed(0)
    learner = PretrainFinetune(train.n_classes, image_size=16, width=8, finetune_steps=20)
    images, labels = class_batch(train, 256, torch.Generator().manual_seed(9))
    before = F.cross_entropy(learner.backbone(images), labels).item()
    done = pretrain(learner, train, steps=60, batch_size=32, lr=3e-3)
    after = F.cross_entropy(learner.backbone(images), labels).item()
    assert done.iterations == 60 and done.seconds > 0 and after < before - 1.0
    state = {k: v.clone() for k, v in learner.state_dict().items()}
    batch = TaskSampler(splits["test"], 7, 1, 2, batch_size=2, seed=1).sample()
    assert learner.predict(*batch[:3]).shape == (2, 14, 7)  # any ways: the new layer has one row per class
    assert all(torch.equal(state[k], v) for k, v in learner.state_dict().items())


def test_pretraining_is_reproducible_and_checks_its_settings(splits):
    train = splits["train"]
    weights = []
    for _ in range(2):
        torch.manual_seed(0)
        learner = PretrainFinetune(train.n_classes, image_size=16, width=4)
        pretrain(learner, train, steps=3, batch_size=8, seed=5)
        weights.append(learner.backbone.head.weight)
    assert torch.equal(*weights)
    with pytest.raises(ConfigError, match="steps or seconds"):
        pretrain(learner, train)
    with pytest.raises(ConfigError, match=f"build PretrainFinetune\\(n_classes={train.n_classes}\\)"):
        pretrain(PretrainFinetune(3, image_size=16, width=4), train, steps=1)
    assert set(BASELINES) == {"pixel-nn", "pretrain-finetune"}


def test_fit_linear_gradient_is_the_autograd_gradient():
    torch.manual_seed(0)
    features, labels = F.normalize(torch.randn(6, 5), dim=1), torch.tensor([0, 1, 2, 0, 1, 2])
    weight, bias = fit_linear(features, labels, steps=3, lr=0.5, weight_decay=0.01)
    w, b = (t.clone().requires_grad_(True) for t in (weight, bias))
    loss = F.cross_entropy(features @ w.T + b, labels) + 0.01 * w.square().sum()
    grad_w, grad_b = torch.autograd.grad(loss, (w, b))
    step_w, step_b = fit_linear(features, labels, steps=4, lr=0.5, weight_decay=0.01)  # one step further
    assert torch.allclose(step_w, weight - 0.5 * grad_w, atol=1e-6)
    assert torch.allclose(step_b, bias - 0.5 * grad_b, atol=1e-6)
