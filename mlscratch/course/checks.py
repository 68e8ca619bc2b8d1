"""The mechanics of a self-checking exercise: call `check_...(your_answer)` and read whether it is right, and if not,
why. The checks themselves live in each chapter's module (`ch02_maml.check_inner_loop`, ...).

Each check prints one line starting with a tick or a cross and returns True or False, so a notebook cell can run
it and a test can assert it. An answer that is still the exercise's stub (None, or a function that raises
NotImplementedError) gets "not answered yet" and a hint.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

RIGHT, WRONG = "\u2713", "\u2717"


def say(ok: bool, message: str) -> bool:
    print(f"{RIGHT if ok else WRONG} {message}")
    return ok


def attempt(name: str, answer: Callable | None, hint: str, *args: object) -> tuple[bool, object]:
    """(answered, result): run the learner's function, turning a stub into a 'not answered yet' message."""
    if answer is None:
        return False, say(False, f"{name}: not answered yet. {hint}")
    try:
        return True, answer(*args)
    except NotImplementedError:
        return False, say(False, f"{name}: not answered yet (it raises NotImplementedError). {hint}")


def all_close(a: list[Tensor], b: list[Tensor], tolerance: float = 1e-8) -> bool:
    return len(a) == len(b) and all(
        x.shape == y.shape and torch.allclose(x, y, atol=tolerance) for x, y in zip(a, b, strict=True)
    )
