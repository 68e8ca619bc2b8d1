"""The Meta Networks block diagram draws every box and arrow of its table, with the labels the chapter names."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from mlscratch.course.ch05_meta_networks import ARROWS, BOXES, draw_meta_networks  # noqa: E402


def test_every_box_and_arrow_is_drawn():
    figure = draw_meta_networks()
    ax = figure.axes[0]
    boxes = [p for p in ax.patches if p.get_gid() == "box"]
    arrows = [p for p in ax.patches if p.get_gid() == "arrow"]
    assert len(boxes) == len(BOXES)
    assert len(arrows) == len(ARROWS) + 1  # and the query's own path to the slow + fast learner
    texts = [t.get_text() for t in ax.texts]
    for *_, text, _ in BOXES.values():
        assert text in texts


def test_the_parts_of_meta_networks_are_named():
    texts = " ".join(t.get_text() for t in draw_meta_networks().axes[0].texts)
    parts = ("base learner", "representation net", "meta learner $m$", "meta learner $d$", "LSTM", "memory")
    parts += ("example-level", "task-level", "attention", "slow + fast", "per-example gradients", "query")
    for part in parts:
        assert part in texts, part


def test_arrows_join_existing_boxes_and_go_from_support_to_query():
    assert all(start in BOXES and end in BOXES for start, end, *_ in ARROWS)
    ends = {end for _, end, *_ in ARROWS}
    assert "support" not in ends and "query" not in ends  # the inputs
    assert {"memory", "task_fast", "attention", "slow_fast"} <= ends
