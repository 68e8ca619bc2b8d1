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
from torch.autograd.function import FunctionCtx

from ..errors import ConfigError

BN_MODES = ("transductive", "support")
STATS_DIMS = (0, 2, 3)  # BatchNorm statistics: over examples and positions, per channel
Grads = tuple[Tensor | None, ...]  # what an autograd.Function's backward returns: one gradient per input


def _channel(t: Tensor) -> Tensor:
    """[C] -> [C, 1, 1], to broadcast over [M, C, H, W]."""
    return t[:, None, None]


def batch_stats(x: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """Per-channel mean and 1 / sqrt(var + eps) of x [M, C, H, W] over (M, H, W): two [C] tensors, differentiable.

    Two passes (mean, then the mean of squared deviations): much faster on CPU than torch.var_mean over (0, 2, 3).
    """
    mean = x.mean(STATS_DIMS)
    var = (x - _channel(mean)).square().mean(STATS_DIMS)
    return mean, torch.rsqrt(var + eps)


class BatchNormFunction(torch.autograd.Function):
    """Training-mode BatchNorm whose first AND second derivatives are exact under vmap.

        (x [M, C, H, W], weight [C], bias [C], eps) -> (y [M, C, H, W], mean [C], invstd [C])

    Forward and first backward are PyTorch's fused kernels. The backward is itself an autograd.Function,
    `BatchNormGrad`, whose own backward (MAML's second-order term) is written out in plain differentiable ops.
    Why: in torch 2.14 the fused kernel's double backward is wrong under vmap (tests/test_conv4.py shows it).
    `generate_vmap_rule=True`: vmap batches forward and backward with the kernels' own batching rules.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor]:
        return torch.native_batch_norm(x, weight, bias, None, None, True, 0.0, eps)

    @staticmethod
    def setup_context(ctx: FunctionCtx, inputs: tuple, output: tuple[Tensor, Tensor, Tensor]) -> None:
        x, weight, _, eps = inputs
        _, mean, invstd = output
        ctx.mark_non_differentiable(mean, invstd)
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.eps = eps

    @staticmethod
    def backward(ctx: FunctionCtx, grad_y: Tensor, _grad_mean: Tensor, _grad_invstd: Tensor) -> Grads:
        x, weight, mean, invstd = ctx.saved_tensors
        return *BatchNormGrad.apply(grad_y, x, weight, mean, invstd, ctx.eps), None


class BatchNormGrad(torch.autograd.Function):
    """BatchNorm's backward as a function, with its own backward written out (sums over (M, H, W), n terms each):

        forward:  g [M, C, H, W] -> g_x = w r (g - (g_b + x^ g_w) / n),  g_w = sum g x^,  g_b = sum g
                  where x^ = (x - mean) r and r = 1 / sqrt(var + eps)
        backward: (u, u_w, u_b) = upstream gradients of (g_x, g_w, g_b) ->
                  a = u_w - w r sum(u x^) / n,   c = -w r g_w / n,   v = a g + c u
                  A = sum(u g) - (g_b sum u + g_w sum(u x^)) / n
                  d/dg = w r u + a x^ + u_b - w r sum(u) / n
                  d/dw = r A
                  d/dx = r (v - sum(v) / n - x^ (sum(v x^) + w r A) / n)

    d/dx accounts for x's effect through mean and r. Mean and r are recomputed from x in differentiable ops,
    so even third derivatives are exact. Checked by gradcheck / gradgradcheck in tests/test_conv4.py.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(
        g: Tensor, x: Tensor, weight: Tensor, mean: Tensor, invstd: Tensor, eps: float
    ) -> tuple[Tensor, Tensor, Tensor]:
        mask = [True, True, True]
        return torch.ops.aten.native_batch_norm_backward(g, x, weight, None, None, mean, invstd, True, eps, mask)

    @staticmethod
    def setup_context(ctx: FunctionCtx, inputs: tuple, output: tuple[Tensor, Tensor, Tensor]) -> None:
        g, x, weight, _, _, eps = inputs
        ctx.save_for_backward(g, x, weight)
        ctx.eps = eps

    @staticmethod
    def backward(ctx: FunctionCtx, u: Tensor, u_w: Tensor, u_b: Tensor) -> Grads:
        g, x, w = ctx.saved_tensors
        mean, r = batch_stats(x, ctx.eps)
        x_hat = (x - _channel(mean)) * _channel(r)
        n = x.numel() // x.shape[1]
        wr = w * r
        sum_g, sum_gx = g.sum(STATS_DIMS), (g * x_hat).sum(STATS_DIMS)
        sum_u, sum_ux, sum_ug = u.sum(STATS_DIMS), (u * x_hat).sum(STATS_DIMS), (u * g).sum(STATS_DIMS)
        a, c = u_w - wr * sum_ux / n, -wr * sum_gx / n
        big_a = sum_ug - (sum_g * sum_u + sum_gx * sum_ux) / n
        grad_g = _channel(wr) * u + _channel(a) * x_hat + _channel(u_b - wr * sum_u / n)
        sum_v, sum_vx = a * sum_g + c * sum_u, a * sum_gx + c * sum_ux
        v = _channel(a) * g + _channel(c) * u
        grad_x = _channel(r) * (v - _channel(sum_v / n) - x_hat * _channel((sum_vx + wr * big_a) / n))
        return grad_g, grad_x, r * big_a, None, None, None


class TaskBatchNorm(nn.Module):
    """BatchNorm with an affine transform and no running statistics.  x: [M, C, H, W].

    stats_rows=None: statistics of the whole batch; stats_rows=n: statistics of the first n rows, applied to all.
    `fused=True` (outside vmap): F.batch_norm, PyTorch's fused kernel, exact to every order there.
    `fused=False` (`mlscratch.inner_loop.per_task` sets it under vmap): `BatchNormFunction`, the same kernels
    with a written-out second derivative, because the fused kernel's second derivative is wrong under vmap
    in torch 2.14 (tests/test_conv4.py::test_fused_second_derivative_under_vmap watches it).
    """

    fused: bool = True

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor, stats_rows: int | None = None) -> Tensor:
        if stats_rows is None and self.fused:
            return F.batch_norm(x, None, None, self.weight, self.bias, training=True, eps=self.eps)
        if stats_rows is None:
            return BatchNormFunction.apply(x, self.weight, self.bias, self.eps)[0]
        mean, invstd = batch_stats(x[:stats_rows], self.eps)  # written out: any rows, exact under vmap
        return (x - _channel(mean)) * _channel(self.weight * invstd) + _channel(self.bias)


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
