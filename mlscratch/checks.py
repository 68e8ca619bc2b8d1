"""Checks for the chapters' exercises: call `check_...(your_answer)` and read whether it is right, and if not, why.

Each check prints one line starting with a tick or a cross and returns True or False, so a notebook cell can run
it and a test can assert it. An answer that is still the exercise's stub (None, or a function that raises
NotImplementedError) gets "not answered yet" and a hint.

Chapter 2: check_inner_loop, check_hvp, check_best_eps, check_steps_difference
Chapter 3: check_first_order_gradient, check_cosine_limit, check_paired_difference
Chapter 1: check_nearest_class_mean, check_task_count, check_drawings_limit
Chapter 4: check_support_masks, check_softplus_noise
Chapter 5: check_distance_scorer, check_per_example_gradients
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from .errors import ConfigError
from .tasks import TaskBatch

RIGHT, WRONG = "\u2713", "\u2717"


def _say(ok: bool, message: str) -> bool:
    print(f"{RIGHT if ok else WRONG} {message}")
    return ok


def _call(name: str, answer: Callable | None, hint: str, *args: object) -> tuple[bool, object]:
    """(answered, result): run the learner's function, turning a stub into a 'not answered yet' message."""
    if answer is None:
        return False, _say(False, f"{name}: not answered yet. {hint}")
    try:
        return True, answer(*args)
    except NotImplementedError:
        return False, _say(False, f"{name}: not answered yet (it raises NotImplementedError). {hint}")


# --------------------------------------------------------------------------- a fixed small problem


def toy_problem(ways: int = 3, seed: int = 0) -> tuple[nn.Module, tuple[Tensor, Tensor, Tensor, Tensor]]:
    """A small tanh network in float64 and one task.

    Returns (model, (support_x [ways, 4], support_y [ways], query_x [2*ways, 4], query_y [2*ways])).
    """
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, ways)).double()
    support_x = torch.randn(ways, 4, generator=generator, dtype=torch.float64)
    query_x = torch.randn(2 * ways, 4, generator=generator, dtype=torch.float64)
    return model, (support_x, torch.arange(ways), query_x, torch.arange(ways).repeat(2))


def reference_inner_loop(model: nn.Module, params: dict, x: Tensor, y: Tensor, lr: float, steps: int) -> dict:
    """MAML's inner loop: `steps` SGD steps on the cross-entropy, keeping the graph (create_graph=True)."""
    for _ in range(steps):
        loss = F.cross_entropy(functional_call(model, params, (x,)), y)
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
        params = {name: w - lr * g for (name, w), g in zip(params.items(), grads, strict=True)}
    return params


def _meta_gradient(model: nn.Module, inner_loop: Callable, task: tuple, lr: float, steps: int) -> list[Tensor]:
    sx, sy, qx, qy = task
    params = dict(model.named_parameters())
    adapted = inner_loop(model, params, sx, sy, lr, steps)
    return list(torch.autograd.grad(F.cross_entropy(functional_call(model, adapted, (qx,)), qy), list(params.values())))


def _close(a: list[Tensor], b: list[Tensor], tolerance: float = 1e-8) -> bool:
    return len(a) == len(b) and all(
        x.shape == y.shape and torch.allclose(x, y, atol=tolerance) for x, y in zip(a, b, strict=True)
    )


# --------------------------------------------------------------------------- chapter 2


def check_inner_loop(inner_loop: Callable | None) -> bool:
    """inner_loop(model, params, support_x, support_y, lr, steps) -> adapted params, differentiable to second order."""
    hint = "Take `steps` SGD steps on the support cross-entropy with torch.autograd.grad(..., create_graph=True)."
    model, task = toy_problem()
    answered, adapted = _call("inner_loop", inner_loop, hint, model, dict(model.named_parameters()), *task[:2], 0.5, 2)
    if not answered:
        return False
    expected = reference_inner_loop(model, dict(model.named_parameters()), *task[:2], 0.5, 2)
    if not isinstance(adapted, dict) or set(adapted) != set(expected):
        return _say(False, "inner_loop should return a dict with the same names as params")
    if not _close([adapted[n].detach() for n in expected], [w.detach() for w in expected.values()]):
        return _say(False, "the adapted weights are wrong: check the sign and the learning rate of the step")
    try:
        ok = _close(
            _meta_gradient(model, inner_loop, task, 0.5, 2), _meta_gradient(model, reference_inner_loop, task, 0.5, 2)
        )
    except RuntimeError:
        ok = False
    if not ok:
        return _say(False, "the weights are right but the meta-gradient is not second order: use create_graph=True")
    return _say(True, "inner_loop adapts the weights and keeps the graph for the exact meta-gradient")


