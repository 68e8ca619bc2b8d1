"""The trainer: exact resume, NaN detection, checkpoints, and that it serves any MetaLearner."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mlscratch.algorithms import build
from mlscratch.algorithms.base import MetaLearner
from mlscratch.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from mlscratch.data.classes import ClassImages
from mlscratch.errors import ConfigError, DataError, MlscratchError
from mlscratch.tasks import TaskSampler
from mlscratch.training import History, TrainingDiverged, fit

torch.set_num_threads(1)  # tiny tensors: extra threads only add overhead (and stall on a busy machine)


def classes(n=12, per_class=5, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ClassImages.from_tensors(torch.rand(n, per_class, 1, size, size, generator=g))


def sampler(seed=0):
    return TaskSampler(classes(), n_way=3, k_shot=1, k_query=2, batch_size=2, seed=seed)


def maml(seed=0, **kwargs):
    torch.manual_seed(seed)
    return build("maml", n_way=3, image_size=16, width=4, inner_lr=0.3, **kwargs)


def params(learner):
    return {name: p.detach().clone() for name, p in learner.state_dict().items()}


def run(tmp_path, iterations, learner_seed=0, **kwargs):
    learner = maml(learner_seed)
    history = fit(
        learner,
        sampler(),
        iterations,
        val_sampler=sampler(seed=5),
        val_every=2,
        val_tasks=4,
        checkpoint_every=2,
        progress=False,
        seed=3,
        **kwargs,
    )
    return learner, history


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
    straight, full = run(tmp_path, 6, checkpoint=tmp_path / "a.pt")
    _, part = run(tmp_path, 3, checkpoint=tmp_path / "b.pt")
    assert read_checkpoint(tmp_path / "b.pt")["iteration"] == 3
    # a fresh process would rebuild from scratch: different init, everything comes from the checkpoint
    resumed, history = run(tmp_path, 6, learner_seed=99, checkpoint=tmp_path / "b.pt")
    for name, value in params(straight).items():
        assert torch.equal(value, params(resumed)[name]), name
    for field in ("iteration", "loss", "accuracy"):
        assert getattr(history, field) == getattr(full, field), field
    assert full.val_iteration == [2, 4, 6] and history.val_iteration == [2, 3, 4, 6]  # 3: end of the first part
    assert [history.val_accuracy[i] for i in (0, 2, 3)] == full.val_accuracy
    assert all(b >= a for a, b in zip(history.seconds[:-1], history.seconds[1:], strict=True))


def test_resume_of_a_finished_run_does_nothing_and_resume_false_starts_over(tmp_path):
    learner, first = run(tmp_path, 2, checkpoint=tmp_path / "c.pt")
    again, second = run(tmp_path, 2, learner_seed=7, checkpoint=tmp_path / "c.pt")
    assert second.loss == first.loss and torch.equal(
        params(again)["backbone.head.weight"], params(learner)["backbone.head.weight"]
    )
    _, fresh = run(tmp_path, 1, learner_seed=7, checkpoint=tmp_path / "c.pt", resume=False)
    assert fresh.iteration == [1] and read_checkpoint(tmp_path / "c.pt")["iteration"] == 1


def test_resume_refuses_a_checkpoint_of_another_model(tmp_path):
    run(tmp_path, 1, checkpoint=tmp_path / "d.pt")
    other = build("maml", n_way=3, image_size=16, width=4, inner_lr=0.1)
    with pytest.raises(ConfigError, match="different model"):
        fit(other, sampler(), 2, checkpoint=tmp_path / "d.pt", progress=False)


def test_training_lowers_the_loss_on_a_learnable_problem():
    # 3-way tasks where class c is a constant image of brightness c: easy to learn
    images = torch.linspace(0, 1, 6)[:, None, None, None, None].expand(6, 5, 1, 16, 16).clone()
    images += 0.05 * torch.rand_like(images)
    tasks = TaskSampler(ClassImages.from_tensors(images), 3, 1, 2, 2, seed=0)
    history = fit(maml(), tasks, 20, outer_lr=3e-3, progress=False)
    assert sum(history.loss[-5:]) / 5 < sum(history.loss[:5]) / 5


class Prototypes(MetaLearner):
    """A metric learner (no inner loop), to show the trainer is not MAML-specific; can be made to blow up."""

    name = "prototypes-test"

    def __init__(self, nan_at: int | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(256, 8))
        self.calls = 0

    def score_task(self, support_x, support_y, query_x):
        n = int(support_y.max()) + 1
        s, q = self.embed(support_x), self.embed(query_x)
        prototypes = torch.zeros(n, 8).index_add(0, support_y, s) / (support_y == 0).sum()
        return -(torch.cdist(q, prototypes) ** 2)

    def meta_loss(self, batch):
        self.calls += 1
        loss, metrics = super().meta_loss(batch)
        if self.calls == self.nan_at:
            loss = loss * float("nan")
        return loss, metrics


def test_any_meta_learner_trains_and_nan_stops_with_the_iteration(tmp_path):
    history = fit(Prototypes(), sampler(), 3, progress=False, clip_grad=1.0)
    assert history.iteration == [1, 2, 3] and all(math.isfinite(v) for v in history.loss)
    with pytest.raises(TrainingDiverged, match="iteration 4") as error:
        fit(Prototypes(nan_at=4), sampler(), 6, progress=False)
    assert isinstance(error.value, MlscratchError)


def test_checkpoint_round_trip_gives_the_same_predictions(tmp_path):
    learner, _ = run(tmp_path, 2, checkpoint=tmp_path / "e.pt")
    loaded = load_checkpoint(tmp_path / "e.pt")
    assert not loaded.training and loaded.hparams == learner.hparams
    batch = sampler(seed=9).sample()
    torch.testing.assert_close(loaded.predict(*batch[:3]), learner.predict(*batch[:3]), rtol=0, atol=0)
    assert loaded.checkpoint_info["iteration"] == 2
    assert History.from_dict(loaded.checkpoint_info["history"]).iteration == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.pt"]  # no temporary files left behind


def test_checkpoint_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="unreadable"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(DataError, match="not an mlscratch checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    learner = maml()
    save_checkpoint(tmp_path / "f.pt", learner)
    before = (tmp_path / "f.pt").read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "f.pt", learner)
    assert (tmp_path / "f.pt").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.pt"]


def test_bad_arguments():
    with pytest.raises(ConfigError):
        fit(maml(), sampler(), -1, progress=False)
    with pytest.raises(ConfigError):
        fit(maml(), sampler(), 2, val_every=0, progress=False)
    with pytest.raises(ConfigError, match="CUDA is not available"):
        if not torch.cuda.is_available():
            fit(maml(), sampler(), 1, device="cuda", progress=False)
        else:
            raise ConfigError("CUDA is not available (skipped: CUDA present)")


def test_prototypes_helper_is_a_sane_metric_learner():
    learner = Prototypes()
    batch = sampler().sample()
    logits = learner.predict(*batch[:3])
    assert logits.shape == (2, 6, 3)
    assert F.cross_entropy(logits.flatten(0, 1), batch.query_y.flatten()).isfinite()
