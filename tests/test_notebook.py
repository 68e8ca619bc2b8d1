"""Helpers shared by the chapters: metrics reports, data notices, timing and memory measurements."""

from __future__ import annotations

import torch

from mlscratch.course.notebook import describe_splits, format_metrics, is_synthetic, report
from mlscratch.data import ClassImages
from mlscratch.measure import Stopwatch, peak_memory, torch_threads


def test_report_prints_a_readable_table_outside_a_notebook(capsys):
    report(test_accuracy=91.2345, iterations=240, device="cpu", value=torch.tensor(0.5))
    out = capsys.readouterr().out
    assert "test_accuracy  91.23" in out and "iterations     240" in out and "value          0.5" in out


def test_format_metrics_aligns_names():
    assert format_metrics({"a": 1.0, "long_name": "x"}).splitlines() == ["a          1", "long_name  x"]


def test_is_synthetic_reads_the_dataset_recorded_in_meta():
    images = torch.rand(3, 4, 1, 8, 8)
    real = ClassImages.from_tensors(images)
    fake = ClassImages.from_tensors(images)
    fake.meta["dataset"] = "synthetic"
    assert not is_synthetic({"train": real}) and is_synthetic({"train": real, "test": fake}) and is_synthetic(fake)


def test_describe_splits_counts_classes_rotations_and_images():
    split = ClassImages.from_tensors(torch.rand(3, 4, 1, 8, 8), rotate=True)
    assert describe_splits({"train": split}) == "train     3 classes (12 with rotations),     12 images of 1x8x8"


def test_peak_memory_sees_the_second_order_graph():
    """Keeping the inner gradient's graph (MAML) must cost more tensor memory than dropping it (FOMAML)."""
    weight = torch.randn(256, 256, requires_grad=True)
    x = torch.randn(512, 256)

    def meta_step(second_order: bool) -> None:
        inner = torch.autograd.grad((x @ weight).tanh().sum(), weight, create_graph=second_order)[0]
        (x @ (weight - 0.1 * inner)).tanh().pow(2).sum().backward()

    second = peak_memory(lambda: meta_step(True))
    first = peak_memory(lambda: meta_step(False))
    activation = 512 * 256 * 4
    assert first >= activation and second > first + activation


def test_stopwatch_median_and_thread_context():
    watch = Stopwatch()
    for _ in range(3):
        with watch:
            sum(range(1000))
    assert len(watch.laps) == 3 and 0 <= watch.median < 1
    watch.laps = [1.0, 3.0]
    assert watch.median == 2.0  # a true median: of two laps, their mean (not the slower one)
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_task_latency_times_one_task_at_a_time_after_a_warm_up():
    from mlscratch.measure import task_latency

    calls = []

    class Probe(torch.nn.Module):
        def predict(self, support_x, support_y, query_x):
            calls.append((support_x.shape, torch.get_num_threads()))
            return torch.zeros(len(query_x), 3)

    batch = (torch.zeros(4, 3, 1, 8, 8), torch.zeros(4, 3), torch.zeros(4, 6, 1, 8, 8))
    assert task_latency(Probe(), batch, tasks=3) >= 0
    assert len(calls) == 4 and all(shape == (3, 1, 8, 8) and threads == 1 for shape, threads in calls)
