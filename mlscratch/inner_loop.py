"""The inner loop, written once: adapt weights to one task, and run a function on every task of a batch.

    adapted = adapt(loss_fn, params, steps=1, update=sgd(0.4))        # theta_i' = theta - lr * grad L(theta)
    logits  = per_task(score_one_task, support_x, support_y, query_x)  # [B, ...] by vmap or a loop

Weights are dicts name -> tensor and models are called with `torch.func.functional_call`, so the
adapted weights stay functions of the initial ones: differentiating the query loss after `adapt`
gives MAML's exact second-order meta-gradient; `first_order=True` detaches the inner gradients (FOMAML).

The hooks a module may offer the inner loop (all duck-typed, all optional), in one place:

- `outer_loop_only = True` on a module: its parameters are not adapted in the inner loop, only
  trained by the outer loop (e.g. Meta Dropout's noise generator). See `split_parameters`.
- `reset_task()`: called at the start and end of every task (or vmapped batch of tasks), to clear
  per-task state such as a dropout mask. See `task_scope`.
- `on_support` (bool attribute): True while the support-set loss is computed, so a module can add
  noise there only. See `mlscratch.models.meta_dropout.support_pass`.
- `fused` (bool attribute): False under `vmap`, where a module must use its written-out form
  (Conv4's BatchNorm: the fused kernel's second derivative is wrong under vmap in torch 2.14).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import torch
from torch import Tensor, nn
from torch.func import vmap

from .errors import ConfigError

Params = dict[str, Tensor]
UpdateRule = Callable[[Params, Params], Params]  # (params, grads) -> updated params, differentiably
EXECUTIONS = ("loop", "vmap")


def split_parameters(model: nn.Module) -> tuple[Params, Params]:
    """(adapted, fixed): the parameters the inner loop updates, and everything else (buffers, outer-loop-only)."""
    outer_only = {
        f"{prefix}.{name}" if prefix else name
        for prefix, module in model.named_modules()
        if getattr(module, "outer_loop_only", False)
        for name, _ in module.named_parameters()
    }
    adapted = {name: p for name, p in model.named_parameters() if name not in outer_only}
    fixed = {name: p for name, p in model.named_parameters() if name in outer_only}
    fixed.update(dict(model.named_buffers()))
    return adapted, fixed


def flatten(params: Params) -> Tensor:
    """All weights of a dict in one vector [P] (its order: the dict's)."""
    return torch.cat([p.flatten() for p in params.values()])


def unflatten(vector: Tensor, like: Params) -> Params:
    """A vector [P] cut back into a dict of tensors shaped like `like` (views, no copy)."""
    pieces = vector.split([p.numel() for p in like.values()])
    return {name: piece.view_as(p) for (name, p), piece in zip(like.items(), pieces, strict=True)}


# --- update rules -------------------------------------------------------------------------------------


def sgd(lr: float | Params) -> UpdateRule:
    """p - lr * g. `lr` is one number (MAML) or a tensor per parameter, of the parameter's shape (Meta-SGD)."""
    if isinstance(lr, dict):
        return lambda params, grads: {name: p - lr[name] * grads[name] for name, p in params.items()}
    return lambda params, grads: {name: p - lr * grads[name] for name, p in params.items()}


def adapt(
    loss_fn: Callable[[Params], Tensor],
    params: Params,
    steps: int,
    update: UpdateRule,
    first_order: bool = False,
    trace: bool = False,
) -> Params | list[Params]:
    """`steps` gradient steps on loss_fn from params: the adapted weights (with trace: before and after each step).

    The gradients stay differentiable (exact second-order meta-gradient) unless first_order.
    """
    if not isinstance(steps, int) or steps < 0:
        raise ConfigError(f"inner steps must be an integer >= 0, got {steps!r}")
    path = [params]
    for _ in range(steps):
        grads = torch.func.grad(loss_fn)(params)
        if first_order:
            grads = {name: g.detach() for name, g in grads.items()}
        params = update(params, grads)
        path.append(params)
    return path if trace else params


def sgd_step(loss_fn: Callable[[Params], Tensor], params: Params, lr: float, first_order: bool = False) -> Params:
    """One inner SGD step: params - lr * d loss / d params (the smallest case of `adapt`)."""
    return adapt(loss_fn, params, 1, sgd(lr), first_order)


# --- tasks of a batch ---------------------------------------------------------------------------------


@contextmanager
def task_scope(model: nn.Module) -> Iterator[None]:
    """Marks the start and end of one task (or one vmapped batch of tasks): calls every `reset_task()`
    hook on entry and on exit (also after an exception)."""
    hooks = [m.reset_task for m in model.modules() if callable(getattr(m, "reset_task", None))]
    for reset in hooks:
        reset()
    try:
        yield
    finally:
        for reset in hooks:
            reset()


@contextmanager
def unfused(model: nn.Module) -> Iterator[None]:
    """Set `fused = False` on every module that has the attribute, for the block (needed under vmap)."""
    modules = [m for m in model.modules() if hasattr(m, "fused")]
    before = [m.fused for m in modules]
    for m in modules:
        m.fused = False
    try:
        yield
    finally:
        for m, value in zip(modules, before, strict=True):
            m.fused = value


def per_task(fn: Callable[..., Tensor], *batch: Tensor, model: nn.Module, execution: str = "loop") -> Tensor:
    """fn(one task's tensors) for every task of a batch: [B, ...] inputs -> stacked [B, ...] outputs.

    "loop": a Python loop, each task in its own `task_scope(model)` (fastest for small tasks on a CPU).
    "vmap": one vectorised call (fastest on a GPU); random draws differ per task, as in the loop.
    """
    if execution == "vmap":
        with ExitStack() as stack:
            stack.enter_context(task_scope(model))
            stack.enter_context(unfused(model))
            return vmap(fn, randomness="different")(*batch)
    if execution != "loop":
        raise ConfigError(f"unknown execution={execution!r}; use one of {', '.join(EXECUTIONS)} (or 'auto')")
    outputs = []
    for task in zip(*batch, strict=True):
        with task_scope(model):
            outputs.append(fn(*task))
    return torch.stack(outputs)


__all__ = [
    "EXECUTIONS",
    "Params",
    "UpdateRule",
    "adapt",
    "flatten",
    "per_task",
    "sgd",
    "sgd_step",
    "split_parameters",
    "task_scope",
    "unflatten",
    "unfused",
]


# --- a stateful update rule ---------------------------------------------------------------------------


def adam(
    lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, state: dict | None = None
) -> UpdateRule:
    """Adam (Kingma & Ba 2015) as an inner-loop rule: p - lr * m_hat / (sqrt(v_hat) + eps), per weight.

    m, v: running means of g and g*g, bias-corrected by 1 - beta**t after t steps. They live in `state`
    ({"t": 0, "m": {}, "v": {}} when not given), which the rule updates in place: pass a fresh dict for
    moments that start from zero on every task, or the same dict again to carry them on (the official
    Reptile code does). Differentiable like `sgd`.
    """
    beta1, beta2 = betas
    state = {"t": 0, "m": {}, "v": {}} if state is None else state

    def update(params: Params, grads: Params) -> Params:
        state["t"] += 1
        t, new = state["t"], {}
        for name, p in params.items():
            g = grads[name]
            m = state["m"][name] = beta1 * state["m"].get(name, 0.0) + (1 - beta1) * g
            v = state["v"][name] = beta2 * state["v"].get(name, 0.0) + (1 - beta2) * g * g
            new[name] = p - lr * (m / (1 - beta1**t)) / ((v / (1 - beta2**t)).sqrt() + eps)
        return new

    return update


__all__ += ["adam"]
