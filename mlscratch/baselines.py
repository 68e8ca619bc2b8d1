"""The two baselines every comparison of few-shot methods needs, as learners scored on the same tasks.

- `PixelNearestNeighbour` ("pixel-nn", chapter 01): a query takes the label of its nearest support image in
  pixel space. No parameters, no training: the bar any learned method must clear.
- `PretrainFinetune` ("pretrain-finetune", Chen et al. 2019 "Baseline"; Tian et al. 2020): a Conv4 classifier
  trained with plain cross-entropy on ALL training classes at once (no tasks, no episodes), then, for each
  task, its head is thrown away and a new linear layer is fitted on the support set's features while the
  backbone stays frozen. If it matches the meta-learners, the features did the work, not the meta-learning.

Both follow `MetaLearner` (`predict`, `score_task`), so `evaluate` and `compare` score them like any algorithm.
They are not in `ALGORITHMS`: neither is meta-trained (`pretrain` below trains the second).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .algorithms.base import MetaLearner
from .data import ClassImages
from .errors import ConfigError
from .models.conv4 import Conv4
from .tasks import TaskBatch


def pixel_nearest_neighbour(batch: TaskBatch) -> Tensor:
    """Query accuracy of each task [B] (fraction) when a query takes the label of its nearest support image."""
    distances = torch.cdist(batch.query_x.flatten(2), batch.support_x.flatten(2))  # [B, N*Q, N*K]
    predicted = batch.support_y.gather(1, distances.argmin(-1))  # [B, N*Q]
    return (predicted == batch.query_y).float().mean(1)


class PixelNearestNeighbour(MetaLearner):
    """`pixel_nearest_neighbour` as a learner: the score of class c is minus the distance to its nearest image."""

    name = "pixel-nn"
    supports_vmap = False

    def __init__(self) -> None:
        super().__init__()
        self.save_hyperparameters()

    def score_task(self, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        """support_x [N*K, C, H, W], support_y [N*K], query_x [Q, C, H, W] -> logits [Q, N]."""
        distances = torch.cdist(query_x.flatten(1), support_x.flatten(1))  # [Q, N*K]
        ways = int(support_y.max()) + 1
        per_class = distances.new_full((query_x.shape[0], ways), float("inf"))
        per_class = per_class.scatter_reduce(1, support_y.expand_as(distances), distances, "amin")  # [Q, N]
        return -per_class


def fit_linear(features: Tensor, labels: Tensor, steps: int, lr: float, weight_decay: float) -> tuple[Tensor, Tensor]:
    """A softmax classifier fitted by full-batch gradient descent from zero (a convex problem, so deterministic).

    features [n, D], labels [n] in 0..N-1 -> weight [N, D], bias [N]. The gradient of the mean cross-entropy
    plus weight_decay * ||W||^2 is written out: with p = softmax(h W^T + b) and Y the one-hot labels,
    dW = (p - Y)^T h / n + 2 weight_decay W and db = mean(p - Y), no autograd needed.
    """
    one_hot = F.one_hot(labels, int(labels.max()) + 1).to(features.dtype)  # [n, N]
    weight = features.new_zeros(one_hot.shape[1], features.shape[1])
    bias = features.new_zeros(one_hot.shape[1])
    for _ in range(steps):
        error = (features @ weight.T + bias).softmax(-1) - one_hot  # [n, N]
        weight = weight - lr * (error.T @ features / len(labels) + 2 * weight_decay * weight)
        bias = bias - lr * error.mean(0)
    return weight, bias


class PretrainFinetune(MetaLearner):
    """Conv4 pretrained as a `n_classes`-way classifier; at test, a new linear layer fitted on each support set.

    Features are L2-normalised (Tian et al. 2020) and queries use the support set's BatchNorm statistics
    (bn="support"), so each query is scored on its own, as ProtoNets do. finetune_steps of gradient descent with
    rate finetune_lr and L2 penalty weight_decay fit the layer (Chen et al. 2019 use 100 steps).
    """

    name = "pretrain-finetune"
    supports_vmap = False  # every task fits its own layer

    def __init__(
        self,
        n_classes: int = 1100,
        in_channels: int = 1,
        image_size: int = 28,
        width: int = 64,
        finetune_steps: int = 100,
        finetune_lr: float = 1.0,
        weight_decay: float = 1e-3,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.backbone = Conv4(n_classes, in_channels, image_size, width, bn="support")

    def score_task(self, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        """support_x [N*K, C, H, W], support_y [N*K], query_x [Q, C, H, W] -> logits [Q, N]."""
        with torch.no_grad():  # the backbone is frozen: only the new layer learns
            h_support = F.normalize(self.backbone.features(support_x), dim=1)  # [N*K, D]
            h_query = F.normalize(self.backbone.features(query_x, support_x), dim=1)  # [Q, D]
        weight, bias = fit_linear(h_support, support_y, self.finetune_steps, self.finetune_lr, self.weight_decay)
        return h_query @ weight.T + bias


def class_batch(classes: ClassImages, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """`size` random upright images of the split with their class numbers: images [size, C, H, W], labels [size]."""
    labels = torch.randint(classes.n_classes, (size,), generator=generator)
    drawing = (torch.rand(size, generator=generator) * classes.counts[labels]).long()
    return classes.images[labels, drawing], labels


@dataclass
class Pretraining:
    """What `pretrain` did: iterations (batches), seconds, and the last batch's loss."""

    iterations: int
    seconds: float
    loss: float


def pretrain(
    learner: PretrainFinetune,
    classes: ClassImages,
    steps: int | None = None,
    seconds: float | None = None,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
) -> Pretraining:
    """Train the backbone and its head with cross-entropy over all of `classes`, for `steps` batches or `seconds`.

    Whichever limit comes first stops it (at least one is needed); Adam with rate lr; same seed, same batches.
    Each character is one class, upright: the quarter turns that `paper` tasks add are left out, because as
    four classes they split each character's 20 drawings four ways (Omniglot, 60 s of pretraining: 71.3% on
    200 test tasks with the turns as classes, 85.5% without; test tasks still rotate).
    """
    if steps is None and seconds is None:
        raise ConfigError("pretrain needs steps or seconds (or both) to know when to stop")
    if classes.n_classes != learner.n_classes:
        raise ConfigError(
            f"the learner has {learner.n_classes} outputs but the split has {classes.n_classes} classes; "
            f"build PretrainFinetune(n_classes={classes.n_classes})"
        )
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(learner.parameters(), lr=lr)
    learner.train()
    iterations, loss, start = 0, float("nan"), time.perf_counter()
    while (steps is None or iterations < steps) and (seconds is None or time.perf_counter() - start < seconds):
        images, labels = class_batch(classes, batch_size, generator)
        batch_loss = F.cross_entropy(learner.backbone(images), labels)
        optimizer.zero_grad(set_to_none=True)
        batch_loss.backward()
        optimizer.step()
        iterations, loss = iterations + 1, batch_loss.item()
    learner.eval()
    return Pretraining(iterations, time.perf_counter() - start, loss)


BASELINES: dict[str, type[MetaLearner]] = {cls.name: cls for cls in (PixelNearestNeighbour, PretrainFinetune)}
