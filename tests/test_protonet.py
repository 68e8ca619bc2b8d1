"""Prototypical Networks: prototypes, the linear-layer form, the distance option, the lr schedule, the CLI.

Small models on random images keep this file fast; every check would fail on a wrong wiring.
"""

from __future__ import annotations

import json

import pytest
import torch

from mlscratch.algorithms import ALGORITHMS, build
from mlscratch.algorithms.protonet import ProtoNet, prototypes
from mlscratch.errors import ConfigError
from mlscratch.tasks import TaskBatch

N_WAY, K_SHOT, N_QUERY = 3, 2, 4


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models run fastest on one thread


def tiny(seed: int = 0, **options) -> ProtoNet:
    torch.manual_seed(seed)
    return ProtoNet(image_size=16, width=8, **options)


def tasks(batch_size: int = 2, ways: int = N_WAY, seed: int = 1) -> TaskBatch:
    """Random images; labels 0..N-1 in class-major order like TaskSampler's."""
    g = torch.Generator().manual_seed(seed)
    return TaskBatch(
        torch.rand(batch_size, ways * K_SHOT, 1, 16, 16, generator=g),
        torch.arange(ways).repeat_interleave(K_SHOT).expand(batch_size, -1),
        torch.rand(batch_size, ways * N_QUERY, 1, 16, 16, generator=g),
        torch.arange(ways).repeat_interleave(N_QUERY).expand(batch_size, -1),
    )


