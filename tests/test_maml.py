"""MAML / FOMAML: exact meta-gradients (checked independently), vmap == loop, protocol behaviour.

Everything runs in float64 on a tiny Conv4 (width 3, 16x16 images) so checks are tight and fast.
"""

import pytest
import torch
import torch.nn.functional as F
from random_tasks import SIZE, N, Q, batch
from torch import nn
from torch.func import functional_call

from mlscratch.algorithms import ALGORITHMS, FOMAML, MAML, build
from mlscratch.errors import ConfigError
from mlscratch.inner_loop import split_parameters, task_scope
from mlscratch.tasks import TaskBatch

torch.set_num_threads(1)  # tiny tensors: extra threads only add overhead (and stall on a busy machine)


def tiny(execution="loop", **kwargs) -> MAML:
    torch.manual_seed(0)
    kwargs = {"n_way": N, "image_size": SIZE, "width": 3, "inner_lr": 0.3, "execution": execution, **kwargs}
    return build(kwargs.pop("algo", "maml"), **kwargs).double()


def meta_gradient(learner, tasks):
    learner.zero_grad()
    loss, _ = learner.meta_loss(tasks)
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in learner.backbone.named_parameters()}


# --- an independent implementation of the same objective, with plain autograd -----------------------
def losses(model, params, task):
    sx, sy, qx, qy = task

    def support(p):
        return F.cross_entropy(functional_call(model, p, (sx,)), sy)

    def query(p):
        return F.cross_entropy(functional_call(model, p, (qx,)), qy)

    return support, query


def independent_meta_gradient(learner, tasks, first_order):
    """d/dtheta mean_i L_q(theta - a grad L_s(theta)) = mean_i (I - a H_s) grad L_q(theta'), via explicit HVPs."""
    model, lr = learner.backbone, learner.inner_lr
    theta = {n: p.detach().requires_grad_() for n, p in model.named_parameters()}
    total = {n: torch.zeros_like(p) for n, p in theta.items()}
    for i in range(len(tasks.support_x)):
        support, query = losses(model, theta, TaskBatch(*(t[i] for t in tasks)))
        g_s = torch.autograd.grad(support(theta), list(theta.values()), create_graph=True)
        adapted = {n: (p - lr * g).detach().requires_grad_() for (n, p), g in zip(theta.items(), g_s, strict=True)}
        g_q = torch.autograd.grad(query(adapted), list(adapted.values()))
        if first_order:
            contribution = g_q
        else:  # Hessian-vector product H_s g_q = d/dtheta (grad L_s . g_q)
            hvp = torch.autograd.grad(sum((a * b).sum() for a, b in zip(g_s, g_q, strict=True)), list(theta.values()))
            contribution = [q - lr * h for q, h in zip(g_q, hvp, strict=True)]
        for n, c in zip(theta, contribution, strict=True):
            total[n] += c / len(tasks.support_x)
    return total


@pytest.mark.parametrize("algo", ["maml", "fomaml"])
def test_meta_gradient_matches_an_independent_computation(algo):
    learner, tasks = tiny(algo=algo), batch()
    _, ours = meta_gradient(learner, tasks)
    reference = independent_meta_gradient(learner, tasks, first_order=algo == "fomaml")
    for name in ours:
        torch.testing.assert_close(ours[name], reference[name], rtol=1e-7, atol=1e-10, msg=name)


def test_second_order_differs_from_first_order():
    tasks = batch()
    _, second = meta_gradient(tiny(algo="maml"), tasks)
    _, first = meta_gradient(tiny(algo="fomaml"), tasks)
    gap = max((second[n] - first[n]).abs().max().item() for n in second)
    assert gap > 1e-4  # the Hessian term is really there


