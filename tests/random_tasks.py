"""Random float64 task batches for the gradient-learner tests: 3-way 2-shot, 2 queries per class, 16x16 images."""

from __future__ import annotations

import torch

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
