"""Chapter 01, few-shot tasks: the exercises' checks (nearest class mean, counting tasks, the drawers)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from ..tasks import TaskBatch
from .checks import attempt, say

# What the chapter uses from the course's shared modules, so that it imports the course from this one module.
from .notebook import describe_splits, load_characters, load_data, report, setup  # noqa: F401
from .viz import show_drawers, show_episodes, show_task  # noqa: F401
from .widgets import task_explorer  # noqa: F401

# ====================================================================================================
# exercise checks
# ====================================================================================================


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
    answered, result = attempt("nearest_class_mean", nearest_class_mean, hint, batch)
    if not answered:
        return False
    result = torch.as_tensor(result).float()
    expected = reference_nearest_class_mean(batch)
    if result.shape != expected.shape:
        return say(False, f"return one accuracy per task, shape {list(expected.shape)}, not {list(result.shape)}")
    if torch.allclose(result, 100 * expected):
        return say(False, "right, but in percent: return fractions in [0, 1] like pixel_nearest_neighbour")
    if torch.allclose(result, _nearest_support_image(batch)):
        return say(False, "that is nearest neighbour (the nearest single image): average each class's images first")
    if not torch.allclose(result, expected):
        return say(False, "not the nearest class mean: one mean per class [B, N, D], then argmin of the distances")
    gain = 100 * (expected - _nearest_support_image(batch)).mean().item()
    return say(True, f"nearest class mean: {gain:+.1f} points over nearest neighbour on these noisy toy tasks")


def check_task_count(count: int | float | None) -> bool:
    """The number of different sets of 20 classes that 20-way tasks on the 423 test characters can hold.

    As TaskSampler draws them: 20 distinct characters, each with one of 4 rotations; which drawings and which
    label each class gets are not counted.
    """
    if count is None:
        return say(False, "task count: not answered yet. Choose 20 of the 423 characters, then a rotation for each.")
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
            return say(False, f"{float(count):.3g}: {reason}")
    if count <= 0 or abs(math.log10(count) - math.log10(expected)) > 1e-6:
        return say(False, f"{float(count):.3g} is not it: math.comb(423, 20) * 4**20 (as a number, not a guess)")
    return say(
        True,
        f"{float(expected):.2e} sets of classes, against the 600 test tasks we score: no one can overfit 'the test "
        "tasks'; what is fixed, and can be overfitted by choosing settings on it, is the 423 test characters",
    )


def check_drawings_limit(largest: int | None, error: BaseException | type | None) -> bool:
    """largest: the largest shots + queries TaskSampler accepts on Omniglot; error: what it raises one above."""
    if largest is None or error is None:
        return say(False, "drawings limit: not answered yet. Try shots + queries = 20 and 21 in a try/except.")
    if largest != 20:
        return say(False, f"{largest}: every Omniglot character has 20 drawings (20 drawers), and no image repeats")
    error_type = error if isinstance(error, type) else type(error)
    if not issubclass(error_type, ConfigError):
        return say(False, f"TaskSampler raises mlscratch's ConfigError there, not {error_type.__name__}")
    return say(True, "20, and one above it a ConfigError that names the limit and the fix, before any task is drawn")
