"""`ClassImages`: the images of one split, indexed by class.

Every data source (Omniglot, synthetic glyphs, a folder of your own images,
tensors you already have) ends up as one of these, and the task sampler only
ever sees this type. Images are stored once, padded to the largest class, so a
task batch is a single gather: no per-image Python loop, no copies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..errors import ConfigError


@dataclass
class ClassImages:
    """Images of one split.

    images:  [n_classes, max_per_class, C, H, W] float32 in [0, 1] (ink = 1)
    counts:  [n_classes] long, how many rows of `images[c]` are real (rest is padding)
    names:   one readable name per class, e.g. "Latin/character01"
    rotate:  whether tasks rotate each class by a random multiple of 90 degrees
             (MAML's Omniglot augmentation; each rotation acts as a new class)
    """

    images: Tensor
    counts: Tensor
    names: list[str]
    rotate: bool = False
    source: str = "tensors"
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images.dim() != 5:
            raise ConfigError(
                f"images must be [n_classes, per_class, C, H, W], got shape {tuple(self.images.shape)}; "
                "add the missing dimensions (e.g. .unsqueeze(2) for one grey channel)"
            )
        n = self.images.shape[0]
        if self.counts.shape != (n,):
            raise ConfigError(f"counts must have one entry per class ({n}), got shape {tuple(self.counts.shape)}")
        if len(self.names) != n:
            raise ConfigError(f"names must have one entry per class ({n}), got {len(self.names)}")
        if n and (int(self.counts.min()) < 1 or int(self.counts.max()) > self.images.shape[1]):
            raise ConfigError("every class needs between 1 and images.shape[1] real images")

    @classmethod
    def from_tensors(
        cls, per_class: list[Tensor] | Tensor, names: list[str] | None = None, rotate: bool = False
    ) -> ClassImages:
        """Build from a [n_classes, per_class, C, H, W] tensor or a list of [n_i, C, H, W] tensors."""
        if isinstance(per_class, Tensor):
            per_class = list(per_class)
        if not per_class:
            raise ConfigError("no classes given: pass at least one tensor of images")
        shapes = {tuple(t.shape[1:]) for t in per_class}
        if len(shapes) != 1:
            raise ConfigError(f"all images must share one [C, H, W] shape, got {sorted(shapes)}; resize them first")
        longest = max(t.shape[0] for t in per_class)
        images = torch.zeros(len(per_class), longest, *per_class[0].shape[1:])
        for c, t in enumerate(per_class):
            images[c, : t.shape[0]] = t.float()
        counts = torch.tensor([t.shape[0] for t in per_class])
        names = names or [f"class{c:04d}" for c in range(len(per_class))]
        return cls(images, counts, names, rotate=rotate)

    @property
    def n_classes(self) -> int:
        return self.images.shape[0]

    @property
    def n_images(self) -> int:
        return int(self.counts.sum())

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[2:])  # type: ignore[return-value]

    @property
    def n_effective_classes(self) -> int:
        """Classes a task can draw from, counting each rotation as a class."""
        return self.n_classes * (4 if self.rotate else 1)

    def subset(self, class_ids: Tensor | list[int], rotate: bool | None = None) -> ClassImages:
        """The classes `class_ids`, sharing storage where possible."""
        ids = torch.as_tensor(class_ids, dtype=torch.long)
        return ClassImages(
            self.images[ids],
            self.counts[ids],
            [self.names[i] for i in ids.tolist()],
            rotate=self.rotate if rotate is None else rotate,
            source=self.source,
            meta=dict(self.meta),
        )

    def to(self, device: torch.device | str) -> ClassImages:
        return ClassImages(
            self.images.to(device), self.counts.to(device), self.names, self.rotate, self.source, dict(self.meta)
        )
