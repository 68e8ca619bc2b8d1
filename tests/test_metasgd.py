"""Meta-SGD: learned per-weight learning rates get their exact meta-gradient; frozen at alpha it is MAML.

Float64 on a tiny Conv4 (width 3, 16x16 images), like tests/test_maml.py.
"""

import pytest
import torch
import torch.nn.functional as F
from random_tasks import SIZE, N, batch
from torch.func import functional_call

from mlscratch.algorithms import ALGORITHMS, MetaSGD, build
from mlscratch.algorithms.metasgd import rate_key
from mlscratch.checkpoint import load_checkpoint, save_checkpoint
from mlscratch.cli import main
from mlscratch.errors import ConfigError
from mlscratch.inner_loop import split_parameters

torch.set_num_threads(1)  # tiny tensors: extra threads only add overhead (and stall on a busy machine)

ALPHA = 0.25  # exact in float32, so the float32-built rates equal it exactly after .double()


def tiny(algo="metasgd", **kwargs):
    torch.manual_seed(0)
    kwargs = {"n_way": N, "image_size": SIZE, "width": 3, "inner_lr": ALPHA, "execution": "loop", **kwargs}
    return build(algo, **kwargs).double()


def meta_gradient(learner, tasks):
    learner.zero_grad()
    loss, _ = learner.meta_loss(tasks)
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in learner.named_parameters()}


def test_rates_are_outer_loop_parameters_shaped_like_the_weights():
    learner = tiny()
    adapted, fixed = split_parameters(learner.backbone)
    assert set(learner.learning_rates) == {rate_key(name) for name in adapted}
    for name, p in adapted.items():
        rate = learner.learning_rates[rate_key(name)]
        assert rate.shape == p.shape and (rate == ALPHA).all()
    assert not any("learning_rates" in name for name in {**adapted, **fixed})  # never adapted in the inner loop
    assert sum(p.numel() for p in learner.learning_rates.parameters()) == sum(p.numel() for p in adapted.values())


@pytest.mark.parametrize("first_order", [False, True])
def test_with_rates_frozen_at_alpha_it_is_maml(first_order):
    tasks = batch()
    loss, grads = meta_gradient(tiny(first_order=first_order), tasks)
    maml_loss, maml_grads = meta_gradient(tiny("maml", first_order=first_order), tasks)
    torch.testing.assert_close(loss, maml_loss, rtol=1e-12, atol=0)
    for name, g in maml_grads.items():
        torch.testing.assert_close(grads[name], g, rtol=1e-9, atol=1e-12, msg=name)


def test_rates_receive_their_exact_meta_gradient():
    """One inner step: theta' = theta - alpha * g_s, so dL_q(theta')/dalpha = -g_s * grad L_q(theta') (exactly)."""
    learner, tasks = tiny(), batch()
    _, grads = meta_gradient(learner, tasks)
    theta = {n: p.detach() for n, p in learner.backbone.named_parameters()}
    expected = {n: torch.zeros_like(p) for n, p in theta.items()}
    for sx, sy, qx, qy in zip(*tasks, strict=True):
        w = {n: p.clone().requires_grad_() for n, p in theta.items()}
        g_s = torch.autograd.grad(F.cross_entropy(functional_call(learner.backbone, w, (sx,)), sy), list(w.values()))
        adapted = {n: (theta[n] - ALPHA * g).requires_grad_() for n, g in zip(theta, g_s, strict=True)}
        query = F.cross_entropy(functional_call(learner.backbone, adapted, (qx,)), qy)
        for n, g, g_q in zip(theta, g_s, torch.autograd.grad(query, list(adapted.values())), strict=True):
            expected[n] -= g * g_q / len(tasks.support_x)
    for n in theta:
        torch.testing.assert_close(grads[f"learning_rates.{rate_key(n)}"], expected[n], rtol=1e-9, atol=1e-14, msg=n)
    assert max(g.abs().max().item() for n, g in grads.items() if n.startswith("learning_rates")) > 1e-4


def test_a_zero_rate_freezes_its_weight_in_the_inner_loop():
    learner, tasks = tiny(), batch(b=1)
    with torch.no_grad():
        learner.learning_rates["head_weight"].zero_()
        learner.learning_rates["blocks_0_conv_weight"][0] = -1.0  # a negative rate climbs the support loss
    adapted, _ = learner.adapt(tasks.support_x[0], tasks.support_y[0], steps=2)
    torch.testing.assert_close(adapted["head.weight"], learner.backbone.head.weight)
    assert not torch.equal(adapted["head.bias"], learner.backbone.head.bias)


def test_outer_step_trains_the_rates_and_vmap_agrees():
    tasks, after = batch(), {}
    for execution in ("loop", "vmap"):
        learner = tiny(execution=execution)
        optimizer, _ = learner.configure_optimizer(1e-2, 10)
        learner.outer_step(tasks, optimizer)
        after[execution] = {n: p.detach().clone() for n, p in learner.named_parameters()}
    assert not torch.equal(
        after["loop"]["learning_rates.head_weight"], torch.full_like(after["loop"]["learning_rates.head_weight"], ALPHA)
    )
    for name, value in after["loop"].items():
        torch.testing.assert_close(after["vmap"][name], value, rtol=0, atol=1e-8, msg=name)


def test_bad_settings_registry_and_checkpoint_round_trip(tmp_path):
    with pytest.raises(ConfigError, match="inner_lr must be positive"):
        build("metasgd", inner_lr=-0.1)
    with pytest.raises(ConfigError, match="metasgd does not take rates"):
        build("metasgd", rates=0.1)
    assert ALGORITHMS["metasgd"] is MetaSGD
    learner = tiny(test_inner_steps=1)
    with torch.no_grad():
        learner.learning_rates["head_bias"].fill_(0.0625)
    clone = build("metasgd", **learner.hparams)
    assert clone.hparams == learner.hparams and clone.test_inner_steps == 1
    save_checkpoint(tmp_path / "m.pt", learner)
    loaded = load_checkpoint(tmp_path / "m.pt").double()
    assert (loaded.learning_rates["head_bias"] == 0.0625).all()  # the learned rates are part of the model
    tasks = batch(seed=4)
    torch.testing.assert_close(loaded.predict(*tasks[:3]), learner.predict(*tasks[:3]), rtol=0, atol=1e-5)


def test_cli_trains_metasgd(tmp_path):
    argv = ["train", "--algo", "metasgd", "--dataset", "synthetic", "--image-size", "16", "--width", "4"]
    argv += ["--ways", "3", "--queries", "2", "--meta-batch", "2", "--iterations", "2", "--val-tasks", "2"]
    assert main([*argv, "--eval-tasks", "4", "--no-progress", "--json", str(tmp_path / "m.json")]) == 0
