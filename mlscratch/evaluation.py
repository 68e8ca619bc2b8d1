"""One evaluator for every algorithm: accuracy over many test tasks with a 95% confidence interval.

For learners that adapt by gradient steps (they implement `adaptation_logits`),
it also reports accuracy before adaptation and after each inner step.

Tasks are drawn `sampler.batch_size` at a time (EVAL_BATCH = 25 in the experiments) and each batch goes to the
learner in one call, which runs its tasks in a loop or batched by vmap (`MetaLearner.resolved_execution`);
the result records that choice and its reason (`execution`).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from .device import module_device
from .errors import ConfigError
from .tasks import TaskSampler


@dataclass
class EvaluationResult:
    """Accuracies in percent. `step_accuracies[s]`: mean accuracy after s inner steps (s=0: before adaptation)."""

    accuracy: float
    ci95: float  # q * std / sqrt(n_tasks), q = 1.96 (or Student's t for fewer than 30 tasks): see `quantile95`
    task_accuracies: list[float]
    step_accuracies: list[float] | None
    step_ci95: list[float] | None
    seconds_per_task: float
    n_tasks: int
    n_way: int
    k_shot: int
    k_query: int
    execution: str | None = None  # how the learner ran its tasks, and why (MetaLearner.execution_reason)
    task_step_accuracies: list[list[float]] | None = None  # [n_tasks][steps + 1]: each task after each step

    @property
    def before_adaptation(self) -> float | None:
        return self.step_accuracies[0] if self.step_accuracies else None

    @property
    def std(self) -> float:
        """Standard deviation of the per-task accuracies (percent)."""
        return self.ci95 * math.sqrt(self.n_tasks) / quantile95(self.n_tasks)

    def to_dict(self) -> dict:
        return {**asdict(self), "before_adaptation": self.before_adaptation}

    def __str__(self) -> str:
        text = f"{self.accuracy:.2f} ± {self.ci95:.2f}% ({self.n_tasks} tasks, {self.n_way}-way {self.k_shot}-shot)"
        if self.step_accuracies:
            text += f"; before adaptation {self.before_adaptation:.2f}%"
        return text


# Student's t, 97.5% quantile, by degrees of freedom: a 95% interval from fewer than 30 values (tasks or seeds)
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048)  # fmt: skip


def quantile95(n: int) -> float:
    """The multiplier of std / sqrt(n) for a 95% interval of a mean of n values: Student's t with n - 1 degrees of
    freedom below 30 values (the normal 1.96 would be too narrow: 2.57 for 6 values, 4.30 for 3), 1.96 from 30."""
    return T975[n - 2] if 2 <= n < 30 else 1.96


def mean_ci95(values: Tensor) -> tuple[float, float]:
    """Mean and quantile95(n) * std / sqrt(n) of a 1-D tensor (std with Bessel's correction; 0 for one value)."""
    n = values.numel()
    std = values.std().item() if n > 1 else 0.0
    return values.mean().item(), quantile95(n) * std / math.sqrt(n)


def _accuracy(logits: Tensor, labels: Tensor) -> Tensor:
    """logits [..., M, N], labels broadcastable to [..., M] -> accuracy in percent per task [...]."""
    return (logits.argmax(-1) == labels).float().mean(-1) * 100


def evaluate(
    learner: torch.nn.Module,
    sampler: TaskSampler,
    n_tasks: int = 600,
    *,
    seed: int | None = None,
    per_step: bool = True,
    steps: int | None = None,
    progress: bool = False,
) -> EvaluationResult:
    """Mean query accuracy of `learner.predict` over n_tasks tasks from `sampler`.

    Deterministic: tasks come from the sampler reseeded with `seed` (default: the sampler's own seed),
    and torch's RNG is forked and seeded, so the caller's random streams are left untouched.
    per_step: also score before adaptation and after each of `steps` inner steps (gradient-based learners;
    default: their test_inner_steps). The headline accuracy is always the learner's own prediction (after its
    test_inner_steps), whatever `steps` the curve shows.
    Runs on the learner's device, in eval mode; seconds_per_task covers everything done per task.
    """
    if not isinstance(n_tasks, int) or n_tasks < 1:
        raise ConfigError(f"n_tasks must be a positive integer, got {n_tasks!r}")
    seed = sampler.seed if seed is None else seed
    curve = getattr(learner, "adaptation_logits", None) if per_step else None
    if curve is not None:  # one pass gives the curve and the headline (after test_inner_steps)
        headline = learner.test_inner_steps
        shown = headline if steps is None else steps
        longest = max(shown, headline)
    device = module_device(learner)
    was_training, sampler_state = learner.training, sampler.state_dict()
    learner.eval()
    sampler.generator.manual_seed(seed)
    task_accuracies, step_accuracies = [], []
    start = time.perf_counter()
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            with tqdm(total=n_tasks, desc="evaluate", unit="task", disable=not progress) as bar:
                while len(task_accuracies) < n_tasks:
                    # Always whole batches, cut to the tasks still needed: the first n tasks are then the same
                    # tasks for every n (a partial batch would draw different ones), so results pair across runs.
                    batch = sampler.sample()
                    batch = type(batch)(*(t[: n_tasks - len(task_accuracies)] for t in batch)).to(device)
                    if curve is not None:  # [B, S+1, N*Q, N]
                        per_step_acc = _accuracy(curve(*batch[:3], steps=longest), batch.query_y[:, None])
                        step_accuracies.extend(per_step_acc[:, : shown + 1].cpu())
                        task_accuracies.extend(per_step_acc[:, headline].cpu().tolist())
                    else:
                        with torch.no_grad():
                            logits = learner.predict(*batch[:3])
                        task_accuracies.extend(_accuracy(logits, batch.query_y).cpu().tolist())
                    bar.update(len(batch.query_y))
    finally:
        learner.train(was_training)
        sampler.load_state_dict(sampler_state)
    seconds = time.perf_counter() - start
    accuracy, ci95 = mean_ci95(torch.tensor(task_accuracies))
    steps_mean = steps_ci = per_task_steps = None
    if step_accuracies:
        per_step = torch.stack(step_accuracies)  # [n_tasks, S+1]
        stats = [mean_ci95(column) for column in per_step.T]
        steps_mean, steps_ci, per_task_steps = [m for m, _ in stats], [c for _, c in stats], per_step.tolist()
    return EvaluationResult(
        accuracy,
        ci95,
        task_accuracies,
        steps_mean,
        steps_ci,
        seconds / n_tasks,
        n_tasks,
        sampler.n_way,
        sampler.k_shot,
        sampler.k_query,
        getattr(learner, "execution_reason", None),
        per_task_steps,
    )
