"""A plain torch.func MAML, written for the benchmarks: the yardstick that batching tasks is measured against.

    model = conv4(n_way=5)                                   # nn.BatchNorm2d without running statistics
    meta_step(model, adam, (sx, sy, qx, qy), steps=1)       # one meta-iteration: vmap over the tasks

What a reader would write from the torch.func tutorials in about 40 lines: vmap over tasks, torch.func.grad
for the inner steps, one backward for the meta-gradient. Not exact in torch 2.14: under vmap the fused
BatchNorm kernel's second derivative is wrong (tests/test_conv4.py::test_fused_second_derivative_under_vmap),
so its second-order meta-gradient is only a timing reference. mlscratch's vmap path uses BatchNormFunction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap


def conv4(n_way: int = 5, in_channels: int = 1, width: int = 64, image_size: int = 28) -> nn.Sequential:
    """4 x [3x3 conv, BatchNorm (batch statistics only), ReLU, 2x2 max-pool] -> linear: [M, C, H, W] -> [M, n_way]."""
    layers: list[nn.Module] = []
    for c_in in [in_channels] + [width] * 3:
        layers += [nn.Conv2d(c_in, width, 3, padding=1), nn.BatchNorm2d(width, track_running_stats=False)]
        layers += [nn.ReLU(), nn.MaxPool2d(2)]
    side = image_size // 16
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(width * side * side, n_way))


def meta_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: tuple[Tensor, Tensor, Tensor, Tensor],
    steps: int = 1,
    lr: float = 0.4,
    first_order: bool = False,
) -> None:
    """One MAML meta-update on a batch of tasks: support_x [B, N*K, C, H, W], support_y [B, N*K], query_x, query_y."""
    params = dict(model.named_parameters())

    def task_loss(params: dict[str, Tensor], sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor) -> Tensor:
        for _ in range(steps):
            grads = grad(lambda p: F.cross_entropy(functional_call(model, p, (sx,)), sy))(params)
            if first_order:
                grads = {name: g.detach() for name, g in grads.items()}
            params = {name: p - lr * grads[name] for name, p in params.items()}
        return F.cross_entropy(functional_call(model, params, (qx,)), qy)

    optimizer.zero_grad()
    vmap(task_loss, in_dims=(None, 0, 0, 0, 0))(params, *batch).mean().backward()
    optimizer.step()
