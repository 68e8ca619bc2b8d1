"""Looking at the data: one task, the alphabets, the drawers of one character (matplotlib).

Every function returns the matplotlib Figure, so notebooks show it and scripts can save it.
Images are drawn ink-dark on white paper (ink = 1 -> black).
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from torch import Tensor

from ..data.omniglot import Omniglot
from ..errors import ConfigError
from ..tasks import TaskBatch


def show_image(ax: plt.Axes, image: Tensor, title: str | None = None) -> None:
    """Draw one [C, H, W] image in [0, 1] on `ax`."""
    image = image.detach().float().cpu()
    if image.shape[0] == 1:
        ax.imshow(image[0].numpy(), cmap="gray_r", vmin=0, vmax=1)
    else:
        ax.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy())
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
        show_image(axes[0, j], image, f"support {label}")
    for label, images in enumerate(queries):
        for j, image in enumerate(images):
            axes[1 + label, j].axis("on")
            show_image(axes[1 + label, j], image, f"query {label}")
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
                show_image(ax, characters.images[ids[j], 0])
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
        show_image(axes.flat[j], image, f"drawer {drawer}")
    fig.suptitle(f"{characters.names[character]}: {len(drawings)} drawers", fontsize=10)
    fig.tight_layout()
    return fig


def show_episodes(
    splits: dict, n_way: int = 3, k_shot: int = 1, k_query: int = 2, train_tasks: int = 2, seed: int = 0
) -> Figure:
    """The episodic set-up as a picture: `train_tasks` meta-training tasks (training classes), then one
    meta-test task (test classes never seen in training). Each task: its support set (labelled) on the left
    of a dashed line, its queries (to predict) on the right, one row per class."""
    from ..tasks import TaskSampler  # here, so that viz does not import the sampler for the other plots

    tasks = [TaskSampler(splits["train"], n_way, k_shot, k_query, train_tasks, seed=seed).sample()]
    tasks.append(TaskSampler(splits["test"], n_way, k_shot, k_query, 1, seed=seed).sample())
    episodes = [(t, i) for t in tasks for i in range(len(t.support_x))]
    cols = k_shot + k_query
    fig = plt.figure(figsize=(1.0 * (cols + 0.6) * len(episodes), 1.0 * n_way + 1.2))
    outer = fig.add_gridspec(1, len(episodes), wspace=0.25)
    for e, (batch, i) in enumerate(episodes):
        test = e == len(episodes) - 1
        grid = outer[e].subgridspec(n_way, cols, wspace=0.08, hspace=0.08)
        support_x, support_y, query_x, query_y = (t[i] for t in batch)
        for label in range(n_way):
            row = [*support_x[support_y == label], *query_x[query_y == label]]
            for j, image in enumerate(row):
                ax = fig.add_subplot(grid[label, j])
                show_image(ax, image)
                ax.axis("on")
                ax.set_xticks([])
                ax.set_yticks([])
                colour = "C0" if j < k_shot else "0.6"
                for spine in ax.spines.values():
                    spine.set_color(colour)
                    spine.set_linewidth(2 if j < k_shot else 1)
                    spine.set_linestyle("-" if j < k_shot else "--")
                if j == 0:
                    ax.set_ylabel(f"class {label}", fontsize=7)
        box = outer[e].get_position(fig)
        kind = "meta-test task\n(new classes)" if test else f"meta-training task {e + 1}\n(training classes)"
        fig.text(
            (box.x0 + box.x1) / 2,
            box.y1 + 0.04,
            kind,
            ha="center",
            va="bottom",
            fontsize=9,
            color="C3" if test else "black",
        )
        support_right = box.x0 + (box.x1 - box.x0) * k_shot / cols
        fig.text((box.x0 + support_right) / 2, box.y0 - 0.06, "support", ha="center", fontsize=8, color="C0")
        fig.text((support_right + box.x1) / 2, box.y0 - 0.06, "queries", ha="center", fontsize=8, color="0.4")
    fig.suptitle(
        f"episodes: {n_way}-way {k_shot}-shot tasks. Learn from the support (blue), predict the queries (grey); "
        "labels are local to a task",
        fontsize=9,
        y=1.08,
    )
    return fig
