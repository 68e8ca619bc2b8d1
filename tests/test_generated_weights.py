"""The generated-weights explorer: the weights it shows are the ones the network scores with; any ways work."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("ipywidgets")

from random_tasks import tiny_splits  # noqa: E402

from mlscratch import TaskSampler  # noqa: E402
from mlscratch.algorithms import build  # noqa: E402
from mlscratch.course.ch05_meta_networks import generate, soft_confusion, weights_explorer  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models run fastest on one thread


def test_generated_weights_give_the_networks_own_predictions():
    torch.manual_seed(0)
    net = build("metanet-embedding", width=8, embedding_size=6)
    task = TaskSampler(tiny_splits()["test"], 4, 2, 3, 1, seed=0).sample()
    generated = generate(net, task)
    assert generated.weights.shape == (4, 6) and generated.probabilities.shape == (12, 4)
    logits = net.predict(*task[:3])[0]
    torch.testing.assert_close(generated.probabilities, logits.softmax(-1))
    expected = (logits.argmax(-1) == task.query_y[0]).float().mean().item() * 100
    assert generated.accuracy == pytest.approx(expected)


def test_soft_confusion_rows_are_distributions_over_predicted_classes():
    probabilities = torch.tensor([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8], [0.0, 1.0]])
    confusion = soft_confusion(probabilities, torch.tensor([0, 0, 1, 1]))
    torch.testing.assert_close(confusion, torch.tensor([[0.7, 0.3], [0.1, 0.9]]))


def test_panel_compares_with_maml_on_the_same_task_up_to_its_ways():
    torch.manual_seed(0)
    net = build("metanet-embedding", width=8, embedding_size=6)
    maml = build("maml", n_way=5, width=8)
    panel = weights_explorer(net, tiny_splits(), maml=maml, k_query=3)
    assert "5-way 1-shot" in panel.message.value and "MAML on the same task" in panel.message.value
    panel.controls["n_way"].value = 7  # the Meta Network writes 7 rows; MAML's 5-way head cannot answer
    assert "7-way" in panel.message.value and "MAML: not shown for 7 ways" in panel.message.value
    assert panel.result[0].axes[1].images[0].get_array().shape == (7, 6)
