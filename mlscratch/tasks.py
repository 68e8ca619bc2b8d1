"""N-way K-shot tasks, sampled a whole meta-batch at a time.

A task: pick N classes, give them labels 0..N-1, take K images of each as the
*support* set (what the learner adapts on) and Q other images of each as the
*query* set (what it is scored on). The sampler draws B tasks at once with a
handful of tensor ops, on whatever device the images live on.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import Tensor

from .data.classes import ClassImages
from .errors import ConfigError


class TaskBatch(NamedTuple):
    """B tasks. Labels are 0..N-1 within each task, class-major order.

    support_x: [B, N*K, C, H, W]   support_y: [B, N*K]
    query_x:   [B, N*Q, C, H, W]   query_y:   [B, N*Q]
    """

    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor

    def to(self, device: torch.device | str) -> TaskBatch:
        return TaskBatch(*(t.to(device, non_blocking=True) for t in self))

    def task(self, i: int) -> TaskBatch:
        """Task i alone, keeping a batch dimension of 1."""
        return TaskBatch(*(t[i : i + 1] for t in self))

    @property
    def n_way(self) -> int:
        return int(self.support_y.max()) + 1


def check_task_shape(classes: ClassImages, n_way: int, k_shot: int, k_query: int) -> None:
    """Raise ConfigError naming the problem and the fix if no such task can be drawn."""
    for name, value in (("n_way", n_way), ("k_shot", k_shot)):
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if not isinstance(k_query, int) or k_query < 1:
        raise ConfigError(f"k_query must be a positive integer, got {k_query!r}")
    if n_way > classes.n_classes:
        raise ConfigError(
            f"n_way={n_way} but this split has only {classes.n_classes} classes; "
            f"use n_way <= {classes.n_classes} or a larger split"
        )
    fewest = int(classes.counts.min())
    if k_shot + k_query > fewest:
        raise ConfigError(
            f"k_shot + k_query = {k_shot + k_query} but some classes have only {fewest} images; "
            f"use k_shot + k_query <= {fewest} (support and query images must be distinct)"
        )


class TaskSampler:
    """Draws batches of N-way K-shot tasks with Q queries per class.

    Deterministic for a seed: the same seed gives the same tasks on the same device.
    `state_dict()` / `load_state_dict()` let a resumed training run continue the
    exact task stream.

    within_alphabet: draw all N classes of a task from one alphabet (the part of the class name before the
    first "/", e.g. "Latin/character01"), as in Lake's challenge. Each task picks one alphabet uniformly among
    those with at least N classes (alphabets with fewer, e.g. Blackfoot's 14 characters at 20-way, are never
    drawn); ConfigError if no alphabet has N classes.
    """

    def __init__(
        self,
        classes: ClassImages,
        n_way: int = 5,
        k_shot: int = 1,
        k_query: int = 15,
        batch_size: int = 32,
        *,
        rotate: bool | None = None,
        seed: int = 0,
        device: torch.device | str | None = None,
        within_alphabet: bool = False,
    ) -> None:
        check_task_shape(classes, n_way, k_shot, k_query)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.device = torch.device(device) if device is not None else classes.images.device
        self.classes = classes.to(self.device)
        self.n_way, self.k_shot, self.k_query, self.batch_size = n_way, k_shot, k_query, batch_size
        self.rotate = classes.rotate if rotate is None else rotate
        self.seed = seed
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        # Padding rows get +inf keys so they sort last and are never drawn.
        per_class = self.classes.images.shape[1]
        self._padding = torch.arange(per_class, device=self.device) >= self.classes.counts[:, None]
        labels = torch.arange(n_way, device=self.device)
        self._support_y = labels.repeat_interleave(k_shot)
        self._query_y = labels.repeat_interleave(k_query)
        # All images as rows of pixels [n_classes * per_class, C, H*W] (a view), and for each quarter
        # turn the pixel order that rotates an image: rotation becomes one gather, not a loop.
        c, h, w = self.classes.image_shape
        if self.rotate and h != w:
            raise ConfigError(f"rotate=True needs square images, got {h}x{w}; resize them or pass rotate=False")
        self._rows = self.classes.images.reshape(-1, c, h * w)
        pixel = torch.arange(h * w, device=self.device).reshape(h, w)
        self._rotations = torch.stack([torch.rot90(pixel, turns, dims=(0, 1)).reshape(-1) for turns in range(4)])
        self.within_alphabet = within_alphabet
        self._alphabets = alphabet_table(classes.names, n_way).to(self.device) if within_alphabet else None

    def upright(self) -> TaskSampler:
        """Keep drawing the turns (the same random stream: the same classes and drawings, task for task) but apply
        none of them: the upright twin of a turning stream, for paired comparisons with and without turns."""
        self._rotations = self._rotations[:1].expand_as(self._rotations)
        return self

    def sample(self, batch_size: int | None = None) -> TaskBatch:
        """One batch of tasks (see TaskBatch for shapes)."""
        b = batch_size or self.batch_size
        n, k, q, g = self.n_way, self.k_shot, self.k_query, self.generator
        n_classes = self.classes.n_classes
        # 1. N distinct classes per task: the first N of a random permutation (of one alphabet's classes).
        if self._alphabets is None:
            class_ids = torch.rand(b, n_classes, generator=g, device=self.device).argsort(dim=1)[:, :n]
        else:
            table = self._alphabets[torch.randint(0, len(self._alphabets), (b,), generator=g, device=self.device)]
            keys = torch.rand(table.shape, generator=g, device=self.device).masked_fill(table < 0, float("inf"))
            class_ids = table.gather(1, keys.argsort(dim=1)[:, :n])
        # 2. K+Q distinct images per class: the first K+Q of a random order of its real images.
        keys = torch.rand(b, n, self.classes.images.shape[1], generator=g, device=self.device)
        keys = keys.masked_fill(self._padding[class_ids], float("inf"))
        image_ids = keys.argsort(dim=2)[:, :, : k + q]
        x = self._rows[class_ids[:, :, None] * self.classes.images.shape[1] + image_ids]  # [B, N, K+Q, C, H*W]
        # 3. Optional augmentation: rotate each class of each task by 0/90/180/270 degrees.
        if self.rotate:
            turns = torch.randint(0, 4, (b, n), generator=g, device=self.device)
            x = x.gather(4, self._rotations[turns][:, :, None, None, :].expand_as(x))
        x = x.unflatten(4, self.classes.image_shape[1:])  # [B, N, K+Q, C, H, W]
        support_x = x[:, :, :k].flatten(1, 2)
        query_x = x[:, :, k:].flatten(1, 2)
        return TaskBatch(support_x, self._support_y.expand(b, -1), query_x, self._query_y.expand(b, -1))

    def __iter__(self) -> Iterator[TaskBatch]:
        while True:
            yield self.sample()

    def state_dict(self) -> dict:
        return {"seed": self.seed, "rng": self.generator.get_state(), "device": self.device.type}

    def load_state_dict(self, state: dict) -> None:
        """Continue the saved task stream. A generator's state only fits its own kind of device, so a stream
        saved on another (a CPU run continued on a GPU) is re-seeded from the saved state: deterministic for
        the checkpoint, but not the tasks an uninterrupted run would have drawn (a warning says so)."""
        self.seed = state["seed"]
        saved_on = state.get("device", "cpu")
        if saved_on == self.device.type:
            self.generator.set_state(state["rng"].cpu())
            return
        digest = hashlib.sha256(state["rng"].cpu().numpy().tobytes()).digest()
        self.generator.manual_seed(int.from_bytes(digest[:8], "little") >> 1)
        warnings.warn(
            f"the task stream was saved on {saved_on} and continues on {self.device.type}: re-seeded from the "
            "saved state, so the tasks from here differ from those of an uninterrupted run",
            stacklevel=2,
        )


def alphabet_table(names: list[str], n_way: int) -> Tensor:
    """[n_alphabets, most classes] class ids of each alphabet with at least n_way classes, padded with -1."""
    if not all("/" in name for name in names):
        raise ConfigError(
            "within_alphabet needs class names like 'Alphabet/character01' (Omniglot or synthetic glyphs); "
            "these classes have none, so drop within_alphabet"
        )
    groups: dict[str, list[int]] = {}
    for c, name in enumerate(names):
        groups.setdefault(name.split("/")[0], []).append(c)
    kept = [ids for ids in groups.values() if len(ids) >= n_way]
    if not kept:
        raise ConfigError(
            f"within_alphabet: no alphabet has {n_way} classes (the largest has {max(map(len, groups.values()))}); "
            "use fewer ways or drop within_alphabet"
        )
    table = torch.full((len(kept), max(map(len, kept))), -1, dtype=torch.long)
    for row, ids in enumerate(kept):
        table[row, : len(ids)] = torch.tensor(ids)
    return table


def minibatch_order(tasks: int, images: int, steps: int, size: int | None, device: torch.device) -> Tensor:
    """Indices [tasks, steps, size] of the images each inner step trains on, for learners that train on all of a
    task's images in mini-batches (Reptile): shuffled passes, no image repeats within a pass. size=None: all."""
    if size is None:
        return torch.arange(images, device=device).expand(tasks, steps, images)
    passes = math.ceil(steps * size / images)
    shuffled = torch.rand(tasks, passes, images, device=device).argsort(-1).flatten(1)
    return shuffled[:, : steps * size].reshape(tasks, steps, size)
