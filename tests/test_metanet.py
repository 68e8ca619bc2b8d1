"""Meta Networks: the original model-based MetaNet and the embedding-based variant.

Small models on random images keep this file fast; every check would fail on a wrong wiring.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mlscratch.algorithms import ALGORITHMS, build
from mlscratch.algorithms.metanet import MetaNetwork, log_and_sign
from mlscratch.algorithms.metanet_embedding import MetaNetEmbedding
from mlscratch.errors import ConfigError
from mlscratch.tasks import TaskBatch

N_WAY, K_SHOT, N_QUERY = 3, 2, 4


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models run fastest on one thread


def tiny_metanet(seed: int = 0) -> MetaNetwork:
    torch.manual_seed(seed)
    return MetaNetwork(n_way=N_WAY, image_size=16, width=6, n_blocks=3, hidden=8, generator_hidden=5)


def tiny_embedding(seed: int = 0, **options) -> MetaNetEmbedding:
    torch.manual_seed(seed)
    return MetaNetEmbedding(n_way=N_WAY, image_size=16, width=8, embedding_size=6, **options)


def tasks(batch_size: int = 2, seed: int = 1) -> TaskBatch:
    """Random images; labels 0..N-1 in class-major order like TaskSampler's."""
    g = torch.Generator().manual_seed(seed)
    support_y = torch.arange(N_WAY).repeat_interleave(K_SHOT).expand(batch_size, -1)
    query_y = torch.arange(N_WAY).repeat_interleave(N_QUERY).expand(batch_size, -1)
    return TaskBatch(
        torch.rand(batch_size, N_WAY * K_SHOT, 1, 16, 16, generator=g),
        support_y,
        torch.rand(batch_size, N_WAY * N_QUERY, 1, 16, 16, generator=g),
        query_y,
    )


# --- gradient preprocessing --------------------------------------------------------------------


def test_log_and_sign_follows_the_paper_formula():
    k = 7.0
    g = torch.tensor([1.0, -math.exp(-3), 1e-5, -1e-5, 0.0])
    out = log_and_sign(g, k)
    assert out.shape == (5, 2)
    expected = torch.tensor(
        [
            [0.0, 1.0],  # |g| >= e^-k: (log|g| / k, sign g)
            [-3 / 7, -1.0],
            [-1.0, math.exp(7) * 1e-5],  # |g| < e^-k: (-1, e^k g)
            [-1.0, -math.exp(7) * 1e-5],
            [-1.0, 0.0],
        ]
    )
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


# --- original Meta Networks ---------------------------------------------------------------------


def test_metanet_parts_have_the_documented_shapes():
    model, batch = tiny_metanet(), tasks()
    sx, sy, qx = batch.support_x[0], batch.support_y[0], batch.query_x[0]
    params = dict(model.base.named_parameters())
    task_fast = model.task_fast_weights(sx, sy)
    assert set(task_fast) == {"convs.0.weight", "convs.1.weight", "convs.2.weight", "hidden.weight"}
    assert all(task_fast[name].shape == params[name].shape for name in task_fast)
    memory = model.memory(sx, sy)
    assert set(memory) == set(params)
    assert all(memory[name].shape == (N_WAY * K_SHOT, *params[name].shape) for name in memory)
    keys = model.representation.embed(sx, task_fast, relu=False)
    query_keys = model.representation.embed(qx, task_fast, relu=False)
    assert keys.shape == (N_WAY * K_SHOT, 8) and query_keys.shape == (N_WAY * N_QUERY, 8)
    read = model.read_memory(query_keys, keys, memory)
    assert all(read[name].shape == (N_WAY * N_QUERY, *params[name].shape) for name in read)
    assert model.predict(*batch[:3]).shape == (2, N_WAY * N_QUERY, N_WAY)
    assert model.predict(sx, sy, qx).shape == (N_WAY * N_QUERY, N_WAY)


def test_memory_read_is_a_convex_combination_of_the_stored_fast_weights():
    model = tiny_metanet()
    keys, query_keys = torch.randn(5, 8), torch.randn(7, 8)
    memory = {"w": torch.arange(5.0)[:, None].expand(5, 3)}  # entry i holds the value i
    read = model.read_memory(query_keys, keys, memory)["w"][:, 0]  # [7]: the attention-weighted mean of 0..4
    attention = F.cosine_similarity(query_keys[:, None], keys[None], dim=-1).softmax(-1)
    torch.testing.assert_close(read, attention @ torch.arange(5.0))
    same = model.read_memory(query_keys, keys, {"w": torch.ones(5, 3)})["w"]  # weights sum to 1
    torch.testing.assert_close(same, torch.ones(7, 3))