def test_second_order_meta_gradient_matches_finite_differences():
    learner, tasks = tiny(), batch(b=2)
    learner.inner_steps = 2
    _, ours = meta_gradient(learner, tasks)
    direction = {n: torch.randn_like(p) for n, p in learner.backbone.named_parameters()}
    eps = 1e-6

    def loss_at(sign):
        shifted = tiny()
        shifted.inner_steps = 2
        with torch.no_grad():
            for n, p in shifted.backbone.named_parameters():
                p.add_(sign * eps * direction[n])
        return shifted.meta_loss(tasks)[0].item()

    numeric = (loss_at(+1) - loss_at(-1)) / (2 * eps)
    analytic = sum((ours[n] * direction[n]).sum().item() for n in ours)
    assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("algo", ["maml", "fomaml"])
@pytest.mark.parametrize("bn", ["transductive", "support"])
def test_vmap_and_loop_paths_agree(algo, bn):
    tasks = batch()
    results = {}
    for execution in ("loop", "vmap"):
        learner = tiny(execution, algo=algo, bn=bn, inner_steps=2)
        loss, grads = meta_gradient(learner, tasks)
        steps = learner.adaptation_logits(*tasks[:3], steps=3)
        results[execution] = (loss, grads, steps, learner.predict(*tasks[:3]))
    (l1, g1, s1, p1), (l2, g2, s2, p2) = results["loop"], results["vmap"]
    torch.testing.assert_close(l1, l2, rtol=0, atol=1e-6)
    for name in g1:
        torch.testing.assert_close(g1[name], g2[name], rtol=0, atol=1e-6, msg=name)
    torch.testing.assert_close(s1, s2, rtol=0, atol=1e-6)
    torch.testing.assert_close(p1, p2, rtol=0, atol=1e-6)


def test_execution_is_chosen_by_device():
    assert tiny("auto").resolved_execution() == "loop"  # cpu -> per-task loop
    assert tiny("vmap").resolved_execution() == "vmap"
    with pytest.raises(ConfigError, match="execution"):
        tiny("threads")


def test_training_uses_the_execution_auto_picks_for_the_batch():
    """meta_loss passes the batch to the rule: many tiny tasks in training batch by vmap on a CPU, as measured
    (benchmarks/bench_train_path.py); before, the rule never saw the batch and always took the loop."""
    learner = tiny("auto")
    learner.meta_loss(batch(b=16))  # 16 tasks x 12 images, with an outer graph
    assert learner.execution_reason.startswith("vmap: cpu, 16 tasks x 12 images, meta-training")
    learner.predict(*batch(b=16)[:3])  # no outer graph: the loop
    assert learner.execution_reason.startswith("loop: cpu, 16 tasks")


def test_predict_single_task_batch_and_adaptation_steps():
    learner, tasks = tiny(test_inner_steps=3), batch()
    logits = learner.predict(*tasks[:3])
    assert logits.shape == (3, N * Q, N) and not logits.requires_grad
    torch.testing.assert_close(learner.predict(*tasks.task(1)[:3]), logits[1:2])
    torch.testing.assert_close(learner.predict(*(t[1] for t in tasks[:3])), logits[1])
    steps = learner.adaptation_logits(*tasks[:3])
    assert steps.shape == (3, 4, N * Q, N)
    torch.testing.assert_close(steps[:, -1], logits)
    # before adaptation = the shared initialisation, no support information used
    with torch.no_grad():
        torch.testing.assert_close(steps[1, 0], learner.backbone(tasks.query_x[1]))


def test_inner_steps_lower_the_support_loss():
    learner, tasks = tiny(test_inner_steps=5), batch()
    support_scores = learner.adaptation_logits(tasks.support_x, tasks.support_y, tasks.support_x)  # score support
    loss = [F.cross_entropy(support_scores[:, s].flatten(0, 1), tasks.support_y.flatten()).item() for s in range(6)]
    assert loss[-1] < loss[0] * 0.8