def check_hvp(hvp: Callable | None) -> bool:
    """hvp(loss_fn, weights, v) -> the Hessian of loss_fn() at `weights` times v (lists of tensors)."""
    hint = "Differentiate (grad(loss) . v) once more: torch.autograd.grad twice, the first with create_graph=True."
    model, (sx, sy, _, _) = toy_problem()
    weights = list(model.parameters())
    generator = torch.Generator().manual_seed(1)
    v = [torch.randn(w.shape, generator=generator, dtype=w.dtype) for w in weights]

    def loss_fn() -> Tensor:
        return F.cross_entropy(model(sx), sy)

    answered, result = _call("hvp", hvp, hint, loss_fn, weights, v)
    if not answered:
        return False
    grads = torch.autograd.grad(loss_fn(), weights, create_graph=True)
    expected = torch.autograd.grad(sum((g * d).sum() for g, d in zip(grads, v, strict=True)), weights)
    if not _close([torch.as_tensor(r).detach() for r in result], list(expected)):
        return _say(
            False,
            "not the Hessian-vector product: compare with the finite difference (g(w + eps v) - g(w - eps v)) / 2 eps",
        )
    return _say(True, "hvp is the exact Hessian-vector product, without ever forming the Hessian")


def check_best_eps(eps: float | None) -> bool:
    """The step of central finite differences with the smallest error in float64 (order of magnitude)."""
    if eps is None:
        return _say(
            False,
            "best eps: not answered yet. Balance the truncation error (~eps^2) and the rounding error (~1e-16 / eps).",
        )
    if not 1e-7 <= eps <= 3e-5:
        reason = "truncation error ~eps^2 dominates" if eps > 3e-5 else "rounding error ~1e-16 * |L| / eps dominates"
        return _say(False, f"eps = {eps:g} is too {'large' if eps > 3e-5 else 'small'}: {reason}")
    return _say(True, f"eps = {eps:g}: the two errors balance near (1e-16)^(1/3) ~ 5e-6")


def check_steps_difference(mean: float | None, ci95: float | None, per_step: Tensor) -> bool:
    """Mean and 95% CI of the paired per-task difference between the last two columns of per_step [tasks, steps+1]."""
    if mean is None or ci95 is None:
        return _say(
            False,
            "steps difference: not answered yet. Subtract the columns task by task, then mean and 1.96 std / sqrt(n).",
        )
    difference = per_step[:, -1] - per_step[:, -2]
    expected = difference.mean().item(), 1.96 * difference.std().item() / math.sqrt(len(difference))
    if abs(mean - expected[0]) > 1e-3 or abs(ci95 - expected[1]) > 1e-3:
        return _say(False, f"expected {expected[0]:.3f} ± {expected[1]:.3f}: pair the steps task by task before the CI")
    return _say(True, f"{mean:.3f} ± {ci95:.3f} points per extra step, paired on the same tasks")


# --------------------------------------------------------------------------- chapter 3


def reference_first_order_gradient(model: nn.Module, task: tuple, lr: float, steps: int) -> list[Tensor]:
    """FOMAML's meta-gradient of one task: the query gradient at the adapted weights, inner steps without a graph."""
    sx, sy, qx, qy = task
    params = {name: w.detach() for name, w in model.named_parameters()}
    for _ in range(steps):
        params = {name: w.requires_grad_() for name, w in params.items()}
        grads = torch.autograd.grad(F.cross_entropy(functional_call(model, params, (sx,)), sy), list(params.values()))
        params = {name: (w - lr * g).detach() for (name, w), g in zip(params.items(), grads, strict=True)}
    params = {name: w.requires_grad_() for name, w in params.items()}
    return list(torch.autograd.grad(F.cross_entropy(functional_call(model, params, (qx,)), qy), list(params.values())))