def test_metanet_meta_gradient_reaches_every_part():
    model, batch = tiny_metanet(), tasks()
    loss, metrics = model.meta_loss(batch)
    assert set(metrics) >= {"loss", "accuracy"} and math.isfinite(metrics["loss"])
    loss.backward()
    for part in (
        "base",
        "representation",
        "example_level.conv",
        "example_level.fc",
        "task_level.conv",
        "task_level.fc",
    ):
        grads = [p.grad for name, p in model.named_parameters() if name.startswith(part + ".") and p.requires_grad]
        assert grads and all(g is not None for g in grads), part
        assert sum(g.abs().sum() for g in grads) > 0, f"no meta-gradient reaches {part}"
    assert not model.representation.out.weight.requires_grad  # serves loss_emb only, whose gradients are inputs


def test_fast_weights_change_the_prediction_and_slow_only_is_the_base_learner():
    model, batch = tiny_metanet(), tasks()
    sx, sy, qx = batch.support_x[0], batch.support_y[0], batch.query_x[0]
    with torch.no_grad():
        slow_only = model.base(qx)
        full = model.predict(sx, sy, qx)
        assert not torch.allclose(full, slow_only, atol=1e-4)
        for generator in model.example_level.values():  # m outputs 0 -> no example-level fast weights
            generator.net[-1].weight.zero_()
            generator.net[-1].bias.zero_()
        torch.testing.assert_close(model.predict(sx, sy, qx), slow_only)


def test_metanet_uses_the_support_labels():
    model, batch = tiny_metanet(), tasks()
    sx, sy, qx = batch.support_x[0], batch.support_y[0], batch.query_x[0]
    with torch.no_grad():
        swapped = sy.clone()
        swapped[sy == 0], swapped[sy == 1] = 1, 0
        assert not torch.allclose(model.predict(sx, sy, qx), model.predict(sx, swapped, qx), atol=1e-4)


