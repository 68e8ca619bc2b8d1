"""Honest measurements: wall-clock laps (`Stopwatch`), peak tensor memory (`peak_memory`), a fixed thread count.

watch = Stopwatch()
with watch: learner.predict(*task)   # one lap; watch.median -> seconds
peak_memory(lambda: learner.outer_step(batch, optimizer))   # bytes above what was live before
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with n CPU threads. Float sums are split differently across threads, so a
    result meant to be bit-identical on every machine (a regression check) should use n=1."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class Stopwatch:
    """Wall-clock laps that wait for the GPU before reading the clock.

    with watch: ...   # one lap
    watch.median      # seconds
    """

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    laps: list[float] = field(default_factory=list)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __enter__(self) -> Stopwatch:
        self._sync()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sync()
        self.laps.append(time.perf_counter() - self._start)

    @property
    def median(self) -> float:
        """The median lap (the mean of the middle two for an even count); nan before the first lap."""
        return statistics.median(self.laps) if self.laps else float("nan")


@contextmanager
def _quiet_fd2() -> Iterator[None]:
    """Silence the C++ profiler's log lines and warnings, which bypass Python's sys.stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_memory(work: Callable[[], object], device: torch.device | str = "cpu") -> int:
    """Peak bytes of tensor memory that `work()` allocates above what was live when it started.

    On CUDA: `torch.cuda.max_memory_allocated` minus the allocation before the call.
    On CPU: the running sum of PyTorch's allocation and free events recorded by
    `torch.profiler` (profile_memory=True), i.e. the same quantity for CPU tensors:
    activations, the autograd graph, gradients and temporaries. Neither counts memory
    that is not a tensor (Python objects, the allocator's cache). Run `work` once more
    without measuring to time it: the profiler slows it down.
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        work()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before

    from torch.profiler import ProfilerActivity, profile

    # fd 2 silenced throughout: the C++ profiler logs its start and stop, and warns about every tensor freed that
    # was allocated before it started ("Memory block of unknown size"), none of which a reader can act on.
    # Python's own warnings and exceptions are unaffected (in a notebook sys.stderr is not fd 2).
    with _quiet_fd2(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        work()
    events = [
        e for e in profiler.profiler.kineto_results.events() if e.name() == "[memory]" and e.device_type().name == "CPU"
    ]
    live = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        live += event.nbytes()
        peak = max(peak, live)
    return peak


def cpu_name() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), for records of where a measurement ran."""
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def task_latency(learner: torch.nn.Module, batch: object, tasks: int | None = None, threads: int = 1) -> float:
    """Median milliseconds for `learner.predict` on one task, the one way every chapter and the README time it.

    batch: a TaskBatch; its first `tasks` tasks (default: all) run one at a time, after one untimed warm-up task,
    in eval mode, without gradients, on `threads` torch threads (1 by default: the same on every machine's
    core count, and what a shared machine gives). Compare learners of the same width: time grows with it.
    """
    support_x, support_y, query_x = batch[:3]
    n = len(support_x) if tasks is None else min(tasks, len(support_x))
    device = support_x.device
    watch = Stopwatch(device)
    learner.eval()
    with torch_threads(threads), torch.no_grad():
        learner.predict(support_x[0], support_y[0], query_x[0])  # warm-up: allocations, lazy initialisation
        for i in range(n):
            with watch:
                learner.predict(support_x[i], support_y[i], query_x[i])
    return 1000 * watch.median
