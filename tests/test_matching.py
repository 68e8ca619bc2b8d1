"""Matching Networks: attention, log-probabilities, hard attention as nearest neighbour, full context embeddings.

Small models on random images keep this file fast; every check would fail on a wrong wiring.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from mlscratch.algorithms import ALGORITHMS, build
from mlscratch.algorithms.matching import MatchingNetwork
from mlscratch.errors import ConfigError
from mlscratch.tasks import TaskBatch

N_WAY, K_SHOT, N_QUERY = 3, 2, 4


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models run fastest on one thread


def tiny(seed: int = 0, **options) -> MatchingNetwork:
    torch.manual_seed(seed)
    return MatchingNetwork(image_size=16, width=8, **options)


def tasks(batch_size: int = 2, ways: int = N_WAY, shots: int = K_SHOT, seed: int = 1) -> TaskBatch:
    """Random images; labels 0..N-1 in class-major order like TaskSampler's."""
    g = torch.Generator().manual_seed(seed)
    return TaskBatch(
        torch.rand(batch_size, ways * shots, 1, 16, 16, generator=g),
        torch.arange(ways).repeat_interleave(shots).expand(batch_size, -1),
        torch.rand(batch_size, ways * N_QUERY, 1, 16, 16, generator=g),
        torch.arange(ways).repeat_interleave(N_QUERY).expand(batch_size, -1),
    )


