"""Small helpers for inner loops written with torch.func.

A model's parameters are split in two dicts: the ones the inner loop adapts
and the fixed rest (buffers, and parameters of modules flagged
`outer_loop_only = True`, e.g. a learned noise generator that only the outer
loop trains). `torch.func.functional_call(model, (adapted, fixed), ...)` runs
the model with them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

Params = dict[str, Tensor]


def split_parameters(model: nn.Module) -> tuple[Params, Params]:
    """(adapted, fixed): parameters the inner loop updates, and everything else (buffers, outer-loop-only)."""
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


def sgd_step(loss_fn: Callable[[Params], Tensor], params: Params, lr: float, first_order: bool = False) -> Params:
    """One inner SGD step: params - lr * d loss / d params.

    The gradient stays differentiable (exact second-order meta-gradient) unless
    first_order, where it is detached (FOMAML).
    """
    grads = torch.func.grad(loss_fn)(params)
    if first_order:
        grads = {name: g.detach() for name, g in grads.items()}
    return {name: p - lr * grads[name] for name, p in params.items()}


@contextmanager
def task_scope(model: nn.Module) -> Iterator[None]:
    """Marks the start and end of one task (or one vmapped batch of tasks).

    Calls `reset_task()` on every submodule that defines it, on entry and on exit
    (also after an exception): the hook per-task state such as dropout masks uses.
    """
    hooks = [m.reset_task for m in model.modules() if callable(getattr(m, "reset_task", None))]
    for reset in hooks:
        reset()
    try:
        yield
    finally:
        for reset in hooks:
            reset()
