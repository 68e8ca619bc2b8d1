"""Pictures of the data: they draw the images they claim to, from the splits they claim to."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from mlscratch.course.viz import show_episodes  # noqa: E402
from mlscratch.experiment import Settings, load_data  # noqa: E402


@pytest.fixture(scope="module")
def splits():
    return load_data(Settings(dataset="synthetic", image_size=16))


def test_show_episodes_draws_every_image_of_the_training_tasks_and_the_test_task(splits):
    fig = show_episodes(splits, n_way=3, k_shot=2, k_query=1, train_tasks=2)
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == (2 + 1) * 3 * (2 + 1)  # tasks x ways x (shots + queries)
    support_frames = [ax for ax in images if ax.spines["left"].get_linestyle() == "-"]
    assert len(support_frames) == 3 * 3 * 2  # solid frames: the support images only
    labels = [t.get_text() for t in fig.texts]
    assert sum("meta-training task" in t for t in labels) == 2 and sum("meta-test task" in t for t in labels) == 1
    plt.close(fig)
