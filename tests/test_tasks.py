"""TaskSampler: shapes, labels, determinism, disjointness, rotation, padding, resume, bad settings."""

from __future__ import annotations

import pytest
import torch

from mlscratch.data import ClassImages
from mlscratch.errors import ConfigError
from mlscratch.tasks import TaskBatch, TaskSampler


def random_classes(n_classes: int = 12, per_class: int = 8, size: int = 6, rotate: bool = False) -> ClassImages:
    """Random images: every image (and each of its rotations) is unique, so we can find where it came from."""
    images = torch.rand(n_classes, per_class, 1, size, size, generator=torch.Generator().manual_seed(0))
    return ClassImages(images, torch.full((n_classes,), per_class), [f"c{i}" for i in range(n_classes)], rotate)


def identify(x: torch.Tensor, classes: ClassImages) -> torch.Tensor:
    """For images x [..., C, H, W]: rows (class, index, quarter turns) of the image each one is."""
    bank = classes.images.flatten(0, 1)  # [n * per, C, H, W]
    rotated = torch.stack([torch.rot90(bank, k, dims=(-2, -1)) for k in range(4)])  # [4, n*per, C, H, W]
    flat_x, flat_bank = x.flatten(-3), rotated.flatten(-3).flatten(0, 1)
    match = (flat_x.reshape(-1, 1, flat_x.shape[-1]) == flat_bank[None]).all(-1)  # [images, 4 * n * per]
    assert bool((match.sum(1) == 1).all()), "every sampled image must be exactly one stored image"
    hit = match.float().argmax(1)
    turns, row = hit // bank.shape[0], hit % bank.shape[0]
    per = classes.images.shape[1]
    return torch.stack([row // per, row % per, turns], -1).reshape(*x.shape[:-3], 3)


def test_shapes_and_labels():
    batch = TaskSampler(random_classes(), n_way=5, k_shot=2, k_query=3, batch_size=4).sample()
    assert isinstance(batch, TaskBatch)
    assert batch.support_x.shape == (4, 10, 1, 6, 6) and batch.query_x.shape == (4, 15, 1, 6, 6)
    assert batch.support_y.tolist() == [[0, 0, 1, 1, 2, 2, 3, 3, 4, 4]] * 4
    assert batch.query_y.tolist() == [[0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]] * 4
    assert batch.n_way == 5 and batch.task(2).support_x.shape == (1, 10, 1, 6, 6)


def test_batch_size_override_larger_than_default():
    batch = TaskSampler(random_classes(), 3, 1, 2, batch_size=2).sample(batch_size=5)
    assert batch.support_x.shape[0] == batch.support_y.shape[0] == batch.query_y.shape[0] == 5


def test_same_seed_same_tasks_other_seed_other_tasks():
    classes = random_classes()
    a = TaskSampler(classes, 5, 1, 3, 8, seed=3).sample()
    b = TaskSampler(classes, 5, 1, 3, 8, seed=3).sample()
    c = TaskSampler(classes, 5, 1, 3, 8, seed=4).sample()
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a.support_x, c.support_x)


def test_support_and_query_disjoint_and_classes_consistent():
    classes = random_classes()
    batch = TaskSampler(classes, n_way=5, k_shot=2, k_query=4, batch_size=16).sample()
    support, query = identify(batch.support_x, classes), identify(batch.query_x, classes)
    for t in range(16):
        s_class = support[t, :, 0].reshape(5, 2)
        q_class = query[t, :, 0].reshape(5, 4)
        # each label is one class, the N classes are distinct, and label order matches in support and query
        assert (s_class == s_class[:, :1]).all() and (q_class == s_class[:, :1]).all()
        assert len(set(s_class[:, 0].tolist())) == 5
        drawn = {tuple(r) for r in support[t, :, :2].tolist()} | {tuple(r) for r in query[t, :, :2].tolist()}
        assert len(drawn) == 5 * (2 + 4)  # no image used twice in a task
    assert (support[..., 2] == 0).all()  # rotate=False: no rotation


def test_rotation_one_multiple_of_90_per_class_and_task():
    classes = random_classes(rotate=True)
    batch = TaskSampler(classes, n_way=4, k_shot=1, k_query=3, batch_size=32).sample()
    support, query = identify(batch.support_x, classes), identify(batch.query_x, classes)
    turns = torch.cat([support[..., 2].reshape(32, 4, 1), query[..., 2].reshape(32, 4, 3)], dim=2)
    assert (turns == turns[:, :, :1]).all()  # the whole class of a task turns together
    assert set(turns.flatten().tolist()) == {0, 1, 2, 3}


def test_rotate_argument_overrides_the_split():
    classes = random_classes(rotate=True)
    batch = TaskSampler(classes, 4, 1, 3, 16, rotate=False).sample()
    assert (identify(batch.support_x, classes)[..., 2] == 0).all()


def test_padding_is_never_drawn_for_ragged_classes():
    per_class = [torch.rand(n, 1, 4, 4) + 0.1 for n in (3, 8, 5, 3, 6)]  # real images are > 0.1, padding 0
    classes = ClassImages.from_tensors(per_class)
    batch = TaskSampler(classes, n_way=5, k_shot=1, k_query=2, batch_size=200).sample()
    assert float(batch.support_x.amin(dim=(-3, -2, -1)).min()) > 0.1
    assert float(batch.query_x.amin(dim=(-3, -2, -1)).min()) > 0.1


def test_state_dict_resumes_the_exact_stream():
    classes = random_classes(rotate=True)
    sampler = TaskSampler(classes, 5, 1, 2, 4, seed=7)
    sampler.sample()
    state = sampler.state_dict()
    expected = [sampler.sample() for _ in range(3)]
    resumed = TaskSampler(classes, 5, 1, 2, 4, seed=0)
    resumed.load_state_dict(state)
    for want, got in zip(expected, (resumed.sample() for _ in range(3)), strict=True):
        assert all(torch.equal(x, y) for x, y in zip(want, got, strict=True))


def test_a_stream_saved_on_another_device_is_reseeded_from_its_state_with_a_warning():
    """A CUDA generator's state cannot drive a CPU generator (nor the reverse): a CPU run continued on a GPU
    must still resume, deterministically for the checkpoint, and say that its tasks now differ."""
    classes = random_classes()
    saved = TaskSampler(classes, 5, 1, 2, 4, seed=7).state_dict()
    assert saved["device"] == "cpu"
    elsewhere = {**saved, "device": "cuda"}  # as a GPU run would have saved it
    streams = []
    for _ in range(2):
        resumed = TaskSampler(classes, 5, 1, 2, 4, seed=0)
        with pytest.warns(UserWarning, match="saved on cuda and continues on cpu: re-seeded"):
            resumed.load_state_dict(elsewhere)
        streams.append(resumed.sample())
    same_device = TaskSampler(classes, 5, 1, 2, 4, seed=0)
    same_device.load_state_dict(saved)
    assert all(torch.equal(x, y) for x, y in zip(*streams, strict=True))  # the same checkpoint, the same tasks
    assert not torch.equal(streams[0].support_x, same_device.sample().support_x)
    legacy = {"seed": 7, "rng": saved["rng"]}  # checkpoints written before the device was recorded: CPU
    TaskSampler(classes, 5, 1, 2, 4).load_state_dict(legacy)


def test_iteration_yields_batches():
    sampler = TaskSampler(random_classes(), 2, 1, 1, 3)
    first, second = next(iter(sampler)), next(iter(sampler))
    assert first.support_x.shape == (3, 2, 1, 6, 6) and not torch.equal(first.support_x, second.support_x)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_way": 13}, r"n_way=13 but this split has only 12 classes; use n_way <= 12"),
        ({"k_shot": 5, "k_query": 4}, r"k_shot \+ k_query = 9 but some classes have only 8 images"),
        ({"n_way": 0}, "n_way must be a positive integer"),
        ({"k_shot": -1}, "k_shot must be a positive integer"),
        ({"k_query": 0}, "k_query must be a positive integer"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"n_way": 2.5}, "n_way must be a positive integer"),
    ],
)
def test_impossible_settings_name_problem_and_fix(kwargs, message):
    settings = {"n_way": 5, "k_shot": 1, "k_query": 1, "batch_size": 2, **kwargs}
    with pytest.raises(ConfigError, match=message):
        TaskSampler(random_classes(), **settings)


def test_rotation_needs_square_images():
    classes = ClassImages(torch.rand(4, 3, 1, 4, 6), torch.full((4,), 3), list("abcd"), rotate=True)
    with pytest.raises(ConfigError, match="square"):
        TaskSampler(classes, 2, 1, 1, 2)
