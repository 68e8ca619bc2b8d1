"""One trainer for every algorithm: the learner's outer step over sampled task batches.

    optimizer, schedule = learner.configure_optimizer(outer_lr, iterations)   # default: Adam, no schedule
    for iteration in 1..N:
        batch = train_sampler.sample()
        metrics = learner.outer_step(batch, optimizer)   # default: Adam on learner.meta_loss(batch)
        schedule.step()

Around that loop: a progress bar, a history for plots, periodic validation,
atomic checkpoints that resume exactly (model, Adam, sampler and torch RNG
states), gradient clipping, and a clear error when the loss stops being finite.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .algorithms.base import MetaLearner
from .checkpoint import read_checkpoint, save_checkpoint
from .device import resolve_device
from .errors import ConfigError, TrainingDiverged
from .evaluation import evaluate
from .io import check_writable
from .tasks import TaskSampler

__all__ = ["History", "TrainingDiverged", "fit"]


@dataclass
class History:
    """Per-iteration training record; accuracies in percent, seconds = cumulative training time."""

    iteration: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    val_iteration: list[int] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    val_ci95: list[float] = field(default_factory=list)
    extra: dict[str, list[float]] = field(default_factory=dict)  # any other metrics the learner reports
    execution: str = ""  # how the learner ran its tasks, and why (MetaLearner.execution_reason)

    def record(self, iteration: int, metrics: dict[str, float], seconds: float) -> None:
        self.iteration.append(iteration)
        self.loss.append(metrics["loss"])
        self.accuracy.append(100 * metrics["accuracy"])
        self.seconds.append(seconds)
        for key, value in metrics.items():
            if key not in ("loss", "accuracy"):
                self.extra.setdefault(key, []).append(value)

    @property
    def training_seconds(self) -> float:
        return self.seconds[-1] if self.seconds else 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> History:
        return cls(**data)


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def fit(
    learner: MetaLearner,
    train_sampler: TaskSampler,
    iterations: int,
    *,
    outer_lr: float = 1e-3,
    val_sampler: TaskSampler | None = None,
    val_every: int = 500,
    val_tasks: int = 100,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 500,
    resume: bool = True,
    clip_grad: float | None = None,
    device: str | torch.device = "auto",
    seed: int = 0,
    progress: bool = True,
    metadata: dict | None = None,
    max_seconds: float | None = None,
    until: int | None = None,
) -> History:
    """Meta-train `learner` for `iterations` meta-batches from `train_sampler`; returns the History.

    val_sampler: every `val_every` iterations (and at the end) record accuracy on `val_tasks` tasks
    (the same tasks each time). checkpoint: written every `checkpoint_every` iterations and at the end;
    with resume=True an existing checkpoint there is loaded and training continues exactly where it
    stopped (same seed -> same numbers as an uninterrupted run). max_seconds: also stop once this much
    training time is spent (equal-budget comparisons). until: stop after this iteration while schedules still
    span `iterations` (one time-boxed part of a longer run). Raises TrainingDiverged on NaN/inf loss.
    """
    if not isinstance(iterations, int) or iterations < 0:
        raise ConfigError(f"iterations must be an integer >= 0, got {iterations!r}")
    if until is not None and (not isinstance(until, int) or until < 1):
        raise ConfigError(f"until must be a positive number of iterations, got {until!r}")
    last = iterations if until is None else min(until, iterations)
    for name, value in (("val_every", val_every), ("checkpoint_every", checkpoint_every), ("val_tasks", val_tasks)):
        if value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}")
    if checkpoint is not None:
        check_writable(checkpoint, "checkpoint")  # now, not after training: an unwritable path would lose the model
    device = resolve_device(device)
    learner.to(device)
    optimizer, schedule = learner.configure_optimizer(outer_lr, iterations)
    torch.manual_seed(seed)
    history, start = History(), 0
    if checkpoint is not None and resume and Path(checkpoint).exists():
        state = read_checkpoint(checkpoint)  # on the CPU: RNG states must stay there; weights are copied over
        if state["algo"] != learner.name or state["hparams"] != learner.hparams:
            raise ConfigError(
                f"checkpoint {str(checkpoint)!r} holds a different model ({state['algo']}, "
                f"{state['hparams']}); use another checkpoint path or resume=False to start over"
            )
        learner.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if schedule is not None and state.get("schedule") is not None:
            schedule.load_state_dict(state["schedule"])
        train_sampler.load_state_dict(state["samplers"]["train"])
        _set_rng_state(state["rng"])
        history, start = History.from_dict(state["history"]), state["iteration"]

    def save(iteration: int) -> None:
        save_checkpoint(
            checkpoint,
            learner,
            optimizer=optimizer,
            schedule=schedule,
            samplers={"train": train_sampler},
            rng=_rng_state(),
            iteration=iteration,
            history=history.to_dict(),
            metadata=metadata,
        )

    learner.train()
    elapsed = history.training_seconds
    bar = tqdm(total=last, initial=min(start, last), desc=f"train {learner.name}", unit="it", disable=not progress)
    with bar:
        for iteration in range(start + 1, last + 1):
            tic = time.perf_counter()
            batch = train_sampler.sample().to(device)
            try:
                metrics = learner.outer_step(batch, optimizer, clip_grad)
            except TrainingDiverged as error:
                raise TrainingDiverged(f"iteration {iteration}: {error}") from error
            if schedule is not None:
                schedule.step()
            elapsed += time.perf_counter() - tic
            history.record(iteration, metrics, elapsed)
            history.execution = getattr(learner, "execution_reason", "")

            postfix = {"loss": f"{metrics['loss']:.3f}", "acc": f"{100 * metrics['accuracy']:.1f}%"}
            if history.execution:
                postfix["tasks"] = history.execution.split(":")[0]  # "loop" or "vmap"
            if val_sampler is not None and (iteration % val_every == 0 or iteration == last):
                result = evaluate(learner, val_sampler, val_tasks, per_step=False)
                history.val_iteration.append(iteration)
                history.val_accuracy.append(result.accuracy)
                history.val_ci95.append(result.ci95)
            if history.val_accuracy:
                postfix["val"] = f"{history.val_accuracy[-1]:.1f}%"
            bar.set_postfix(postfix, refresh=False)
            bar.update()
            out_of_time = max_seconds is not None and elapsed >= max_seconds
            if checkpoint is not None and (iteration % checkpoint_every == 0 or iteration == last or out_of_time):
                save(iteration)
            if out_of_time:
                break
    return history
