"""Conv4: the few-shot papers' backbone (Vinyals et al. 2016, Finn et al. 2017).

    x [B, C, H, W] -> 4 x [3x3 conv (64), BatchNorm, ReLU, 2x2 max-pool] -> flatten -> linear -> logits [B, n_way]

Written for inner loops: no running statistics (nothing is tracked between
calls), so `torch.func.functional_call` and `vmap` over tasks just work.

BatchNorm modes (`bn=`):
- "transductive" (default, MAML's setting): every forward normalises with the
  statistics of the batch it is given, at training *and* test time. Queries are
  therefore normalised with the statistics of the other queries of their task.
- "support": queries are normalised with the statistics of the task's support
  set, so each query is scored independently of the others: `model(query_x, support_x)`.

`Conv4(n_way=None)` has no head: it is an embedding network, x -> features [B, feature_size].

Extension point: every block has a `perturb` module (identity by default)
applied to the normalised pre-activation, `h = perturb(bn(conv(x)))` before
ReLU. Feature-noise methods (Meta Dropout) replace it. The hooks a module can
offer the inner loop are listed in `mlscratch.inner_loop`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError

BN_MODES = ("transductive", "support")


class TaskBatchNorm(nn.Module):
    """BatchNorm with an affine transform and no running statistics.  x: [M, C, H, W].

    stats_rows=None: statistics of the whole batch; stats_rows=n: statistics of the first n rows, applied to all.
    `fused=True` uses F.batch_norm (about 1.3x faster MAML on CPU). Under vmap, torch 2.14's fused kernel gives
    wrong second derivatives, so `mlscratch.inner_loop.per_task` sets fused=False under vmap
    (tests/test_maml.py::test_vmap_and_loop_paths_agree catches it).
    """

    fused: bool = True

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor, stats_rows: int | None = None) -> Tensor:
        if self.fused and stats_rows is None:
            return F.batch_norm(x, None, None, self.weight, self.bias, training=True, eps=self.eps)
        reference = x if stats_rows is None else x[:stats_rows]
        var, mean = torch.var_mean(reference, dim=(0, 2, 3), unbiased=False, keepdim=True)
        scale = self.weight[:, None, None] * torch.rsqrt(var + self.eps)
        return (x - mean) * scale + self.bias[:, None, None]


class ConvBlock(nn.Module):
    """[3x3 conv, BatchNorm, perturb, ReLU, 2x2 max-pool]: [B, C_in, H, W] -> [B, C_out, H//2, W//2]."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm = TaskBatchNorm(out_channels)
        self.perturb: nn.Module = nn.Identity()  # extension point for feature noise (Meta Dropout)

    def forward(self, x: Tensor, stats_rows: int | None = None) -> Tensor:
        h = self.perturb(self.norm(self.conv(x), stats_rows))
        return F.relu(F.max_pool2d(h, 2))  # == max_pool(relu(h)) (both monotone), on 4x fewer values


class Conv4(nn.Module):
    """The Conv4 backbone with a linear head.  x: [B, in_channels, image_size, image_size] -> [B, n_way].

    n_way=None: no head, the output is the embedding [B, feature_size].
    """

    def __init__(
        self,
        n_way: int | None = 5,
        in_channels: int = 1,
        image_size: int = 28,
        width: int = 64,
        n_blocks: int = 4,
        bn: str = "transductive",
    ) -> None:
        super().__init__()
        if bn not in BN_MODES:
            raise ConfigError(f"unknown BatchNorm mode bn={bn!r}; use one of {', '.join(BN_MODES)}")
        if image_size < 2**n_blocks:
            raise ConfigError(
                f"image_size={image_size} is too small for {n_blocks} pooling blocks; "
                f"use image_size >= {2**n_blocks} or fewer blocks"
            )
        for name, value in (("n_way", n_way or 1), ("in_channels", in_channels), ("width", width)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        self.bn = bn
        channels_in = [in_channels] + [width] * (n_blocks - 1)
        self.blocks = nn.ModuleList(ConvBlock(c_in, width) for c_in in channels_in)
        side = image_size
        for _ in range(n_blocks):
            side //= 2
        self.feature_size = width * side * side
        self.head: nn.Module = nn.Identity() if n_way is None else nn.Linear(self.feature_size, n_way)

    def features(self, x: Tensor, support_x: Tensor | None = None) -> Tensor:
        """x: [B, C, H, W] -> embeddings [B, feature_size].

        support_x: with bn="support", normalise with these rows' statistics (a task's support set) instead of x's.
        """
        stats_rows = None
        if support_x is not None and self.bn == "support":
            stats_rows = support_x.shape[0]
            x = torch.cat([support_x, x])
        for block in self.blocks:
            x = block(x, stats_rows)
        return x.flatten(1) if stats_rows is None else x[stats_rows:].flatten(1)

    def forward(self, x: Tensor, support_x: Tensor | None = None) -> Tensor:
        """x: [B, C, H, W] -> logits [B, n_way] (see `features` for support_x)."""
        return self.head(self.features(x, support_x))
