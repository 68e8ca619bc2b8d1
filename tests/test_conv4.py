"""Conv4: shapes, BatchNorm modes, functional_call / vmap compatibility, the perturbation hook,
and the BatchNorm forms' exactness (first and second derivatives, in and out of vmap)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd import gradcheck, gradgradcheck
from torch.func import functional_call, grad, vmap

from mlscratch.errors import ConfigError
from mlscratch.models import Conv4
from mlscratch.models.conv4 import BatchNormFunction, BatchNormGrad, TaskBatchNorm, batch_stats

torch.set_num_threads(1)  # tiny tensors: extra threads only add overhead (and stall on a busy machine)


def test_shapes_for_omniglot_and_miniimagenet_sizes():
    torch.manual_seed(0)
    assert Conv4()(torch.rand(7, 1, 28, 28)).shape == (7, 5)
    assert Conv4().feature_size == 64  # 28 -> 14 -> 7 -> 3 -> 1
    big = Conv4(n_way=20, in_channels=3, image_size=84, width=32)
    assert big.feature_size == 32 * 5 * 5
    assert big(torch.rand(2, 3, 84, 84)).shape == (2, 20)
    assert big.features(torch.rand(2, 3, 84, 84)).shape == (2, 800)


def test_has_no_running_statistics():
    model = Conv4(width=4)
    assert list(model.buffers()) == []
    model.eval()
    x = torch.rand(6, 1, 28, 28)
    model(x)
    assert torch.equal(model(x), model.train()(x))  # same statistics in train and eval mode


def test_transductive_bn_uses_the_batch_it_is_given():
    torch.manual_seed(0)
    model = Conv4(width=4, image_size=16).double()
    x = torch.rand(6, 1, 16, 16, dtype=torch.float64)
    alone = model(x[:3])
    together = model(x)[:3]
    assert not torch.allclose(alone, together)  # the other rows changed the statistics


def test_support_bn_normalises_everything_with_the_first_rows():
    torch.manual_seed(0)
    model = Conv4(width=4, image_size=16, bn="support").double()
    support = torch.rand(5, 1, 16, 16, dtype=torch.float64)
    queries = torch.rand(8, 1, 16, 16, dtype=torch.float64)
    both = model(queries, support)
    assert both.shape == (8, 5)
    # each query's output does not depend on the other queries ...
    torch.testing.assert_close(model(queries[:1], support), both[:1])
    # ... and it is normalised with the support set's statistics, not its own batch's
    assert not torch.allclose(model(queries), both)
    embedding = Conv4(None, width=4, image_size=16, bn="support").double()
    assert embedding(queries, support).shape == (8, 4)


def test_functional_call_and_vmap_match_the_module():
    torch.manual_seed(0)
    model = Conv4(width=4, image_size=16).double()
    params = {name: p.detach() + 0.01 for name, p in model.named_parameters()}
    x = torch.rand(3, 4, 1, 16, 16, dtype=torch.float64)  # 3 tasks of 4 images
    looped = torch.stack([functional_call(model, params, (task,)) for task in x])
    mapped = vmap(lambda task: functional_call(model, params, (task,)))(x)
    torch.testing.assert_close(mapped, looped, rtol=0, atol=1e-12)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(params[name])
    torch.testing.assert_close(model(x[0]), looped[0])


def test_perturb_hook_is_applied_before_relu():
    class Zero(nn.Module):
        def forward(self, h):
            return h * 0

    model = Conv4(width=4, image_size=16)
    model.blocks[3].perturb = Zero()
    out = model.features(torch.rand(3, 1, 16, 16))
    assert torch.equal(out, torch.zeros_like(out))


@pytest.mark.parametrize("kwargs", [{"bn": "running"}, {"image_size": 8}, {"width": 0}])
def test_bad_settings_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        Conv4(**kwargs)


# --- BatchNorm: the fused kernel, BatchNormFunction (vmap) and the written-out form agree ------------------


def rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_batch_stats_match_var_mean():
    x = rand(6, 3, 5, 5) * 3 + 1
    mean, invstd = batch_stats(x, 1e-5)
    var, expected_mean = torch.var_mean(x, dim=(0, 2, 3), unbiased=False)
    torch.testing.assert_close(mean, expected_mean)
    torch.testing.assert_close(invstd, torch.rsqrt(var + 1e-5))


def test_batchnorm_function_first_second_and_third_derivatives_are_exact():
    x, w, b = rand(4, 3, 5, 5).requires_grad_(), rand(3, seed=1).requires_grad_(), rand(3, seed=2).requires_grad_()
    y, _, _ = BatchNormFunction.apply(x, w, b, 1e-5)
    torch.testing.assert_close(y, F.batch_norm(x, None, None, w, b, training=True, eps=1e-5))

    def bn(x, w, b):
        return BatchNormFunction.apply(x, w, b, 1e-5)[0]

    tight = {"rtol": 1e-6, "atol": 1e-8}  # float64: finite differences agree to ~1e-8 here
    assert gradcheck(bn, (x, w, b), **tight) and gradgradcheck(bn, (x, w, b), **tight)
    # the written-out backward of the backward, directly (and its own derivative: third order)
    g = rand(4, 3, 5, 5, seed=3).requires_grad_()

    def backward(g, x, w):  # mean and invstd are functions of x, passed as values
        _, mean, invstd = torch.native_batch_norm(x.detach(), w.detach(), None, None, None, True, 0.0, 1e-5)
        return BatchNormGrad.apply(g, x, w, mean, invstd, 1e-5)

    assert gradcheck(backward, (g, x, w), **tight) and gradgradcheck(backward, (g, x, w), **tight)


def maml_like_meta_gradient(norm: TaskBatchNorm, execution: str) -> dict[str, torch.Tensor]:
    """Meta-gradient of a one-step inner loop through conv -> BatchNorm, for 3 tasks (vmap or a loop), float64."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), norm).double()
    with torch.no_grad():
        norm.weight.copy_(rand(4) + 1)
        norm.bias.copy_(rand(4, seed=1))
    support, query = rand(3, 6, 2, 5, 5, seed=2), rand(3, 6, 2, 5, 5, seed=3)
    params = dict(net.named_parameters())

    def task(s: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        inner = grad(lambda p: functional_call(net, p, (s,)).pow(3).sum())(params)
        adapted = {n: p - 0.1 * inner[n] for n, p in params.items()}
        return functional_call(net, adapted, (q,)).sin().sum()

    losses = vmap(task)(support, query) if execution == "vmap" else torch.stack(list(map(task, support, query)))
    return dict(zip(params, torch.autograd.grad(losses.sum(), list(params.values())), strict=True))


def test_second_derivative_under_vmap_is_exact():
    """What per_task(execution="vmap") runs (fused=False) against the loop's fused kernel, second order."""
    norm = TaskBatchNorm(4).double()
    looped = maml_like_meta_gradient(norm, "loop")
    norm.fused = False
    mapped = maml_like_meta_gradient(norm, "vmap")
    for name in looped:
        torch.testing.assert_close(mapped[name], looped[name], rtol=1e-9, atol=1e-9, msg=name)


@pytest.mark.xfail(strict=True, reason="torch 2.14: F.batch_norm's second derivative is wrong under vmap")
def test_fused_second_derivative_under_vmap():
    """Watches the PyTorch bug that BatchNormFunction works around: if this starts passing (XPASS fails the run),
    the fused kernel is right under vmap and TaskBatchNorm can drop BatchNormFunction."""
    norm = TaskBatchNorm(4).double()
    mapped, looped = maml_like_meta_gradient(norm, "vmap"), maml_like_meta_gradient(norm, "loop")
    for name in looped:
        torch.testing.assert_close(mapped[name], looped[name], rtol=1e-9, atol=1e-9, msg=name)


@pytest.mark.parametrize("stats_rows", [None, 3])
def test_batchnorm_forms_agree(stats_rows):
    norm = TaskBatchNorm(4).double()
    with torch.no_grad():
        norm.weight.copy_(rand(4) + 1)
        norm.bias.copy_(rand(4, seed=1))
    x = rand(7, 4, 5, 5, seed=2) * 2 + 0.5
    fused = norm(x, stats_rows)
    norm.fused = False
    torch.testing.assert_close(norm(x, stats_rows), fused)
    reference = x if stats_rows is None else x[:stats_rows]
    var, mean = torch.var_mean(reference, dim=(0, 2, 3), unbiased=False, keepdim=True)
    expected = (x - mean) / torch.sqrt(var + norm.eps) * norm.weight[:, None, None] + norm.bias[:, None, None]
    torch.testing.assert_close(fused, expected)
