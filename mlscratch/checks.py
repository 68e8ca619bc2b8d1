"""Checks for the chapters' exercises: call `check_...(your_answer)` and read whether it is right, and if not, why.

Each check prints one line starting with a tick or a cross and returns True or False, so a notebook cell can run
it and a test can assert it. An answer that is still the exercise's stub (None, or a function that raises
NotImplementedError) gets "not answered yet" and a hint.

Chapter 2: check_inner_loop, check_hvp, check_best_eps, check_steps_difference
Chapter 3: check_first_order_gradient, check_cosine_limit, check_paired_difference
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

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


__all__ = [
    "check_best_eps",
    "check_cosine_limit",
    "check_first_order_gradient",
    "check_hvp",
    "check_inner_loop",
    "check_paired_difference",
    "check_steps_difference",
    "reference_first_order_gradient",
    "reference_inner_loop",
    "toy_problem",
]
