"""Conv4: shapes, BatchNorm modes, functional_call / vmap compatibility, the perturbation hook."""

import pytest
import torch
from torch import nn
from torch.func import functional_call, vmap

from mlscratch.errors import ConfigError
from mlscratch.models import Conv4

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