def one_task(batch: TaskBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return batch.support_x[0], batch.support_y[0], batch.query_x[0]


def test_prototypes_are_class_means_in_any_label_order():
    embeddings = torch.randn(6, 5)
    labels = torch.tensor([2, 0, 1, 0, 2, 1])
    expected = torch.stack([embeddings[labels == c].mean(0) for c in range(3)])
    torch.testing.assert_close(prototypes(embeddings, labels), expected)


def test_logits_are_negative_squared_distances_to_the_prototypes():
    model = tiny().eval()
    sx, sy, qx = one_task(tasks())
    with torch.no_grad():
        h_support, h_query = model.embed(sx, qx)
        centres = torch.stack([h_support[sy == c].mean(0) for c in range(N_WAY)])
        expected = -(torch.cdist(h_query, centres) ** 2)
        torch.testing.assert_close(model.predict(sx, sy, qx), expected, atol=1e-4, rtol=1e-4)


def test_protonet_is_a_linear_layer_on_the_embedding():
    """-||h - c||^2 = h.(2c) - ||c||^2 - ||h||^2: a linear layer W = 2c, b = -||c||^2, up to a constant per query."""
    model = tiny().eval()
    sx, sy, qx = one_task(tasks())
    with torch.no_grad():
        h_support, h_query = model.embed(sx, qx)
        centres = prototypes(h_support, sy)
        linear = torch.nn.functional.linear(h_query, 2 * centres, -(centres**2).sum(-1))  # [Q, N]
        offset = model.predict(sx, sy, qx) - linear  # -||h_q||^2 in every column
    torch.testing.assert_close(offset, offset[:, :1].expand_as(offset), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(offset[:, 0], -(h_query**2).sum(-1), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(model.predict(sx, sy, qx).softmax(-1), linear.softmax(-1), atol=1e-5, rtol=1e-4)


def test_cosine_distance_scores_by_cosine_similarity():
    model = tiny(distance="cosine").eval()
    sx, sy, qx = one_task(tasks())
    with torch.no_grad():
        h_support, h_query = model.embed(sx, qx)
        centres = prototypes(h_support, sy)
        unit = torch.nn.functional.normalize
        expected = unit(h_query, dim=-1) @ unit(centres, dim=-1).T
        logits = model.predict(sx, sy, qx)
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
    assert logits.abs().max() <= 1 + 1e-6  # bounded: the softmax over cosine scores cannot become confident


def test_scores_tasks_of_any_number_of_ways():
    """The paper trains 60-way and tests 5-way: one model, no fixed output layer."""
    model = tiny()
    assert model.n_way is None and "n_way" not in model.hparams
    for ways in (2, 7):
        batch = tasks(ways=ways)
        assert model.predict(*batch[:3]).shape == (2, ways * N_QUERY, ways)
        loss, metrics = model.meta_loss(batch)
        assert torch.isfinite(loss) and 0 <= metrics["accuracy"] <= 1


def test_a_query_is_scored_independently_of_the_other_queries():
    model = tiny().eval()
    sx, sy, qx = one_task(tasks())
    with torch.no_grad():
        together = model.predict(sx, sy, qx)
        alone = torch.cat([model.predict(sx, sy, qx[i : i + 1]) for i in range(len(qx))])
    torch.testing.assert_close(alone, together, atol=1e-5, rtol=1e-5)


def test_meta_gradient_reaches_every_layer_and_there_is_no_head():
    model = tiny()
    loss, _ = model.meta_loss(tasks())
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert not any("head" in name for name, _ in model.named_parameters())


def test_learning_rate_halves_every_lr_halving_iterations_and_resumes(tmp_path):
    from mlscratch.checkpoint import read_checkpoint
    from mlscratch.data.classes import ClassImages
    from mlscratch.tasks import TaskSampler
    from mlscratch.training import fit

    optimizer, schedule = tiny(lr_halving=2000).configure_optimizer(1e-3, 10)
    assert isinstance(optimizer, torch.optim.Adam)
    assert (schedule.step_size, schedule.gamma) == (2000, 0.5)  # the paper's schedule by default

    classes = ClassImages(torch.rand(6, 4, 1, 16, 16), torch.full((6,), 4), [f"c{i}" for i in range(6)])
    sampler = TaskSampler(classes, N_WAY, 1, 1, 2, seed=0)
    model = tiny(lr_halving=2)
    fit(model, sampler, 3, outer_lr=1e-3, checkpoint=tmp_path / "p.pt", progress=False)
    assert read_checkpoint(tmp_path / "p.pt")["schedule"]["last_epoch"] == 3
    resumed = tiny(lr_halving=2)  # continues from the checkpoint: 5 iterations in all -> halved twice
    fit(resumed, sampler, 5, outer_lr=1e-3, checkpoint=tmp_path / "p.pt", progress=False)
    assert read_checkpoint(tmp_path / "p.pt")["optimizer"]["param_groups"][0]["lr"] == pytest.approx(2.5e-4)


@pytest.mark.parametrize(
    ("hparams", "message"),
    [
        ({"distance": "manhattan"}, "euclidean, cosine"),
        ({"lr_halving": 0}, "lr_halving"),
        ({"bn": "running"}, "BatchNorm"),
        ({"width": 0}, "width"),
        ({"inner_lr": 0.1}, "protonet does not take inner_lr"),
    ],
)
def test_bad_settings_raise_config_error(hparams, message):
    with pytest.raises(ConfigError, match=message):
        build("protonet", **hparams)


def test_registered_rebuilds_from_hparams_and_checkpoint_round_trip(tmp_path):
    from mlscratch.checkpoint import load_checkpoint, save_checkpoint

    assert ALGORITHMS["protonet"] is ProtoNet
    model = tiny(distance="cosine")
    rebuilt = build("protonet", **model.hparams)
    assert type(rebuilt) is ProtoNet and rebuilt.hparams == model.hparams and rebuilt.distance == "cosine"
    model.eval()
    loaded = load_checkpoint(save_checkpoint(tmp_path / "model.pt", model))
    batch = tasks()
    with torch.no_grad():
        torch.testing.assert_close(loaded.predict(*batch[:3]), model.predict(*batch[:3]))


TINY_CLI = [
    "--dataset", "synthetic", "--image-size", "16", "--width", "4", "--ways", "3", "--meta-batch", "2",
    "--queries", "2", "--iterations", "2", "--val-every", "2", "--val-tasks", "2", "--eval-tasks", "4",
    "--no-progress",
]  # fmt: skip


def test_cli_trains_and_evaluates_end_to_end(tmp_path):
    from mlscratch.checkpoint import load_checkpoint
    from mlscratch.cli import main

    checkpoint, report = tmp_path / "p.pt", tmp_path / "train.json"
    assert main(["train", "--algo", "protonet", *TINY_CLI, "--checkpoint", str(checkpoint), "--json", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["algo"] == "protonet" and result["eval_ways"] == 3 and 0 <= result["test_accuracy"] <= 100
    learner = load_checkpoint(checkpoint)
    assert learner.name == "protonet" and learner.hparams["width"] == 4 and learner.hparams["bn"] == "support"


def test_cli_flag_the_algorithm_does_not_take_exits_2_naming_it(capsys):
    from mlscratch.cli import main

    assert main(["train", "--algo", "protonet", *TINY_CLI, "--inner-lr", "0.1"]) == 2
    assert "protonet does not take --inner-lr" in capsys.readouterr().err


def test_prototype_plane_contains_three_prototypes_so_the_picture_is_exact():
    from mlscratch.course.ch06_metric_learning import prototype_plane

    torch.manual_seed(0)
    centres, queries = torch.randn(3, 16), torch.randn(20, 16)
    origin, directions = prototype_plane(centres, queries)
    torch.testing.assert_close(directions @ directions.T, torch.eye(2), atol=1e-5, rtol=0)
    on_plane = origin + (centres - origin) @ directions.T @ directions
    torch.testing.assert_close(on_plane, centres, atol=1e-5, rtol=0)  # the prototypes lie in the plane
    projected = origin + (queries - origin) @ directions.T @ directions
    assert torch.equal(torch.cdist(projected, centres).argmin(-1), torch.cdist(queries, centres).argmin(-1))
    origin, directions = prototype_plane(centres[:2], queries)  # two ways: the line through them + one more
    assert directions.shape == (2, 16)
    torch.testing.assert_close(directions @ directions.T, torch.eye(2), atol=1e-5, rtol=0)


def test_plot_prototypes_draws_a_task():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mlscratch.course.ch06_metric_learning import plot_prototypes

    figure = plot_prototypes(tiny(), *one_task(tasks())[:3], tasks().query_y[0], resolution=20)
    assert "3-way 2-shot" in figure.axes[0].get_title()
    plt.close(figure)


def test_scale_multiplies_the_logits_and_must_be_positive():
    from mlscratch.algorithms import build
    from mlscratch.errors import ConfigError

    torch.manual_seed(0)
    plain = build("protonet", distance="cosine", width=4, image_size=16)
    scaled = build("protonet", distance="cosine", width=4, image_size=16, scale=10.0)
    scaled.load_state_dict(plain.state_dict())
    sx, sy, qx = torch.rand(3, 1, 16, 16), torch.arange(3), torch.rand(4, 1, 16, 16)
    torch.testing.assert_close(scaled.predict(sx, sy, qx), 10 * plain.predict(sx, sy, qx))
    assert plain.predict(sx, sy, qx).abs().max() <= 1 + 1e-6  # a bare cosine is bounded
    with pytest.raises(ConfigError, match="scale multiplies the logits"):
        build("protonet", scale=0.0)