def check_first_order_gradient(first_order_gradient: Callable | None) -> bool:
    """first_order_gradient(model, (support_x, support_y, query_x, query_y), lr, steps) -> list of tensors."""
    hint = "Adapt without create_graph (detach the adapted weights), then take the query loss's gradient there."
    model, task = toy_problem()
    answered, result = _call("first_order_gradient", first_order_gradient, hint, model, task, 0.5, 2)
    if not answered:
        return False
    expected = reference_first_order_gradient(model, task, 0.5, 2)
    if _close([torch.as_tensor(r).detach() for r in result], expected):
        return _say(True, "the first-order meta-gradient: the query gradient at the adapted weights")
    exact = _meta_gradient(model, reference_inner_loop, task, 0.5, 2)
    if _close([torch.as_tensor(r).detach() for r in result], exact):
        return _say(False, "that is the exact (second-order) meta-gradient: drop the graph of the inner steps")
    return _say(False, "not the first-order meta-gradient: differentiate the query loss at the adapted weights")


def check_cosine_limit(cosine: float | None) -> bool:
    """The cosine between first-order and exact meta-gradient as the inner learning rate goes to 0."""
    if cosine is None:
        return _say(
            False,
            "cosine limit: not answered yet. What is left of g_MAML - g_FO = -alpha H g + O(alpha^2) at alpha = 0?",
        )
    if abs(cosine - 1.0) > 1e-6:
        return _say(False, f"{cosine:g}: the difference between the two gradients is O(alpha), so it vanishes")
    return _say(True, "1: the Hessian term is O(alpha), so both gradients coincide as alpha -> 0")


def check_paired_difference(paired_difference: Callable | None) -> bool:
    """paired_difference(a, b) -> (mean, ci95) of a - b for per-task accuracies a, b [n] on the same tasks."""
    hint = "d = a - b task by task; return d.mean() and 1.96 * d.std() / sqrt(n)."
    generator = torch.Generator().manual_seed(0)
    common = torch.rand(200, generator=generator, dtype=torch.float64) * 40 + 60  # tasks differ a lot in difficulty
    a = common + torch.randn(200, generator=generator, dtype=torch.float64)
    b = common + 0.5 + torch.randn(200, generator=generator, dtype=torch.float64)
    answered, result = _call("paired_difference", paired_difference, hint, a, b)
    if not answered:
        return False
    mean, ci95 = (float(x) for x in result)
    d = a - b
    expected = d.mean().item(), 1.96 * d.std().item() / math.sqrt(len(d))
    if abs(mean - expected[0]) > 1e-6:
        return _say(False, f"the mean difference should be {expected[0]:.3f}")
    unpaired = 1.96 * math.sqrt(a.var().item() / len(a) + b.var().item() / len(b))
    if abs(ci95 - unpaired) < 1e-6:
        return _say(False, f"that CI ({ci95:.2f}) ignores the pairing: use the spread of the differences")
    if abs(ci95 - expected[1]) > 1e-6:
        return _say(False, f"the CI should be {expected[1]:.3f}: 1.96 * std(a - b) / sqrt(n)")
    return _say(True, f"paired: {mean:.2f} ± {ci95:.2f}, {unpaired / ci95:.0f}x narrower than from two separate CIs")


# --------------------------------------------------------------------------- chapter 1


def toy_batch(n_way: int = 5, k_shot: int = 5, k_query: int = 4, tasks: int = 40, seed: int = 0) -> TaskBatch:
    """Tasks of noisy 6x6 'images' around one random centre per class, in TaskSampler's class-major order.

    The noise is large, so one support image is a poor stand-in for its class and the class mean a better one.
    Returns a TaskBatch: support_x [tasks, N*K, 1, 6, 6], query_x [tasks, N*Q, 1, 6, 6], labels 0..N-1.
    """
    generator = torch.Generator().manual_seed(seed)
    centres = torch.rand(tasks, n_way, 1, 1, 6, 6, generator=generator)

    def draw(per_class: int) -> tuple[Tensor, Tensor]:
        noise = 0.6 * torch.randn(tasks, n_way, per_class, 1, 6, 6, generator=generator)
        labels = torch.arange(n_way).repeat_interleave(per_class).expand(tasks, -1)
        return (centres + noise).flatten(1, 2), labels

    support_x, support_y = draw(k_shot)
    query_x, query_y = draw(k_query)
    return TaskBatch(support_x, support_y, query_x, query_y)


