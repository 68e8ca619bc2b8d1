"""The exercise checks accept right answers and reject the typical wrong ones, with a message either way."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.func import functional_call

from mlscratch.course import ch01_tasks as ch01
from mlscratch.course import ch02_maml as ch02
from mlscratch.course import ch03_fomaml as ch03
from mlscratch.course import ch04_meta_dropout as ch04
from mlscratch.course import ch05_meta_networks as ch05


def test_inner_loop_check(capsys):
    assert ch02.check_inner_loop(ch02.reference_inner_loop)

    def first_order(model, params, x, y, lr, steps):
        for _ in range(steps):
            loss = F.cross_entropy(functional_call(model, params, (x,)), y)
            grads = torch.autograd.grad(loss, list(params.values()))  # no create_graph
            params = {n: w - lr * g for (n, w), g in zip(params.items(), grads, strict=True)}
        return params

    assert not ch02.check_inner_loop(first_order)
    assert "create_graph=True" in capsys.readouterr().out

    def wrong_sign(model, params, x, y, lr, steps):
        return ch02.reference_inner_loop(model, params, x, y, -lr, steps)

    assert not ch02.check_inner_loop(wrong_sign)
    assert not ch02.check_inner_loop(None)
    assert "not answered yet" in capsys.readouterr().out


def test_hvp_check():
    def hvp(loss_fn, weights, v):
        grads = torch.autograd.grad(loss_fn(), weights, create_graph=True)
        return torch.autograd.grad(sum((g * d).sum() for g, d in zip(grads, v, strict=True)), weights)

    def gradient_only(loss_fn, weights, v):
        return torch.autograd.grad(loss_fn(), weights)

    def stub(loss_fn, weights, v):
        raise NotImplementedError

    assert ch02.check_hvp(hvp)
    assert not ch02.check_hvp(gradient_only)
    assert not ch02.check_hvp(stub)


def test_best_eps_check():
    assert ch02.check_best_eps(1e-5)
    assert not ch02.check_best_eps(1e-2)
    assert not ch02.check_best_eps(1e-12)
    assert not ch02.check_best_eps(None)


def test_steps_difference_check():
    per_step = torch.tensor([[20.0, 90, 92], [20, 80, 80], [20, 100, 96]])
    d = torch.tensor([2.0, 0, -4])
    assert ch02.check_steps_difference(d.mean().item(), 4.303 * d.std().item() / 3**0.5, per_step)  # t, 2 dof
    assert not ch02.check_steps_difference(d.mean().item(), 1.96 * d.std().item() / 3**0.5, per_step)  # too narrow
    assert not ch02.check_steps_difference(d.mean().item(), 5.0, per_step)


def test_first_order_gradient_check(capsys):
    assert ch03.check_first_order_gradient(
        lambda model, task, lr, steps: ch03.reference_first_order_gradient(model, task, lr, steps)
    )

    def exact(model, task, lr, steps):
        sx, sy, qx, qy = task
        params = dict(model.named_parameters())
        adapted = ch02.reference_inner_loop(model, params, sx, sy, lr, steps)
        loss = F.cross_entropy(functional_call(model, adapted, (qx,)), qy)
        return torch.autograd.grad(loss, list(params.values()))

    assert not ch03.check_first_order_gradient(exact)
    assert "second-order" in capsys.readouterr().out


def test_cosine_limit_and_paired_difference_checks(capsys):
    assert ch03.check_cosine_limit(1.0)
    assert not ch03.check_cosine_limit(0.0)

    def paired(a, b):
        d = a - b
        return d.mean(), 1.96 * d.std() / len(d) ** 0.5

    def unpaired(a, b):
        return (a - b).mean(), 1.96 * (a.var() / len(a) + b.var() / len(b)) ** 0.5

    assert ch03.check_paired_difference(paired)
    assert not ch03.check_paired_difference(unpaired)
    assert "ignores the pairing" in capsys.readouterr().out


# --------------------------------------------------------------------------- chapters 1, 4, 5


def test_nearest_class_mean_check(capsys):
    from mlscratch.baselines import pixel_nearest_neighbour

    batch = ch01.toy_batch()
    # the toy tasks must tell the two rules apart, or the check could not catch nearest neighbour
    assert ch01.reference_nearest_class_mean(batch).mean() > pixel_nearest_neighbour(batch).mean() + 0.05
    assert ch01.check_nearest_class_mean(ch01.reference_nearest_class_mean)

    def by_reshape(batch):  # relies on TaskSampler's class-major order: also right
        n = batch.n_way
        means = batch.support_x.flatten(2).unflatten(1, (n, -1)).mean(2)
        return (torch.cdist(batch.query_x.flatten(2), means).argmin(-1) == batch.query_y).float().mean(1)

    assert ch01.check_nearest_class_mean(by_reshape)
    assert not ch01.check_nearest_class_mean(pixel_nearest_neighbour)
    assert "nearest neighbour" in capsys.readouterr().out
    assert not ch01.check_nearest_class_mean(lambda batch: 100 * ch01.reference_nearest_class_mean(batch))
    assert not ch01.check_nearest_class_mean(lambda batch: ch01.reference_nearest_class_mean(batch).mean())
    assert not ch01.check_nearest_class_mean(None)


def test_task_count_check(capsys):
    import math

    assert ch01.check_task_count(math.comb(423, 20) * 4**20)
    assert ch01.check_task_count(float(math.comb(423, 20) * 4**20))
    assert not ch01.check_task_count(math.comb(423, 20))
    assert "rotations" in capsys.readouterr().out
    assert not ch01.check_task_count(math.comb(1692, 20))
    assert "same character twice" in capsys.readouterr().out
    assert not ch01.check_task_count(math.perm(423, 20) * 4**20)
    assert not ch01.check_task_count(1e40)
    assert not ch01.check_task_count(0)
    assert not ch01.check_task_count(None)


def test_drawings_limit_check():
    from mlscratch.errors import ConfigError

    assert ch01.check_drawings_limit(20, ConfigError("k_shot + k_query = 21 but ..."))
    assert ch01.check_drawings_limit(20, ConfigError)
    assert not ch01.check_drawings_limit(21, ConfigError)
    assert not ch01.check_drawings_limit(20, IndexError("index out of range"))
    assert not ch01.check_drawings_limit(None, None)


def test_drawings_limit_matches_the_sampler():
    from mlscratch import TaskSampler
    from mlscratch.data import ClassImages
    from mlscratch.errors import ConfigError

    omniglot_like = ClassImages(torch.rand(6, 20, 1, 4, 4), torch.full((6,), 20), list("abcdef"), True)
    TaskSampler(omniglot_like, 5, 1, 19, 1).sample()  # shots + queries = 20 works
    try:
        TaskSampler(omniglot_like, 5, 1, 20, 1)
    except ConfigError as error:
        assert ch01.check_drawings_limit(20, error)
    else:
        raise AssertionError("the sampler accepted 21 drawings of a class that has 20")


def support_masks(dropout, h, steps, fresh):
    dropout.reset_task()
    masks = []
    for _ in range(steps):
        if fresh:
            dropout.reset_task()
        dropout(h)
        masks.append(dropout.mask.clone())
    return masks


def test_support_masks_check(capsys):
    assert ch04.check_support_masks(support_masks)

    def never_fresh(dropout, h, steps, fresh):
        return support_masks(dropout, h, steps, False)

    def never_reset(dropout, h, steps, fresh):
        masks = []
        for _ in range(steps):
            dropout(h)
            masks.append(dropout.mask.clone())
        return masks

    assert not ch04.check_support_masks(never_fresh)
    assert "before each step" in capsys.readouterr().out
    assert not ch04.check_support_masks(never_reset)
    assert not ch04.check_support_masks(lambda dropout, h, steps, fresh: [torch.ones(4, 5, 5)] * steps)
    assert not ch04.check_support_masks(None)
    assert "not answered yet" in capsys.readouterr().out


def test_softplus_noise_check(capsys):
    z = torch.randn(100_000, generator=torch.Generator().manual_seed(0))
    noise = F.softplus(z)
    assert ch04.check_softplus_noise(noise.mean().item(), (noise < 1).float().mean().item())
    assert not ch04.check_softplus_noise(1.0, 0.5)
    assert not ch04.check_softplus_noise(0.693, 0.706)
    assert "median" in capsys.readouterr().out
    assert not ch04.check_softplus_noise(noise.mean().item(), 0.5)
    assert not ch04.check_softplus_noise(None, None)


def test_distance_scorer_check(capsys):
    assert ch05.check_distance_scorer(ch05.reference_distance_scorer)
    assert ch05.check_distance_scorer(lambda a, w: -(torch.cdist(a, w) ** 2))
    assert ch05.check_distance_scorer(lambda a, w: 2 * a @ w.T - (w**2).sum(-1))  # the softmax is the same
    assert not ch05.check_distance_scorer(lambda a, w: a @ w.T)
    assert "dot product" in capsys.readouterr().out
    assert not ch05.check_distance_scorer(lambda a, w: torch.cdist(a, w) ** 2)
    assert "sign" in capsys.readouterr().out
    assert not ch05.check_distance_scorer(lambda a, w: -torch.cdist(a, w))
    assert not ch05.check_distance_scorer(lambda a, w: (a @ w.T).T)
    assert not ch05.check_distance_scorer(None)


def test_per_example_gradients_check(capsys):
    from torch.func import grad, vmap

    def with_vmap(model, x, y):
        params = {name: p.detach() for name, p in model.named_parameters()}

        def loss(params, xi, yi):
            return F.cross_entropy(functional_call(model, params, (xi[None],)), yi[None])

        return vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)

    def batch_mean(model, x, y):
        params = dict(model.named_parameters())
        grads = torch.autograd.grad(F.cross_entropy(model(x), y), list(params.values()))
        return {name: g.expand(len(x), *g.shape) for name, g in zip(params, grads, strict=True)}

    def divided(model, x, y):
        return {n: g / len(x) for n, g in ch05.reference_per_example_gradients(model, x, y).items()}

    assert ch05.check_per_example_gradients(ch05.reference_per_example_gradients)
    assert ch05.check_per_example_gradients(with_vmap)
    assert not ch05.check_per_example_gradients(batch_mean)
    assert "mean gradient" in capsys.readouterr().out
    assert not ch05.check_per_example_gradients(divided)
    assert "loss / M" in capsys.readouterr().out
    assert not ch05.check_per_example_gradients(None)


# --- chapters 04, 06, 07, 08: a right answer passes, a typical wrong one fails with its hint ---------------------


def test_kept_scale_check(capsys):
    from mlscratch.course import ch04_meta_dropout as ch04b

    assert ch04b.check_kept_scale(lambda rate: 1 / (1 - rate))
    assert not ch04b.check_kept_scale(lambda rate: 1 - rate)
    assert "scaled *up*" in capsys.readouterr().out
    assert not ch04b.check_kept_scale(None)


def test_metric_learning_checks(capsys):
    from mlscratch.course import ch06_metric_learning as ch06

    def means(h, y):
        return torch.stack([h[y == c].mean(0) for c in range(int(y.max()) + 1)])

    assert ch06.check_prototypes(means)
    assert not ch06.check_prototypes(lambda h, y: h.reshape(3, 3, -1).mean(1))
    assert "shuffled" in capsys.readouterr().out
    assert ch06.check_linear_head(lambda c: (2 * c, -(c**2).sum(-1)))
    assert not ch06.check_linear_head(lambda c: (c, -(c**2).sum(-1) / 2))
    assert "half of it" in capsys.readouterr().out
    assert ch06.check_cosine_ceiling(math.e / (math.e + 4 / math.e))
    assert not ch06.check_cosine_ceiling(1.0)
    assert not ch06.check_cosine_ceiling(None)


def test_beyond_checks(capsys):
    from mlscratch.course import ch07_beyond as ch07

    assert ch07.check_reptile_step(lambda theta, phis, eps: theta + eps * (phis - theta).mean(0))
    assert not ch07.check_reptile_step(lambda theta, phis, eps: phis.mean(0))
    assert "epsilon = 1" in capsys.readouterr().out
    assert ch07.check_metasgd_step(lambda p, g, r: p - r * g)
    assert not ch07.check_metasgd_step(lambda p, g, r: p - r.mean() * g)
    assert "MAML's step" in capsys.readouterr().out
    assert ch07.check_expected_gradients((1, -2), (1, -1), (2, -1))
    assert not ch07.check_expected_gradients((1, -1), (1, -1), (2, -1))
    assert "MAML" in capsys.readouterr().out


def test_expected_gradient_formulas_hold_to_second_order():
    from mlscratch.course.ch07_beyond import expected_gradient_errors

    coarse, fine = expected_gradient_errors(0.02), expected_gradient_errors(0.01)
    assert 3.5 < coarse["MAML"] / fine["MAML"] < 4.5  # the neglected terms are O(alpha^2)
    assert coarse["FOMAML"] < 1e-10 and coarse["Reptile"] < 1e-10  # exact on quadratic losses


def test_comparison_checks(capsys):
    from mlscratch.course import ch08_comparison as ch08

    seeds = torch.tensor([81.0, 84.0, 79.5], dtype=torch.float64)
    assert ch08.check_t_interval(4.303 * seeds.std().item() / 3**0.5)
    assert not ch08.check_t_interval(1.96 * seeds.std().item() / 3**0.5)
    assert "uses 1.96" in capsys.readouterr().out
    assert ch08.check_paired_verdict("no detectable difference")
    assert not ch08.check_paired_verdict("better")
    assert ch08.check_compute_ratio(2600 / 483, 2600.0, 483.0)
    assert not ch08.check_compute_ratio(483 / 2600, 2600.0, 483.0)
    assert not ch08.check_compute_ratio(None, 2600.0, 483.0)


def test_class_weights_check(capsys):
    def right(h, y, u, e):
        projected = h @ u.T + e
        return torch.stack([projected[y == c].mean(0) for c in range(int(y.max()) + 1)])

    assert ch05.check_class_weights(right)
    assert not ch05.check_class_weights(lambda h, y, u, e: right(h, y, u, torch.zeros_like(e)))
    assert "bias e is missing" in capsys.readouterr().out
    assert not ch05.check_class_weights(None)


def test_challenge_checks(capsys):
    from mlscratch.challenge import wilson_interval
    from mlscratch.course import ch09_challenge as ch09

    assert ch09.check_error_rate(lambda wrong: 100 * wrong.float().mean().item())
    assert not ch09.check_error_rate(lambda wrong: wrong.float().mean().item())
    assert "is a fraction" in capsys.readouterr().out
    assert not ch09.check_error_rate(lambda wrong: 100 * wrong[0].float().mean().item())  # one run's 20
    assert "not by one run's 20" in capsys.readouterr().out
    assert ch09.check_wilson(wilson_interval(12, 400))
    half = 196 * math.sqrt(0.03 * 0.97 / 400)
    assert not ch09.check_wilson((3 - half, 3 + half))
    assert "normal approximation" in capsys.readouterr().out
    assert not ch09.check_wilson(None)

    def mhd(a, b):
        d = torch.cdist(a, b)
        return max(d.min(1).values.mean().item(), d.min(0).values.mean().item())

    assert ch09.check_mhd(mhd)
    assert not ch09.check_mhd(lambda a, b: torch.cdist(a, b).min(1).values.mean().item())  # one direction
    assert "only a -> b" in capsys.readouterr().out
    assert not ch09.check_mhd(lambda a, b: torch.cdist(a, b).min(0).values.max().item())  # classic Hausdorff
    assert "classic Hausdorff" in capsys.readouterr().out