def test_meta_loss_metrics_and_zero_inner_steps():
    learner, tasks = tiny(inner_steps=0), batch()
    loss, metrics = learner.meta_loss(tasks)
    with torch.no_grad():
        plain = F.cross_entropy(learner.backbone(tasks.query_x[0]), tasks.query_y[0])
    assert set(metrics) >= {"loss", "accuracy"} and 0 <= metrics["accuracy"] <= 1
    assert metrics["loss"] == pytest.approx(loss.item())
    single = build("maml", n_way=N, image_size=SIZE, width=3, inner_steps=0).double()
    single.load_state_dict(learner.state_dict())
    assert single.meta_loss(tasks.task(0))[0].item() == pytest.approx(plain.item())


def test_outer_loop_only_parameters_are_not_adapted_but_get_meta_gradient():
    class Scale(nn.Module):
        outer_loop_only = True

        def __init__(self):
            super().__init__()
            self.log_scale = nn.Parameter(torch.zeros(3, dtype=torch.float64))

        def forward(self, h):
            return h * self.log_scale.exp()[:, None, None]

    learner = tiny()
    learner.backbone.blocks[0].perturb = Scale().double()
    adapted, fixed = split_parameters(learner.backbone)
    assert "blocks.0.perturb.log_scale" in fixed and "blocks.0.perturb.log_scale" not in adapted
    loss, _ = learner.meta_loss(batch())
    loss.backward()
    assert learner.backbone.blocks[0].perturb.log_scale.grad.abs().sum() > 0


def test_task_scope_resets_per_task_state_even_after_errors():
    calls = []

    class Stateful(nn.Identity):
        def reset_task(self):
            calls.append("reset")

    model = nn.Sequential(Stateful())
    with pytest.raises(RuntimeError), task_scope(model):
        raise RuntimeError("boom")
    assert calls == ["reset", "reset"]
    learner = tiny()
    learner.backbone.blocks[0].perturb = Stateful()
    calls.clear()
    learner.meta_loss(batch(b=3))
    assert len(calls) == 6  # on entry and exit of each of the 3 tasks (per-task loop)


def test_registry_and_hparams_rebuild():
    assert {"maml", "fomaml"} <= set(ALGORITHMS)
    with pytest.raises(ConfigError, match="choose one of"):
        build("no-such-algorithm")
    with pytest.raises(ConfigError):
        build("maml", inner_lr=-1)
    learner = build("fomaml", n_way=N, width=3, image_size=SIZE, inner_steps=2)
    assert isinstance(learner, FOMAML) and learner.first_order
    clone = build(learner.name, **learner.hparams)
    assert clone.hparams == learner.hparams and clone.inner_steps == 2


def test_any_backbone_and_a_clear_error_when_head_and_ways_disagree():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE, 8), nn.ReLU(), nn.Linear(8, N)).double()
    learner = build("maml", backbone=net, inner_lr=0.3)
    assert learner.n_way == N and learner.hparams["backbone"] == "custom"
    tasks = batch()
    loss, _ = learner.meta_loss(tasks)
    loss.backward()
    assert net[1].weight.grad.abs().sum() > 0
    wide = build("maml", backbone=nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE, N + 2)).double())
    with pytest.raises(ConfigError, match=f"{N + 2}-way output layer but the tasks are {N}-way"):
        wide.meta_loss(tasks)
    with pytest.raises(ConfigError, match="custom backbone"):
        build("maml", **learner.hparams)
    clone = build("maml", **{**learner.hparams, "backbone": net})
    torch.testing.assert_close(clone.predict(*tasks[:3]), learner.predict(*tasks[:3]))


def test_fomaml_pins_first_order_and_refuses_learned_noise():
    with pytest.raises(ConfigError, match="does not take first_order"):
        build("fomaml", first_order=False)
    with pytest.raises(ConfigError, match="second-order"):
        build("fomaml", meta_dropout="learned")
    with pytest.raises(ConfigError, match="second-order"):
        build("maml", first_order=True, meta_dropout="learned")
    assert "first_order" not in build("fomaml").hparams and "first_order" not in FOMAML.hyperparameters()


def test_unknown_setting_is_named():
    with pytest.raises(ConfigError, match="maml does not take colour"):
        build("maml", colour="red")