def reference_nearest_class_mean(batch: TaskBatch) -> Tensor:
    """Query accuracy of each task [B] (fraction) when a query takes the label of the nearest class mean."""
    one_hot = F.one_hot(batch.support_y).to(batch.support_x.dtype)  # [B, N*K, N]
    means = one_hot.transpose(1, 2) @ batch.support_x.flatten(2) / one_hot.sum(1)[..., None]  # [B, N, D]
    predicted = torch.cdist(batch.query_x.flatten(2), means).argmin(-1)  # [B, N*Q]: the nearest mean's label
    return (predicted == batch.query_y).float().mean(1)


def _nearest_support_image(batch: TaskBatch) -> Tensor:
    distances = torch.cdist(batch.query_x.flatten(2), batch.support_x.flatten(2))
    return (batch.support_y.gather(1, distances.argmin(-1)) == batch.query_y).float().mean(1)


def check_nearest_class_mean(nearest_class_mean: Callable | None) -> bool:
    """nearest_class_mean(batch) -> query accuracy of each task [B], a fraction, like `pixel_nearest_neighbour`."""
    hint = "Average the K support images of each class (flatten them first), then take the nearest of the N means."
    batch = toy_batch()
    answered, result = _call("nearest_class_mean", nearest_class_mean, hint, batch)
    if not answered:
        return False
    result = torch.as_tensor(result).float()
    expected = reference_nearest_class_mean(batch)
    if result.shape != expected.shape:
        return _say(False, f"return one accuracy per task, shape {list(expected.shape)}, not {list(result.shape)}")
    if torch.allclose(result, 100 * expected):
        return _say(False, "right, but in percent: return fractions in [0, 1] like pixel_nearest_neighbour")
    if torch.allclose(result, _nearest_support_image(batch)):
        return _say(False, "that is nearest neighbour (the nearest single image): average each class's images first")
    if not torch.allclose(result, expected):
        return _say(False, "not the nearest class mean: one mean per class [B, N, D], then argmin of the distances")
    gain = 100 * (expected - _nearest_support_image(batch)).mean().item()
    return _say(True, f"nearest class mean: {gain:+.1f} points over nearest neighbour on these noisy toy tasks")


def check_task_count(count: int | float | None) -> bool:
    """The number of different sets of 20 classes that 20-way tasks on the 423 test characters can hold.

    As TaskSampler draws them: 20 distinct characters, each with one of 4 rotations; which drawings and which
    label each class gets are not counted.
    """
    if count is None:
        return _say(False, "task count: not answered yet. Choose 20 of the 423 characters, then a rotation for each.")
    expected = math.comb(423, 20) * 4**20
    wrong = {
        math.comb(423, 20): "that leaves out the rotations: each of the 20 characters gets one of 4",
        math.comb(1692, 20): "that allows the same character twice in a task (two of its rotations); the "
        "sampler draws 20 distinct characters, then a rotation for each",
        math.perm(423, 20) * 4**20: "that counts every order of the labels as another task: count sets of classes",
        423**20: "that allows repeated characters and counts the order",
        1692**20: "that allows repeated classes and counts the order",
    }
    for value, reason in wrong.items():
        if count > 0 and abs(math.log10(count) - math.log10(value)) < 1e-6:
            return _say(False, f"{float(count):.3g}: {reason}")
    if count <= 0 or abs(math.log10(count) - math.log10(expected)) > 1e-6:
        return _say(False, f"{float(count):.3g} is not it: math.comb(423, 20) * 4**20 (as a number, not a guess)")
    return _say(
        True,
        f"{float(expected):.2e} sets of classes, against the 600 test tasks we score: no one can overfit 'the test "
        "tasks'; what is fixed, and can be overfitted by choosing settings on it, is the 423 test characters",
    )


def check_drawings_limit(largest: int | None, error: BaseException | type | None) -> bool:
    """largest: the largest shots + queries TaskSampler accepts on Omniglot; error: what it raises one above."""
    if largest is None or error is None:
        return _say(False, "drawings limit: not answered yet. Try shots + queries = 20 and 21 in a try/except.")
    if largest != 20:
        return _say(False, f"{largest}: every Omniglot character has 20 drawings (20 drawers), and no image repeats")
    error_type = error if isinstance(error, type) else type(error)
    if not issubclass(error_type, ConfigError):
        return _say(False, f"TaskSampler raises mlscratch's ConfigError there, not {error_type.__name__}")
    return _say(True, "20, and one above it a ConfigError that names the limit and the fix, before any task is drawn")


