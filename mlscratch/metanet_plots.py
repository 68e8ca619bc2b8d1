"""A block diagram of Meta Networks (Munkhdalai & Yu 2017, Figure 1), drawn from a table of boxes and arrows.

Top: the support set. Its per-example loss gradients are the meta information: the base learner's go through the
meta learner m into a memory of example-level fast weights W*_i; the representation network's go through the
LSTM d into task-level fast weights Q*, with which the representation network embeds the support set (the
memory's keys r_i). Bottom: a query. Its embedding reads the memory by attention, and the base learner scores it
with slow and fast weights in every layer.

`BOXES` and `ARROWS` are the picture's content; `draw_meta_networks()` draws them and returns the Figure.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

READ = "attention read\n$a = \\mathrm{softmax}_i \\cos(u, r_i)$\n$W^* = \\sum_i a_i W^*_i$"
SLOW_FAST = "base learner, slow + fast:\n$\\mathrm{ReLU}(Wh) + \\mathrm{ReLU}(W^*h)$\n$\\to$ logits"

# name: (centre x, centre y, text, colour). Colours: data grey, slow networks blue, generators orange,
# generated (fast) weights green, the query's path purple.
BOXES: dict[str, tuple[float, float, str, str]] = {
    "support": (1.2, 5.0, "support set\n$(x_i, y_i)$, $i = 1..NK$", "0.85"),
    "base": (5.2, 6.4, "base learner $b$\nslow weights $W$", "#c6dbef"),
    "representation": (5.2, 3.6, "representation net $u$\nslow weights $Q$", "#c6dbef"),
    "m": (9.4, 6.4, "meta learner $m$\n(MLP, per coordinate)", "#fdd0a2"),
    "d": (9.4, 3.6, "meta learner $d$\n(LSTM, per coordinate)", "#fdd0a2"),
    "memory": (13.6, 6.4, "memory $M$: example-level\nfast weights $W^*_i$", "#c7e9c0"),
    "task_fast": (13.6, 3.6, "task-level fast\nweights $Q^*$", "#c7e9c0"),
    "keys": (13.6, 2.2, "keys $r_i = u(Q, Q^*, x_i)$", "#c7e9c0"),
    "query": (1.2, 0.6, "query $x$", "0.85"),
    "query_key": (5.2, 0.6, "query embedding\n$u(Q, Q^*, x)$", "#dadaeb"),
    "attention": (9.4, 0.6, READ, "#dadaeb"),
    "slow_fast": (13.6, 0.6, SLOW_FAST, "#dadaeb"),
}

# (from, to, label on the arrow, where along the arrow the label sits: 0 tail, 1 head)
ARROWS: list[tuple[str, str, str, float]] = [
    ("support", "base", "", 0.5),
    ("support", "representation", "", 0.5),
    ("base", "m", "per-example gradients\n$\\nabla_W \\mathcal{L}(x_i)$, log/sign", 0.5),
    ("representation", "d", "per-example gradients\n$\\nabla_Q \\mathcal{L}_{emb}(x_i)$, log/sign", 0.5),
    ("m", "memory", "$W^*_i = m(\\nabla_i)$", 0.5),
    ("d", "task_fast", "$Q^* = d(\\nabla_1, \\dots)$", 0.5),
    ("task_fast", "keys", "", 0.5),
    ("query", "query_key", "", 0.5),
    ("task_fast", "query_key", "", 0.5),
    ("query_key", "attention", "", 0.5),
    ("keys", "attention", "keys", 0.5),
    ("memory", "attention", "values", 0.8),
    ("attention", "slow_fast", "$W^*$", 0.5),
]

BOX_WIDTH, BOX_HEIGHT = 2.7, 1.0


def _edge(start: tuple[float, float], end: tuple[float, float]) -> tuple[float, float]:
    """The point where the segment from a box's centre `start` towards `end` leaves the box."""
    dx, dy = end[0] - start[0], end[1] - start[1]
    scale = min(BOX_WIDTH / 2 / abs(dx) if dx else float("inf"), BOX_HEIGHT / 2 / abs(dy) if dy else float("inf"))
    return start[0] + scale * dx, start[1] + scale * dy


def draw_meta_networks(ax: plt.Axes | None = None) -> Figure:
    """Draw `BOXES` joined by `ARROWS`: one text per box and per arrow label; returns the Figure."""
    if ax is None:
        _, ax = plt.subplots(figsize=(14, 6.2))
    for x, y, text, colour in BOXES.values():
        ax.add_patch(
            FancyBboxPatch(
                (x - BOX_WIDTH / 2, y - BOX_HEIGHT / 2), BOX_WIDTH, BOX_HEIGHT,
                boxstyle="round,pad=0.05", facecolor=colour, edgecolor="0.3", gid="box",
            )
        )  # fmt: skip
        ax.text(x, y, text, ha="center", va="center", fontsize=8.5)
    # the query passes its input to the slow + fast base learner below the boxes, not through them
    ax.add_patch(
        FancyArrowPatch(
            (1.2, 0.6 - BOX_HEIGHT / 2), (13.6, 0.6 - BOX_HEIGHT / 2), connectionstyle="arc3,rad=0.12",
            arrowstyle="-|>", mutation_scale=12, color="0.35", gid="arrow",
        )
    )  # fmt: skip
    ax.text(7.4, -0.5, "the query itself", ha="center", fontsize=7.5, color="0.3")
    for start, end, label, where in ARROWS:
        a, b = BOXES[start][:2], BOXES[end][:2]
        tail, head = _edge(a, b), _edge(b, a)
        ax.add_patch(FancyArrowPatch(tail, head, arrowstyle="-|>", mutation_scale=12, color="0.35", gid="arrow"))
        if label:
            x, y = tail[0] + where * (head[0] - tail[0]), tail[1] + where * (head[1] - tail[1])
            ax.text(x, y + 0.08, label, ha="center", va="bottom", fontsize=7.5, color="0.2")
    ax.text(0.0, 7.35, "support: write fast weights", fontsize=10, weight="bold")
    ax.text(0.0, 1.5, "query: read them", fontsize=10, weight="bold")
    ax.set_xlim(-0.4, 15.2)
    ax.set_ylim(-0.7, 7.6)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title("Meta Networks: gradients in, weights out (Munkhdalai & Yu 2017)")
    return ax.figure
