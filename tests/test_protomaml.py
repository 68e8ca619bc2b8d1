"""ProtoMAML: the output layer starts as the prototype classifier, and the meta-gradient flows through it.

Float64 on a tiny Conv4 (width 3, 16x16 images), like tests/test_maml.py.
"""

import pytest
import torch
from random_tasks import SIZE, N, Q
from random_tasks import batch as random_batch
from torch import nn

from mlscratch.algorithms import ALGORITHMS, ProtoMAML, build
from mlscratch.checkpoint import load_checkpoint, save_checkpoint
from mlscratch.cli import main
from mlscratch.errors import ConfigError
from mlscratch.inner_loop import split_parameters
from mlscratch.tasks import TaskBatch

torch.set_num_threads(1)  # tiny tensors: extra threads only add overhead (and stall on a busy machine)


def tiny(**kwargs) -> ProtoMAML:
    torch.manual_seed(0)
    kwargs = {"n_way": N, "image_size": SIZE, "width": 3, "inner_lr": 0.3, "execution": "loop", **kwargs}
    return build("protomaml", **kwargs).double()


def batch(b=2, seed=1) -> TaskBatch:
    return random_batch(b, seed)


def prototypes(learner, support_x, support_y):
    """Class means of the embeddings, computed plainly: [N, D]."""
    z = learner.backbone(support_x)
    return torch.stack([z[support_y == k].mean(0) for k in range(N)])


def test_head_before_adaptation_is_the_prototype_classifier():
    learner, tasks = tiny(), batch()
    sx, sy, qx = tasks.support_x[0], tasks.support_y[0], tasks.query_x[0]
    params, _ = learner.task_weights(sx, sy)
    with torch.no_grad():
        c = prototypes(learner, sx, sy)
        torch.testing.assert_close(params["head.weight"], 2 * c)
        torch.testing.assert_close(params["head.bias"], -(c**2).sum(-1))
        # before any inner step the logits are ProtoNet's -||z - c||^2, up to -||z||^2 (same for every class)
        before = learner.adaptation_logits(*tasks[:3], steps=0)[0, 0]
        distances = torch.cdist(learner.backbone(qx), c) ** 2
    torch.testing.assert_close(before.softmax(-1), (-distances).softmax(-1))
    assert "head.weight" not in dict(learner.named_parameters())  # no shared output layer at all


class DetachedPrototypes(ProtoMAML):
    """The same head, but with the prototypes cut from the graph: what the meta-gradient must NOT equal."""

    def task_weights(self, support_x, support_y):
        params, fixed = super().task_weights(support_x, support_y)
        return {
            **params,
            "head.weight": params["head.weight"].detach(),
            "head.bias": params["head.bias"].detach(),
        }, fixed


def directional_derivative(learner, tasks, direction):
    learner.zero_grad()
    learner.meta_loss(tasks)[0].backward()
    return sum((p.grad * direction[n]).sum().item() for n, p in learner.backbone.named_parameters())


def finite_difference(direction, tasks, eps=1e-6, **kwargs):
    def loss_at(sign):
        shifted = tiny(**kwargs)
        with torch.no_grad():
            for n, p in shifted.backbone.named_parameters():
                p.add_(sign * eps * direction[n])
        return shifted.meta_loss(tasks)[0].item()

    return (loss_at(+1) - loss_at(-1)) / (2 * eps)


@pytest.mark.parametrize(
    "settings",
    [{"inner_steps": 2}, {"inner_steps": 0, "first_order": True}],
    ids=["second-order", "first-order-at-the-prototypes"],
)
def test_meta_gradient_passes_through_the_prototypes(settings):
    """Exact meta-gradient == finite differences, and != the gradient with the prototypes detached.

    With 0 inner steps the first-order gradient is exact too, and only the prototype path links query loss and
    embedding weights through the head: fo-ProtoMAML keeps it.
    """
    tasks = batch()
    torch.manual_seed(3)
    direction = {n: torch.randn_like(p) for n, p in tiny().backbone.named_parameters()}
    numeric = finite_difference(direction, tasks, **settings)
    analytic = directional_derivative(tiny(**settings), tasks, direction)
    assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-8)
    torch.manual_seed(0)
    kwargs = {"n_way": N, "image_size": SIZE, "width": 3, "inner_lr": 0.3, "execution": "loop", **settings}
    detached = DetachedPrototypes(**kwargs).double()
    assert abs(directional_derivative(detached, tasks, direction) - numeric) > 1e-3 * abs(numeric)


def test_vmap_and_loop_paths_agree():
    tasks, results = batch(b=3), {}
    for execution in ("loop", "vmap"):
        learner = tiny(execution=execution, inner_steps=2)
        loss, _ = learner.meta_loss(tasks)
        loss.backward()
        grads = [p.grad.clone() for p in learner.parameters()]
        results[execution] = (loss.detach(), grads, learner.adaptation_logits(*tasks[:3], steps=2))
    (l1, g1, s1), (l2, g2, s2) = results["loop"], results["vmap"]
    torch.testing.assert_close(l1, l2, rtol=0, atol=1e-8)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-8)
    torch.testing.assert_close(s1, s2, rtol=0, atol=1e-8)


def test_support_batchnorm_and_custom_embedding_backbone():
    tasks = batch()
    learner = tiny(bn="support")
    logits = learner.predict(*tasks[:3])
    assert logits.shape == (2, N * Q, N)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE, 8), nn.ReLU(), nn.Linear(8, 6)).double()  # 6 features
    custom = build("protomaml", n_way=N, backbone=net, inner_lr=0.3)
    assert custom.n_way == N and custom.hparams["backbone"] == "custom"
    loss, _ = custom.meta_loss(tasks)
    loss.backward()
    assert net[1].weight.grad.abs().sum() > 0


def test_bad_settings_are_clear_errors():
    with pytest.raises(ConfigError, match="learned Meta Dropout"):
        build("protomaml", meta_dropout="learned")
    with pytest.raises(ConfigError, match="inner_lr must be positive"):
        build("protomaml", inner_lr=0)
    with pytest.raises(ConfigError, match="5-way output layer but the tasks are 3-way"):
        build("protomaml", image_size=SIZE, width=3).double().meta_loss(batch())


def test_registry_hparams_rebuild_and_checkpoint_round_trip(tmp_path):
    assert ALGORITHMS["protomaml"] is ProtoMAML
    learner = tiny(first_order=True, inner_steps=2)
    adapted, _ = split_parameters(learner.backbone)
    assert not any(name.startswith("head") for name in adapted)
    clone = build("protomaml", **learner.hparams)
    assert clone.hparams == learner.hparams and clone.first_order and clone.inner_steps == 2
    save_checkpoint(tmp_path / "p.pt", learner)
    loaded = load_checkpoint(tmp_path / "p.pt").double()
    tasks = batch(seed=4)
    torch.testing.assert_close(loaded.predict(*tasks[:3]), learner.predict(*tasks[:3]), rtol=0, atol=1e-5)


def test_cli_trains_protomaml(tmp_path):
    argv = ["train", "--algo", "protomaml", "--dataset", "synthetic", "--image-size", "16", "--width", "4"]
    argv += ["--ways", "3", "--queries", "2", "--meta-batch", "2", "--iterations", "2", "--val-tasks", "2"]
    assert main([*argv, "--eval-tasks", "4", "--no-progress", "--json", str(tmp_path / "p.json")]) == 0
