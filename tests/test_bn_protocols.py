"""Both BatchNorm protocols: switching is exact and temporary, and the comparison pairs the same tasks."""

from __future__ import annotations

import pytest
import torch

from mlscratch.algorithms import build
from mlscratch.baselines import PixelNearestNeighbour
from mlscratch.compare.bn_protocols import bn_protocol, native_protocol, rank_changes, score_both
from mlscratch.errors import ConfigError
from mlscratch.experiment import Settings, evaluation_tasks, load_data

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def test_classes():
    return load_data(Settings(dataset="synthetic", image_size=16))["test"]


def learners():
    torch.manual_seed(0)
    return {
        "maml": build("maml", n_way=3, image_size=16, width=4).eval(),
        "protonet": build("protonet", image_size=16, width=4).eval(),
    }


def test_switching_changes_what_a_query_sees_and_is_undone(test_classes):
    maml = learners()["maml"]
    batch = evaluation_tasks(test_classes, 3, 1, 2).sample(1)
    task = batch.support_x, batch.support_y, batch.query_x
    native = maml.predict(*task)
    with bn_protocol(maml, "support"):
        assert native_protocol(maml) == "support"
        switched = maml.predict(*task)
    assert native_protocol(maml) == "transductive"
    assert not torch.allclose(native, switched)  # queries normalised by other statistics
    assert torch.equal(native, maml.predict(*task))  # restored exactly
    with pytest.raises(RuntimeError), bn_protocol(maml, "support"):
        raise RuntimeError("inside")
    assert native_protocol(maml) == "transductive"  # restored after an error too


def test_errors_name_the_choices():
    with pytest.raises(ConfigError, match="use one of transductive, support"), bn_protocol(learners()["maml"], "x"):
        pass
    with pytest.raises(ConfigError, match="no Conv4"), bn_protocol(PixelNearestNeighbour(), "support"):
        pass


def test_score_both_pairs_the_same_tasks_and_reuses_stored_native_results(test_classes):
    models = learners()
    rows = score_both(models, test_classes, 3, 1, 2, tasks=6)
    assert {r.name: r.native for r in rows} == {"maml": "transductive", "protonet": "support"}
    for r in rows:
        assert r.n_tasks == 6 and set(r.accuracy) == {"transductive", "support"}
        assert r.difference == pytest.approx(r.accuracy["support"] - r.accuracy["transductive"])
    stored = {"maml": [100.0] * 6}  # a record's own results stand in for the native protocol's measurement
    again = {r.name: r for r in score_both(models, test_classes, 3, 1, 2, tasks=6, native_accuracies=stored)}
    assert again["maml"].accuracy["transductive"] == 100.0
    assert again["protonet"].accuracy == {r.name: r for r in rows}["protonet"].accuracy  # measured: same tasks
    assert all(len(change) == 3 for change in rank_changes(rows))


def test_chapter_8_reads_the_stored_comparison_and_draws_the_recorded_curves():
    from mlscratch.course import ch08_comparison as ch08

    rows, record = ch08.stored_bn()
    assert len(rows) >= 5 and all(set(r.accuracy) == {"transductive", "support"} for r in rows)
    assert "Ranks that change" in ch08.bn_summary(rows, record).data
    figure = ch08.plot_learning_curves(["maml-5w1s", "reptile-5w1s", "protonet-5w1s", "not-a-model"])
    ax = figure.axes[0]
    assert len(ax.get_lines()) == 2  # the two records that kept their validation curve
    assert len(ax.collections) == 1  # protonet-5w1s: its end point only