# --------------------------------------------------------------------------- chapter 4


def _masks_are_valid(masks: list, rate: float) -> bool:
    values = torch.tensor([0.0, 1 / (1 - rate)])
    return all(torch.isclose(m[..., None], values).any(-1).all() for m in masks)


def check_support_masks(support_masks: Callable | None) -> bool:
    """support_masks(dropout, h, steps, fresh) -> the `steps` masks that one task's inner loop applies.

    dropout is a ConsistentDropout in training mode, h [M, C, H, W] the task's support features; fresh=False keeps
    one mask for the task (the chapter's variant), fresh=True draws a new mask at every step.
    """
    from .meta_dropout import ConsistentDropout  # here: checks stays importable without it

    hint = "Call dropout.reset_task() when the task starts (and, if fresh, before every step); read dropout.mask."
    rate, steps = 0.5, 4
    dropout = ConsistentDropout(rate).train()
    h = torch.ones(3, 4, 5, 5)
    torch.manual_seed(0)
    answered, consistent = _call("support_masks", support_masks, hint, dropout, h, steps, False)
    if not answered:
        return False
    fresh = support_masks(dropout, h, steps, True)
    next_task = support_masks(dropout, h, steps, False)
    if any(len(masks) != steps for masks in (consistent, fresh, next_task)):
        return _say(False, f"return one mask per inner step: {steps} steps, {steps} masks")
    consistent, fresh, next_task = ([torch.as_tensor(m) for m in masks] for masks in (consistent, fresh, next_task))
    if not _masks_are_valid(consistent + fresh, rate):
        return _say(False, f"a mask of rate {rate} holds 0 and 1 / (1 - rate) = {1 / (1 - rate):g}: use dropout.mask")
    if not all(torch.equal(consistent[0], m) for m in consistent):
        return _say(False, "fresh=False must keep one mask through the task's steps: do not reset between them")
    if all(torch.equal(fresh[0], m) for m in fresh):
        return _say(False, "fresh=True gave the same mask at every step: call reset_task() before each step")
    if torch.equal(consistent[0], next_task[0]):
        return _say(False, "the next task reused the last task's mask: call reset_task() when a task starts")
    return _say(True, "one mask per task, or a new one per step: with one inner step the two coincide")


def check_softplus_noise(mean: float | None, fraction_below_one: float | None) -> bool:
    """Meta Dropout at initialisation, z ~ N(0, 1): the mean of softplus(z), and how often it shrinks a feature."""
    if mean is None or fraction_below_one is None:
        return _say(
            False,
            "softplus noise: not answered yet. Draw z = torch.randn(100_000) and read F.softplus(z) off the samples.",
        )
    z = torch.linspace(-12, 12, 200_001, dtype=torch.float64)
    density = torch.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    expected_mean = torch.trapezoid(F.softplus(z) * density, z).item()
    expected_fraction = 0.5 * (1 + math.erf(math.log(math.e - 1) / math.sqrt(2)))  # softplus(z) < 1 iff z < log(e - 1)
    if abs(mean - expected_mean) > 0.01:
        reason = " (log 2 = softplus(0) is the median, not the mean)" if abs(mean - 0.693) < 0.01 else ""
        return _say(False, f"the mean of softplus(z) is {expected_mean:.3f}, not {mean:.3f}{reason}")
    if abs(fraction_below_one - expected_fraction) > 0.01:
        return _say(False, f"softplus(z) < 1 when z < log(e - 1) = 0.541: a fraction {expected_fraction:.3f}")
    return _say(
        True,
        f"mean {expected_mean:.3f}, below 1 for {100 * expected_fraction:.1f}% of the draws: at initialisation "
        "the noise shrinks most features and amplifies a few",
    )


# --------------------------------------------------------------------------- chapter 5


def reference_distance_scorer(query: Tensor, weights: Tensor) -> Tensor:
    """query [Q, E] (V f(x)), weights [N, E] (w_c) -> logits [Q, N] = -||V f(x) - w_c||^2."""
    return -((query[:, None] - weights[None]) ** 2).sum(-1)


