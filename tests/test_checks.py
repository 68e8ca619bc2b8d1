"""The exercise checks accept right answers and reject the typical wrong ones, with a message either way."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import functional_call

from mlscratch import checks


def test_inner_loop_check(capsys):
    assert checks.check_inner_loop(checks.reference_inner_loop)

    def first_order(model, params, x, y, lr, steps):
        for _ in range(steps):
            loss = F.cross_entropy(functional_call(model, params, (x,)), y)
            grads = torch.autograd.grad(loss, list(params.values()))  # no create_graph
            params = {n: w - lr * g for (n, w), g in zip(params.items(), grads, strict=True)}
        return params

    assert not checks.check_inner_loop(first_order)
    assert "create_graph=True" in capsys.readouterr().out

    def wrong_sign(model, params, x, y, lr, steps):
        return checks.reference_inner_loop(model, params, x, y, -lr, steps)

    assert not checks.check_inner_loop(wrong_sign)
    assert not checks.check_inner_loop(None)
    assert "not answered yet" in capsys.readouterr().out


def test_hvp_check():
    def hvp(loss_fn, weights, v):
        grads = torch.autograd.grad(loss_fn(), weights, create_graph=True)
        return torch.autograd.grad(sum((g * d).sum() for g, d in zip(grads, v, strict=True)), weights)

    def gradient_only(loss_fn, weights, v):
        return torch.autograd.grad(loss_fn(), weights)

    def stub(loss_fn, weights, v):
        raise NotImplementedError

    assert checks.check_hvp(hvp)
    assert not checks.check_hvp(gradient_only)
    assert not checks.check_hvp(stub)


def test_best_eps_check():
    assert checks.check_best_eps(1e-5)
    assert not checks.check_best_eps(1e-2)
    assert not checks.check_best_eps(1e-12)
    assert not checks.check_best_eps(None)


def test_steps_difference_check():
    per_step = torch.tensor([[20.0, 90, 92], [20, 80, 80], [20, 100, 96]])
    d = torch.tensor([2.0, 0, -4])
    assert checks.check_steps_difference(d.mean().item(), 1.96 * d.std().item() / 3**0.5, per_step)
    assert not checks.check_steps_difference(d.mean().item(), 5.0, per_step)


def test_first_order_gradient_check(capsys):
    assert checks.check_first_order_gradient(
        lambda model, task, lr, steps: checks.reference_first_order_gradient(model, task, lr, steps)
    )

    def exact(model, task, lr, steps):
        sx, sy, qx, qy = task
        params = dict(model.named_parameters())
        adapted = checks.reference_inner_loop(model, params, sx, sy, lr, steps)
        loss = F.cross_entropy(functional_call(model, adapted, (qx,)), qy)
        return torch.autograd.grad(loss, list(params.values()))

    assert not checks.check_first_order_gradient(exact)
    assert "second-order" in capsys.readouterr().out


def test_cosine_limit_and_paired_difference_checks(capsys):
    assert checks.check_cosine_limit(1.0)
    assert not checks.check_cosine_limit(0.0)

    def paired(a, b):
        d = a - b
        return d.mean(), 1.96 * d.std() / len(d) ** 0.5

    def unpaired(a, b):
        return (a - b).mean(), 1.96 * (a.var() / len(a) + b.var() / len(b)) ** 0.5

    assert checks.check_paired_difference(paired)
    assert not checks.check_paired_difference(unpaired)
    assert "ignores the pairing" in capsys.readouterr().out