@pytest.mark.parametrize("make", [tiny_metanet, tiny_embedding], ids=["metanet", "metanet-embedding"])
def test_a_query_is_scored_independently_of_the_other_queries(make):
    model, batch = make(), tasks()
    sx, sy, qx = batch.support_x[0], batch.support_y[0], batch.query_x[0]
    model.eval()
    with torch.no_grad():
        together = model.predict(sx, sy, qx)
        alone = torch.cat([model.predict(sx, sy, qx[i : i + 1]) for i in range(len(qx))])
        reversed_order = model.predict(sx, sy, qx.flip(0)).flip(0)
    torch.testing.assert_close(alone, together, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(reversed_order, together, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("make", [tiny_metanet, tiny_embedding], ids=["metanet", "metanet-embedding"])
def test_same_seed_same_model_and_predictions(make):
    batch = tasks()
    first, second = make(seed=3), make(seed=3)
    with torch.no_grad():
        torch.testing.assert_close(first.predict(*batch[:3]), second.predict(*batch[:3]), rtol=0, atol=0)
    loss_a, _ = first.meta_loss(batch)
    loss_b, _ = second.meta_loss(batch)
    assert loss_a.item() == loss_b.item()


# --- embedding-based Meta Network ---------------------------------------------------------------


def test_embedding_variant_computes_class_weights_and_dot_product_scores():
    model, batch = tiny_embedding(), tasks()
    sx, sy, qx = batch.support_x[0], batch.support_y[0], batch.query_x[0]
    model.eval()
    with torch.no_grad():
        h_support, h_query = model.embed(sx, qx)
        assert h_support.shape == (N_WAY * K_SHOT, 8) and h_query.shape == (N_WAY * N_QUERY, 8)
        weights = torch.stack([(model.U(h_support[sy == c]) + model.e).mean(0) for c in range(N_WAY)])
        torch.testing.assert_close(model.class_weights(h_support, sy), weights)
        torch.testing.assert_close(model.predict(sx, sy, qx), model.V(h_query) @ weights.T)


def test_embedding_variant_gradient_reaches_cnn_and_meta_learner():
    model, batch = tiny_embedding(), tasks()
    loss, _ = model.meta_loss(batch)
    loss.backward()
    for name in ("embedding.blocks.0.conv.weight", "embedding.blocks.3.conv.weight", "U.weight", "V.weight", "e"):
        assert model.get_parameter(name).grad.abs().sum() > 0, name
    assert not any("head" in name for name, _ in model.named_parameters()), "no unused classifier head"


def test_transductive_batchnorm_would_couple_the_queries():
    """Why bn="support" is the default: with batch statistics, one query's score depends on the others."""
    model, batch = tiny_embedding(bn="transductive"), tasks()
    sx, sy, qx = batch.support_x[0], batch.support_y[0], batch.query_x[0]
    with torch.no_grad():
        together = model.predict(sx, sy, qx)[:1]
        alone = model.predict(sx, sy, qx[:1])
    assert not torch.allclose(alone, together, atol=1e-4)


def test_consistent_meta_dropout_one_mask_per_task_shared_by_its_queries():
    model, batch = (
        tiny_embedding(meta_dropout="consistent", meta_dropout_options={"rates": [0.3] * 4}),
        tasks(batch_size=1),
    )
    twice = TaskBatch(*(torch.cat([t, t]) for t in batch))  # the same task twice in one batch
    sx, sy, qx = batch.support_x[0], batch.support_y[0], batch.query_x[0]
    with torch.no_grad():
        logits = model.run_tasks(*twice[:3])  # training mode: masks on
        assert not torch.allclose(logits[0], logits[1]), "each task draws its own masks"
        torch.manual_seed(5)
        together = model.run_tasks(sx[None], sy[None], qx[None])[0]
        torch.manual_seed(5)
        alone = model.run_tasks(sx[None], sy[None], qx[None, :2])[0]  # same masks: drawn once, shaped like one example
        torch.testing.assert_close(alone, together[:2], atol=1e-5, rtol=1e-5)
        logits = model.predict(*twice[:3])
        torch.testing.assert_close(logits[0], logits[1])  # off in evaluation (predict)


def test_mask_query_false_leaves_the_queries_unmasked():
    model = tiny_embedding(meta_dropout="consistent", meta_dropout_options={"rates": [0.3] * 4, "mask_query": False})
    batch = tasks(batch_size=1)
    sx, qx = batch.support_x[0], batch.query_x[0]
    with torch.no_grad():
        h_support, h_query = model.embed(sx, qx)
        model.eval()
        clean_support, clean_query = model.embed(sx, qx)
    torch.testing.assert_close(h_query, clean_query)
    assert not torch.allclose(h_support, clean_support)


# --- registry, checkpoints, bad input -------------------------------------------------------------


def test_both_are_registered_and_rebuild_from_their_hparams():
    assert ALGORITHMS["metanet"] is MetaNetwork and ALGORITHMS["metanet-embedding"] is MetaNetEmbedding
    for name, model in (("metanet", tiny_metanet()), ("metanet-embedding", tiny_embedding())):
        assert model.name == name
        rebuilt = build(name, **model.hparams)
        assert type(rebuilt) is type(model) and rebuilt.hparams == model.hparams


@pytest.mark.parametrize("make", [tiny_metanet, tiny_embedding], ids=["metanet", "metanet-embedding"])
def test_checkpoint_round_trip(make, tmp_path):
    checkpoint = pytest.importorskip("mlscratch.checkpoint")
    model, batch = make(), tasks()
    model.eval()
    path = checkpoint.save_checkpoint(tmp_path / "model.pt", model)
    loaded = checkpoint.load_checkpoint(path)
    assert type(loaded) is type(model)
    with torch.no_grad():
        torch.testing.assert_close(loaded.predict(*batch[:3]), model.predict(*batch[:3]))


@pytest.mark.parametrize(
    ("name", "hparams", "message"),
    [
        ("metanet", {"k": 0}, "k"),
        ("metanet", {"width": 0}, "width"),
        ("metanet-embedding", {"embedding_size": 0}, "embedding_size"),
        ("metanet-embedding", {"meta_dropout": "sometimes"}, "meta_dropout"),
        ("metanet-embedding", {"bn": "running"}, "BatchNorm"),
        ("metanet", {"inner_lr": 0.1}, "metanet"),
    ],
)
def test_bad_settings_raise_config_error(name, hparams, message):
    with pytest.raises(ConfigError, match=message):
        build(name, **hparams)


@pytest.mark.parametrize("algo", ["metanet", "metanet-embedding"])
def test_cli_trains_and_evaluates_through_the_one_trainer(algo, tmp_path):
    import json

    from mlscratch.checkpoint import load_checkpoint
    from mlscratch.cli import main

    tiny = [
        "--dataset",
        "synthetic",
        "--image-size",
        "16",
        "--width",
        "4",
        "--ways",
        "3",
        "--meta-batch",
        "2",
        "--queries",
        "2",
        "--iterations",
        "2",
        "--val-every",
        "2",
        "--val-tasks",
        "2",
        "--eval-tasks",
        "4",
        "--clip-grad",
        "10",
        "--no-progress",
        "--checkpoint",
        str(tmp_path / "m.pt"),
    ]
    assert main(["train", "--algo", algo, *tiny, "--json", str(tmp_path / "train.json")]) == 0
    report = json.loads((tmp_path / "train.json").read_text())
    assert report["algo"] == algo and report["before_adaptation_accuracy"] is None  # no inner steps
    learner = load_checkpoint(tmp_path / "m.pt")
    assert learner.name == algo and learner.hparams["width"] == 4 and learner.hparams["n_way"] == 3
    if algo == "metanet-embedding":
        assert learner.hparams["bn"] == "support"  # the CLI keeps the algorithm's own BatchNorm mode
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(tmp_path / "m.pt"),
                "--eval-tasks",
                "4",
                "--no-progress",
                "--json",
                str(tmp_path / "eval.json"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "eval.json").read_text())["test_accuracy"] == report["test_accuracy"]


def test_learned_noise_is_refused_without_an_inner_loop():
    with pytest.raises(ConfigError, match="no inner loop"):
        build("metanet-embedding", meta_dropout="learned")