def one_task(batch: TaskBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return batch.support_x[0], batch.support_y[0], batch.query_x[0]


@pytest.mark.parametrize("fce", [False, True], ids=["plain", "fce"])
def test_attention_rows_sum_to_one_and_logits_are_log_of_attention_times_labels(fce):
    model = tiny(fce=fce).eval()
    sx, sy, qx = one_task(tasks())
    with torch.no_grad():
        g_support, f_query = model.embed(sx, qx)
        attention = model.attention(f_query, g_support)  # [Q, n]
        logits = model.predict(sx, sy, qx)
    assert attention.shape == (N_WAY * N_QUERY, N_WAY * K_SHOT) and (attention >= 0).all()
    torch.testing.assert_close(attention.sum(-1), torch.ones(len(qx)))
    cosine = F.normalize(f_query, dim=-1) @ F.normalize(g_support, dim=-1).T
    torch.testing.assert_close(attention, cosine.softmax(-1), atol=1e-5, rtol=1e-5)
    probabilities = attention @ F.one_hot(sy, N_WAY).float()  # the paper's sum of a(q, i) y_i
    torch.testing.assert_close(logits, probabilities.log(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits.exp().sum(-1), torch.ones(len(qx)))  # cross-entropy == -log P(y | x)


def test_hard_attention_with_one_shot_is_the_cosine_nearest_neighbour():
    model = tiny(temperature=1e-4).eval()
    sx, sy, qx = one_task(tasks(shots=1, ways=5, seed=3))
    sy = torch.tensor([3, 0, 4, 1, 2])  # any label order: the prediction is the neighbour's label
    with torch.no_grad():
        g_support, f_query = model.embed(sx, qx)
        nearest = F.cosine_similarity(f_query[:, None], g_support[None], dim=-1).argmax(-1)
        logits = model.predict(sx, sy, qx)
    assert torch.equal(logits.argmax(-1), sy[nearest])
    torch.testing.assert_close(logits.exp(), F.one_hot(sy[nearest], 5).float(), atol=1e-3, rtol=0)
    assert torch.isfinite(logits.max(-1).values).all()  # log space: no log 0 for the winning class


def test_euclidean_nearest_neighbour_is_not_what_it_computes():
    """The hard-attention check above can fail: cosine and Euclidean neighbours differ on raw embeddings."""
    model = tiny(temperature=1e-4).eval()
    differ = 0
    for seed in range(5):
        sx, sy, qx = one_task(tasks(shots=1, ways=5, seed=seed))
        with torch.no_grad():
            g_support, f_query = model.embed(sx, qx)
            euclidean = torch.cdist(f_query, g_support).argmin(-1)
            differ += (model.predict(sx, sy, qx).argmax(-1) != sy[euclidean]).sum().item()
    assert differ > 0


@pytest.mark.parametrize("fce", [False, True], ids=["plain", "fce"])
def test_a_query_is_scored_independently_of_the_other_queries(fce):
    model = tiny(fce=fce).eval()
    sx, sy, qx = one_task(tasks())
    with torch.no_grad():
        together = model.predict(sx, sy, qx)
        alone = torch.cat([model.predict(sx, sy, qx[i : i + 1]) for i in range(len(qx))])
    torch.testing.assert_close(alone, together, atol=1e-5, rtol=1e-5)


def test_full_context_embeddings_with_silent_lstms_reduce_to_the_plain_network():
    """Zero LSTM weights give zero LSTM states: g(x_i) = g'(x_i) + 0 + 0 and h_k = 0 + f'(x), so f = f'."""
    plain, full = tiny(seed=4), tiny(seed=4, fce=True)
    with torch.no_grad():
        for parameter in full.context.parameters():
            parameter.zero_()
    batch = tasks()
    with torch.no_grad():
        torch.testing.assert_close(full.predict(*batch[:3]), plain.predict(*batch[:3]))


def test_full_context_embeddings_read_the_whole_support_set():
    model = tiny(fce=True).eval()
    sx, sy, qx = one_task(tasks())
    changed = sx.clone()
    changed[-1] = torch.rand_like(changed[-1])
    with torch.no_grad():
        model.embedding.bn = "transductive"  # isolate the LSTMs: BatchNorm statistics alone would also change
        g_support, _ = model.embed(sx, qx)
        g_changed, _ = model.embed(changed, qx)
    assert not torch.allclose(g_support[0], g_changed[0], atol=1e-5)  # the first embedding sees the last image


def test_query_lstm_attends_to_each_support_embedding_not_their_mean():
    """Two support sets with the same mean: only an attention read-out (from step 2 on) can tell them apart."""
    context = tiny(fce=True, fce_steps=3).context
    g = torch.randn(2, 8)
    same_mean = torch.stack([g.mean(0) + 2 * g[1], g.mean(0) - 2 * g[1]])
    f = torch.randn(5, 8)
    with torch.no_grad():
        assert not torch.allclose(context.query(f, g), context.query(f, same_mean), atol=1e-4)
        torch.testing.assert_close(context.query(f, g.flip(0)), context.query(f, g))  # order does not matter
        one_step = tiny(fce=True, fce_steps=1).context  # h_0 = 0: the first read-out is the plain mean
        torch.testing.assert_close(one_step.query(f, g), one_step.query(f, same_mean))


def test_meta_gradient_reaches_the_cnn_and_both_lstms():
    model = tiny(fce=True, fce_steps=2)
    loss, metrics = model.meta_loss(tasks())
    assert 0 <= metrics["accuracy"] <= 1
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert {name.split(".")[1] for name, _ in model.named_parameters() if name.startswith("context.")} == {
        "support_lstm",
        "query_lstm",
    }


def test_scores_tasks_of_any_number_of_ways():
    model = tiny()
    assert model.n_way is None
    for ways in (2, 6):
        assert model.predict(*tasks(ways=ways)[:3]).shape == (2, ways * N_QUERY, ways)


@pytest.mark.parametrize(
    ("hparams", "message"),
    [
        ({"temperature": 0.0}, "temperature"),
        ({"fce_steps": 0}, "fce_steps"),
        ({"fce": "yes"}, "fce"),
        ({"bn": "running"}, "BatchNorm"),
        ({"distance": "cosine"}, "matching does not take distance"),
    ],
)
def test_bad_settings_raise_config_error(hparams, message):
    with pytest.raises(ConfigError, match=message):
        build("matching", **hparams)


@pytest.mark.parametrize("fce", [False, True], ids=["plain", "fce"])
def test_registered_rebuilds_from_hparams_and_checkpoint_round_trip(fce, tmp_path):
    from mlscratch.checkpoint import load_checkpoint, save_checkpoint

    assert ALGORITHMS["matching"] is MatchingNetwork
    model = tiny(fce=fce)
    rebuilt = build("matching", **model.hparams)
    assert type(rebuilt) is MatchingNetwork and rebuilt.hparams == model.hparams
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

    checkpoint, report = tmp_path / "m.pt", tmp_path / "train.json"
    assert main(["train", "--algo", "matching", *TINY_CLI, "--checkpoint", str(checkpoint), "--json", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["algo"] == "matching" and result["eval_ways"] == 3 and 0 <= result["test_accuracy"] <= 100
    assert load_checkpoint(checkpoint).hparams["bn"] == "support"


def test_cli_flag_the_algorithm_does_not_take_exits_2_naming_it(capsys):
    from mlscratch.cli import main

    assert main(["train", "--algo", "matching", *TINY_CLI, "--inner-steps", "2"]) == 2
    assert "matching does not take --inner-steps" in capsys.readouterr().err


def test_plot_attention_draws_one_row_per_chosen_query():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mlscratch.course.ch06_metric_learning import plot_attention

    batch = tasks()
    figure = plot_attention(tiny(), *one_task(batch), batch.query_y[0], per_class=1)
    heat = [ax for ax in figure.axes if ax.images and ax.images[0].get_array().shape == (N_WAY, N_WAY * K_SHOT)]
    assert len(heat) == 1  # one row per chosen query, one column per support image
    plt.close(figure)
