"""Reptile: the outer update by hand, one SGD step == joint training, the annealed step, settings, end to end.

Float64 on a tiny Conv4 (width 3, 16x16 images), like tests/test_maml.py.
"""

import json

import pytest
import torch
import torch.nn.functional as F
from random_tasks import SIZE, N, batch
from torch.func import functional_call

from mlscratch.algorithms import ALGORITHMS, Reptile, build
from mlscratch.checkpoint import load_checkpoint, save_checkpoint
from mlscratch.cli import main
from mlscratch.data.classes import ClassImages
from mlscratch.errors import ConfigError
from mlscratch.tasks import TaskBatch, TaskSampler, minibatch_order
from mlscratch.training import fit

torch.set_num_threads(1)  # tiny tensors: extra threads only add overhead (and stall on a busy machine)

EPSILON = 0.7


def tiny(**kwargs) -> Reptile:
    torch.manual_seed(0)
    kwargs = {"n_way": N, "image_size": SIZE, "width": 3, "inner_lr": 0.05, "execution": "loop", **kwargs}
    return build("reptile", **kwargs).double()


def weights(learner) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in learner.backbone.named_parameters()}


def outer_step(learner, tasks, seed=7) -> dict[str, float]:
    optimizer, _ = learner.configure_optimizer(EPSILON, 10)
    torch.manual_seed(seed)  # the mini-batch order
    return learner.outer_step(tasks, optimizer)