def check_distance_scorer(scorer: Callable | None) -> bool:
    """scorer(query [Q, E], weights [N, E]) -> logits [Q, N], the negative squared distance."""
    hint = "Broadcast query[:, None] - weights[None] to [Q, N, E], square, sum over E, negate."
    generator = torch.Generator().manual_seed(0)
    query = torch.randn(6, 8, generator=generator, dtype=torch.float64)
    weights = torch.randn(3, 8, generator=generator, dtype=torch.float64)
    answered, result = _call("distance_scorer", scorer, hint, query, weights)
    if not answered:
        return False
    result = torch.as_tensor(result)
    expected = reference_distance_scorer(query, weights)
    if result.shape != expected.shape:
        return _say(False, f"logits need shape [Q, N] = {list(expected.shape)}, got {list(result.shape)}")
    if torch.allclose(result, query @ weights.T):
        return _say(False, "that is the dot product the chapter uses: score by the negative squared distance")
    if torch.allclose(result, -expected):
        return _say(False, "wrong sign: the nearest class must get the largest logit")
    if torch.allclose(result, -torch.cdist(query, weights)):
        return _say(False, "not squared: -||a - w|| ranks classes alike but gives other logits and another softmax")
    if torch.allclose(result, expected):
        return _say(True, "-||a - w_c||^2 = 2 a.w_c - ||w_c||^2 - ||a||^2: twice the dot product plus a per-class bias")
    shift = result - expected  # a constant per query (e.g. dropping -||a||^2) leaves the softmax unchanged
    if torch.allclose(shift, shift[:, :1].expand_as(shift)):
        return _say(True, "the same softmax as -||a - w_c||^2 (you dropped a term that is equal for every class)")
    return _say(False, "not the negative squared distance between each query and each class weight")


def reference_per_example_gradients(model: nn.Module, x: Tensor, y: Tensor) -> dict[str, Tensor]:
    """x [M, ...], y [M] -> {name: [M, *param.shape]}: the cross-entropy gradient of each example alone (a loop)."""
    params = dict(model.named_parameters())
    rows = [
        torch.autograd.grad(F.cross_entropy(model(xi[None]), yi[None]), list(params.values()))
        for xi, yi in zip(x, y, strict=True)
    ]
    return {name: torch.stack([row[i] for row in rows]) for i, name in enumerate(params)}


def check_per_example_gradients(per_example_gradients: Callable | None) -> bool:
    """per_example_gradients(model, x, y) -> {name: [M, *param.shape]}, each example's loss gradient alone."""
    hint = "Loop over the examples (x[i:i+1]) with torch.autograd.grad, or vmap(grad(loss)) over them; stack."
    model, (_, _, x, y) = toy_problem()
    answered, result = _call("per_example_gradients", per_example_gradients, hint, model, x, y)
    if not answered:
        return False
    expected = reference_per_example_gradients(model, x, y)
    if not isinstance(result, dict) or set(result) != set(expected):
        return _say(False, f"return a dict with the parameter names {sorted(expected)}")
    got = [torch.as_tensor(result[name]).detach() for name in expected]
    if _close(got, list(expected.values())):
        return _say(True, f"{len(x)} gradients per weight tensor, one per example: Meta Networks' meta information")
    mean = [g.mean(0) for g in expected.values()]
    if all(r.shape[1:] == m.shape and torch.allclose(r, m.expand_as(r)) for r, m in zip(got, mean, strict=True)):
        return _say(False, "every row is the batch's mean gradient: take the loss of each example on its own")
    if _close([r.sum(0) for r in got], mean):
        return _say(False, "these rows add up to the mean gradient: use each example's own loss, not the loss / M")
    return _say(False, "not the per-example gradients: compare with a loop over the examples")


__all__ = [
    "check_best_eps",
    "check_cosine_limit",
    "check_distance_scorer",
    "check_drawings_limit",
    "check_first_order_gradient",
    "check_hvp",
    "check_inner_loop",
    "check_nearest_class_mean",
    "check_paired_difference",
    "check_per_example_gradients",
    "check_softplus_noise",
    "check_steps_difference",
    "check_support_masks",
    "check_task_count",
    "reference_distance_scorer",
    "reference_first_order_gradient",
    "reference_inner_loop",
    "reference_nearest_class_mean",
    "reference_per_example_gradients",
    "toy_batch",
    "toy_problem",
]
