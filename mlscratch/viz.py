"""Looking at the data: one task, the alphabets, the drawers of one character (matplotlib).

Every function returns the matplotlib Figure, so notebooks show it and scripts can save it.
Images are drawn ink-dark on white paper (ink = 1 -> black).
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from torch import Tensor

from .data.omniglot import Omniglot
from .errors import ConfigError
from .tasks import TaskBatch


def _show(ax: plt.Axes, image: Tensor, title: str | None = None) -> None:
    """Draw one [C, H, W] image in [0, 1] on `ax`."""
    image = image.detach().float().cpu()
    if image.shape[0] == 1:
        ax.imshow(image[0], cmap="gray_r", vmin=0, vmax=1)
    else:
        ax.imshow(image.permute(1, 2, 0).clamp(0, 1))
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=8)


def show_task(batch: TaskBatch, i: int = 0, max_queries: int = 5, size: float = 1.0) -> Figure:
    """Task i of a batch: the support set in the top row, then one row of queries per class.

    Titles give each image's label (0..N-1); a learner sees the support labels and must predict the query ones.
    """
    support_x, support_y, query_x, query_y = (t[i] for t in batch)
    n_way = int(support_y.max()) + 1
    queries = [query_x[query_y == label][:max_queries] for label in range(n_way)]
    cols = max(len(support_x), max(len(q) for q in queries))
    fig, axes = plt.subplots(1 + n_way, cols, figsize=(size * cols, size * 1.25 * (1 + n_way)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for j, (image, label) in enumerate(zip(support_x, support_y.tolist(), strict=True)):
        axes[0, j].axis("on")
        _show(axes[0, j], image, f"support {label}")
    for label, images in enumerate(queries):
        for j, image in enumerate(images):
            axes[1 + label, j].axis("on")
            _show(axes[1 + label, j], image, f"query {label}")
    fig.suptitle(f"task {i}: {n_way}-way {len(support_x) // n_way}-shot", fontsize=10)
    fig.tight_layout()
    return fig


def show_alphabets(characters: Omniglot, per_alphabet: int = 6, size: float = 0.8) -> Figure:
    """One row per alphabet: the first drawing of its first `per_alphabet` characters."""
    alphabets = characters.alphabet_names()
    fig, axes = plt.subplots(
        len(alphabets), per_alphabet, squeeze=False, figsize=(size * per_alphabet + 2, size * len(alphabets))
    )
    for row, alphabet in enumerate(alphabets):
        ids = [c for c, a in enumerate(characters.alphabets) if a == alphabet][:per_alphabet]
        for j in range(per_alphabet):
            ax = axes[row, j]
            if j < len(ids):
                _show(ax, characters.images[ids[j], 0])
            else:
                ax.axis("off")
        axes[row, 0].set_ylabel(alphabet.replace("_", " "), rotation=0, ha="right", va="center", fontsize=7)
    fig.suptitle(f"{len(alphabets)} alphabets, {characters.n_characters} characters", fontsize=10)
    fig.tight_layout()
    return fig


def show_drawers(characters: Omniglot, character: int | str = 0, size: float = 1.0) -> Figure:
    """All drawings of one character (index or "Alphabet/characterNN"), titled by who drew each."""
    if isinstance(character, str):
        if character not in characters.names:
            raise ConfigError(f"no character named {character!r}; names look like {characters.names[0]!r}")
        character = characters.names.index(character)
    if not 0 <= character < characters.n_characters:
        raise ConfigError(f"character index {character} out of range 0..{characters.n_characters - 1}")
    drawings = characters.images[character]
    cols = min(10, len(drawings))
    rows = math.ceil(len(drawings) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * 1.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for j, (image, drawer) in enumerate(zip(drawings, characters.drawers[character].tolist(), strict=True)):
        axes.flat[j].axis("on")
        _show(axes.flat[j], image, f"drawer {drawer}")
    fig.suptitle(f"{characters.names[character]}: {len(drawings)} drawers", fontsize=10)
    fig.tight_layout()
    return fig