def task_images(tasks: TaskBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """All images of each task, as Reptile trains on them: [B, M, ...], [B, M]."""
    return torch.cat([tasks.support_x, tasks.query_x], 1), torch.cat([tasks.support_y, tasks.query_y], 1)


# --- an independent implementation with plain autograd ------------------------------------------------
def adapted_by_hand(model, theta, x, y, order, optimizer, lr, steps, adam_state=None):
    """phi after `steps` inner steps of SGD or Adam (beta1 = 0, beta2 = 0.999, eps = 1e-8), mini-batch s = order[s].

    adam_state: {"t": steps so far, "v": second moments}, updated in place (the official code's carried Adam);
    None: fresh moments."""
    params = {n: p.clone().requires_grad_() for n, p in theta.items()}
    adam_state = {"t": 0, "v": {n: torch.zeros_like(p) for n, p in theta.items()}} if adam_state is None else adam_state
    second_moment, t0 = adam_state["v"], adam_state["t"]
    adam_state["t"] += steps
    for t in range(t0 + 1, t0 + steps + 1):
        index = order[t - t0 - 1]
        loss = F.cross_entropy(functional_call(model, params, (x[index],)), y[index])
        grads = dict(zip(params, torch.autograd.grad(loss, list(params.values())), strict=True))
        new = {}
        for n, p in params.items():
            if optimizer == "sgd":
                new[n] = p - lr * grads[n]
            else:
                second_moment[n] = 0.999 * second_moment[n] + 0.001 * grads[n] ** 2
                new[n] = p - lr * grads[n] / ((second_moment[n] / (1 - 0.999**t)).sqrt() + 1e-8)
        params = {n: p.detach().requires_grad_() for n, p in new.items()}
    return {n: p.detach() for n, p in params.items()}


@pytest.mark.parametrize("inner_batch", [None, 4])
@pytest.mark.parametrize("optimizer,state", [("sgd", "fresh"), ("adam", "fresh"), ("adam", "carried")])
def test_outer_update_is_theta_plus_epsilon_times_mean_of_phi_minus_theta(optimizer, state, inner_batch):
    learner = tiny(inner_optimizer=optimizer, inner_steps=3, inner_batch=inner_batch, inner_state=state)
    tasks = batch()
    theta = weights(learner)
    x, y = task_images(tasks)
    torch.manual_seed(7)
    order = minibatch_order(*y.shape, 3, inner_batch, y.device)
    carried = {"t": 0, "v": {n: torch.zeros_like(p) for n, p in theta.items()}} if state == "carried" else None
    phis = [  # carried: task i starts from the moments task i-1 left
        adapted_by_hand(learner.backbone, theta, x[i], y[i], order[i], optimizer, learner.inner_lr, 3, carried)
        for i in range(len(x))
    ]
    metrics = outer_step(learner, tasks)
    after = weights(learner)
    for n in theta:
        mean_phi = torch.stack([phi[n] for phi in phis]).mean(0)
        expected = theta[n] + EPSILON * (mean_phi - theta[n])
        # a conv bias before BatchNorm has zero gradient: Adam divides rounding noise by its own size there
        atol = 1e-7 if optimizer == "adam" and n.endswith("conv.bias") else 1e-12
        torch.testing.assert_close(after[n], expected, rtol=1e-9, atol=atol, msg=n)
    assert max((after[n] - theta[n]).abs().max().item() for n in theta) > 1e-2  # it really moved
    assert set(metrics) == {"loss", "accuracy"} and 0 <= metrics["accuracy"] <= 1


def test_carried_adam_state_survives_iterations_and_test_tasks_leave_it_unchanged(tmp_path):
    learner, tasks = tiny(inner_steps=2, inner_batch=4, test_inner_steps=3), batch()
    assert int(learner.inner_adam_t) == 0 and learner.inner_adam_v.abs().sum() == 0
    outer_step(learner, tasks)
    assert int(learner.inner_adam_t) == 2 * len(tasks.support_x)  # steps x tasks, one after another
    moments = learner.inner_adam_v.clone()
    assert moments.abs().sum() > 0
    carried = learner.predict(*tasks[:3])
    assert torch.equal(learner.inner_adam_v, moments) and int(learner.inner_adam_t) == 6  # restored after a test task
    learner.inner_adam_v.zero_()
    learner.inner_adam_t.zero_()
    assert not torch.allclose(learner.predict(*tasks[:3]), carried)  # test tasks really start from the moments
    outer_step(learner, tasks)
    assert int(learner.inner_adam_t) == 6
    save_checkpoint(tmp_path / "r.pt", learner)
    loaded = load_checkpoint(tmp_path / "r.pt")
    assert torch.allclose(loaded.inner_adam_v, learner.inner_adam_v.float()) and int(loaded.inner_adam_t) == 6
    fresh = tiny(inner_steps=2, inner_batch=4, inner_state="fresh")
    outer_step(fresh, tasks)
    assert not hasattr(fresh, "inner_adam_v")  # fresh: nothing carried


def test_one_sgd_step_is_a_joint_training_step():
    """k = 1: phi_i - theta = -alpha grad L_i(theta), so Reptile = SGD of size epsilon * alpha on mean_i L_i."""
    learner, tasks = tiny(inner_optimizer="sgd", inner_steps=1, inner_batch=None), batch()
    theta = weights(learner)
    x, y = task_images(tasks)
    joint = torch.stack([F.cross_entropy(learner.backbone(x[i]), y[i]) for i in range(len(x))]).mean()
    grads = dict(zip(theta, torch.autograd.grad(joint, list(learner.backbone.parameters())), strict=True))
    outer_step(learner, tasks)
    after = weights(learner)
    for n in theta:
        expected = theta[n] - EPSILON * learner.inner_lr * grads[n]
        torch.testing.assert_close(after[n], expected, rtol=1e-9, atol=1e-12, msg=n)
    # two inner steps are no longer a joint-training step (of any size along the same gradient)
    two = tiny(inner_optimizer="sgd", inner_steps=2, inner_batch=None)
    outer_step(two, tasks)
    moved = torch.cat([(weights(two)[n] - theta[n]).flatten() for n in theta])
    gradient = torch.cat([grads[n].flatten() for n in theta])
    assert F.cosine_similarity(moved, -gradient, dim=0).item() < 1 - 1e-6


def test_epsilon_is_annealed_linearly_to_zero():
    optimizer, schedule = tiny().configure_optimizer(1.0, 4)
    rates = []
    for _ in range(4):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates == pytest.approx([1.0, 0.75, 0.5, 0.25])


def test_minibatches_go_through_all_images_before_repeating():
    torch.manual_seed(0)
    order = minibatch_order(2, 12, 5, 4, torch.device("cpu"))  # 20 draws: one full pass, then 8 of the next
    assert order.shape == (2, 5, 4)
    for task in order:
        assert sorted(task.flatten()[:12].tolist()) == list(range(12))
        assert len(set(task.flatten()[12:].tolist())) == 8
    assert (minibatch_order(2, 12, 3, None, torch.device("cpu")) == torch.arange(12)).all()


def test_vmap_and_loop_give_the_same_update():
    tasks, after = batch(), {}
    for execution in ("loop", "vmap"):
        learner = tiny(execution=execution, inner_optimizer="sgd", inner_steps=2, inner_batch=4, test_inner_steps=2)
        metrics = outer_step(learner, tasks)
        after[execution] = (weights(learner), metrics, learner.predict(*tasks[:3]))
    (w1, m1, p1), (w2, m2, p2) = after["loop"], after["vmap"]
    for n in w1:
        torch.testing.assert_close(w1[n], w2[n], rtol=0, atol=1e-9, msg=n)
    assert m1 == pytest.approx(m2)
    torch.testing.assert_close(p1, p2, rtol=0, atol=1e-6)


def test_transductive_flag_chooses_the_batchnorm_statistics():
    tasks = batch()
    for transductive, bn in ((True, "transductive"), (False, "support")):
        learner = tiny(transductive=transductive, test_inner_steps=2)
        assert learner.backbone.bn == bn
        all_queries = learner.predict(*tasks[:3])
        some = learner.predict(tasks.support_x, tasks.support_y, tasks.query_x[:, :2])
        same = torch.allclose(all_queries[:, :2], some, atol=1e-10)
        assert same is not transductive  # non-transductive: a query's score does not depend on the other queries


def test_bad_settings_are_clear_errors():
    with pytest.raises(ConfigError, match="epsilon"):
        tiny().configure_optimizer(-1.0, 10)
    with pytest.raises(ConfigError, match="inner_steps must be an integer >= 1"):
        tiny(inner_steps=0)
    with pytest.raises(ConfigError, match="inner_optimizer='rmsprop'; use one of sgd, adam"):
        tiny(inner_optimizer="rmsprop")
    with pytest.raises(ConfigError, match="inner_batch"):
        tiny(inner_batch=0)
    with pytest.raises(ConfigError, match="inner_state='reset'; use one of carried, fresh"):
        tiny(inner_state="reset")
    with pytest.raises(ConfigError, match="reptile does not take first_order"):
        build("reptile", first_order=False)


def test_registry_hparams_rebuild_and_checkpoint_round_trip(tmp_path):
    assert ALGORITHMS["reptile"] is Reptile and "first_order" not in Reptile.hyperparameters()
    learner = tiny(inner_optimizer="sgd", transductive=False, inner_batch=None)
    assert learner.first_order and learner.hparams["transductive"] is False and "bn" not in learner.hparams
    clone = build("reptile", **learner.hparams)
    assert clone.hparams == learner.hparams and clone.inner_optimizer == "sgd" and clone.backbone.bn == "support"
    outer_step(learner, batch())
    save_checkpoint(tmp_path / "r.pt", learner)
    loaded = load_checkpoint(tmp_path / "r.pt").double()  # float32 -> float64: equal to float32 rounding
    tasks = batch(seed=4)
    torch.testing.assert_close(loaded.predict(*tasks[:3]), learner.predict(*tasks[:3]), rtol=0, atol=1e-5)


def test_resume_restores_the_annealed_step_exactly(tmp_path):
    def sampler():
        g = torch.Generator().manual_seed(0)
        classes = ClassImages.from_tensors(torch.rand(12, 5, 1, SIZE, SIZE, generator=g))
        return TaskSampler(classes, n_way=N, k_shot=1, k_query=2, batch_size=2, seed=0)

    def train(path, stop_after=None):
        torch.manual_seed(0)
        learner = build("reptile", n_way=N, image_size=SIZE, width=3, inner_steps=2, inner_batch=4)
        step, calls = learner.outer_step, []

        def interrupted(*args):
            if len(calls) == stop_after:
                raise KeyboardInterrupt
            calls.append(1)
            return step(*args)

        learner.outer_step = interrupted
        fit(learner, sampler(), 4, outer_lr=1.0, checkpoint=path, checkpoint_every=2, progress=False, seed=3)
        return learner

    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "a.pt", stop_after=3)  # checkpoint at iteration 2
    resumed, straight = train(tmp_path / "a.pt"), train(tmp_path / "b.pt")
    for (name, a), b in zip(resumed.state_dict().items(), straight.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_cli_trains_and_evaluates_reptile_end_to_end(tmp_path, capsys):
    report_path = tmp_path / "reptile.json"
    argv = ["train", "--algo", "reptile", "--dataset", "synthetic", "--image-size", "16", "--width", "4"]
    argv += ["--ways", "3", "--queries", "3", "--meta-batch", "2", "--iterations", "3", "--outer-lr", "1.0"]
    argv += ["--inner-steps", "2", "--test-inner-steps", "3", "--val-every", "2", "--val-tasks", "2"]
    argv += ["--eval-tasks", "4", "--no-progress", "--checkpoint", str(tmp_path / "r.pt"), "--json", str(report_path)]
    assert main(argv) == 0
    report = json.loads(report_path.read_text())
    assert report["algo"] == "reptile" and report["hparams"]["inner_optimizer"] == "adam"
    assert 0 <= report["test_accuracy"] <= 100 and len(report["step_accuracies"]) == 4
    assert main(["evaluate", "--checkpoint", str(tmp_path / "r.pt"), "--eval-tasks", "4", "--no-progress"]) == 0
    assert "reptile" in capsys.readouterr().out
    assert main(["train", "--algo", "reptile", "--dataset", "synthetic", "--bn", "support", "--no-progress"]) == 2
    assert "reptile does not take --bn" in capsys.readouterr().err
