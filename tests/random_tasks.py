"""Random test data: float64 task batches for the gradient-learner tests (3-way 2-shot, 2 queries per class, 16x16
images), and tiny random train/val/test splits for the panel and explorer tests."""

from __future__ import annotations

import torch

from mlscratch.data import ClassImages
from mlscratch.tasks import TaskBatch

N, K, Q, SIZE = 3, 2, 2, 16


def batch(b: int = 3, seed: int = 1) -> TaskBatch:
    """b tasks: support_x [b, N*K, 1, SIZE, SIZE] and query_x [b, N*Q, 1, SIZE, SIZE], labels in class order."""
    g = torch.Generator().manual_seed(seed)
    return TaskBatch(
        torch.rand(b, N * K, 1, SIZE, SIZE, generator=g, dtype=torch.float64),
        torch.arange(N).repeat_interleave(K).expand(b, -1),
        torch.rand(b, N * Q, 1, SIZE, SIZE, generator=g, dtype=torch.float64),
        torch.arange(N).repeat_interleave(Q).expand(b, -1),
    )


def tiny_splits(n_classes: int = 12, per_class: int = 8, size: int = 28) -> dict[str, ClassImages]:
    """Random-pixel splits: n_classes classes of per_class 1 x size x size images each, the same on every call."""
    generator = torch.Generator().manual_seed(0)

    def split(offset: int) -> ClassImages:
        images = torch.rand(n_classes, per_class, 1, size, size, generator=generator)
        return ClassImages.from_tensors(images, names=[f"c{offset + i}" for i in range(n_classes)])

    return {"train": split(0), "val": split(100), "test": split(200)}
