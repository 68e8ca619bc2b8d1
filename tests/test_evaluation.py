"""The evaluator: determinism, the confidence interval, per-step accuracies, state left untouched."""

import math

import pytest
import torch

from mlscratch.algorithms import build
from mlscratch.algorithms.base import MetaLearner
from mlscratch.data.classes import ClassImages
from mlscratch.errors import ConfigError
from mlscratch.evaluation import evaluate, mean_ci95, quantile95
from mlscratch.tasks import TaskSampler

torch.set_num_threads(1)  # tiny tensors: extra threads only add overhead (and stall on a busy machine)


def sampler(seed=0, batch_size=4):
    g = torch.Generator().manual_seed(0)
    images = ClassImages.from_tensors(torch.rand(10, 5, 1, 16, 16, generator=g))
    return TaskSampler(images, n_way=3, k_shot=1, k_query=3, batch_size=batch_size, seed=seed)


def maml():
    torch.manual_seed(0)
    return build("maml", n_way=3, image_size=16, width=4, test_inner_steps=2)


class Constant(MetaLearner):
    """Always predicts class 0: accuracy is exactly 1/3 on every task, and it has no inner steps."""

    name = "constant-test"

    def score_task(self, support_x, support_y, query_x):
        logits = torch.zeros(query_x.shape[0], 3)
        logits[..., 0] = 1
        return logits


def test_confidence_interval_formula():
    values = torch.tensor([50.0, 60.0, 70.0, 80.0])
    mean, ci = mean_ci95(values)  # 4 values: Student's t with 3 degrees of freedom, not 1.96
    assert mean == 65.0 and ci == pytest.approx(3.182 * values.std().item() / 2)
    assert mean_ci95(torch.tensor([42.0])) == (42.0, 0.0)
    many = torch.arange(30.0)
    assert mean_ci95(many)[1] == pytest.approx(1.96 * many.std().item() / 30**0.5)


def test_t_quantiles_match_the_t_distribution():
    """The table against Student's t: P(|T| <= q) = 0.95, by numerical integration of its density."""
    for n in (2, 3, 6, 10, 29):
        df, q = n - 1, quantile95(n)
        t = torch.linspace(0, q, 200_001, dtype=torch.float64)
        density = (
            torch.exp(
                torch.lgamma(torch.tensor((df + 1) / 2, dtype=torch.float64))
                - torch.lgamma(torch.tensor(df / 2, dtype=torch.float64))
            )
            / (df * torch.pi) ** 0.5
        )
        pdf = density * (1 + t**2 / df) ** (-(df + 1) / 2)
        assert 2 * torch.trapezoid(pdf, t).item() == pytest.approx(0.95, abs=2e-4)  # fmt: skip


def test_deterministic_and_leaves_sampler_learner_and_rng_untouched():
    learner, tasks = maml(), sampler()
    learner.train()
    tasks.sample()
    state = tasks.state_dict()["rng"].clone()
    torch.manual_seed(123)
    expected_random = torch.rand(3)
    torch.manual_seed(123)
    first = evaluate(learner, tasks, 10)
    assert torch.equal(torch.rand(3), expected_random)  # the caller's random stream is untouched
    assert torch.equal(tasks.state_dict()["rng"], state) and learner.training
    second = evaluate(learner, tasks, 10)
    assert first.task_accuracies == second.task_accuracies
    other = evaluate(learner, tasks, 10, seed=1)
    assert other.task_accuracies != first.task_accuracies


def test_the_first_n_tasks_are_the_same_tasks_for_every_n():
    """A count that is not a multiple of the batch size scores a prefix of the longer run, task by task."""
    learner, tasks = maml(), sampler(batch_size=4)
    longer, shorter = evaluate(learner, tasks, 12), evaluate(learner, tasks, 6)
    assert shorter.task_accuracies == longer.task_accuracies[:6]


def test_result_fields_and_per_step_accuracies():
    result = evaluate(maml(), sampler(batch_size=4), 10)  # 4 + 4 + 2 tasks
    assert result.n_tasks == len(result.task_accuracies) == 10
    assert (result.n_way, result.k_shot, result.k_query) == (3, 1, 3)
    assert len(result.step_accuracies) == 3 and len(result.step_ci95) == 3  # before + 2 steps
    assert result.step_accuracies[-1] == pytest.approx(result.accuracy)
    assert result.before_adaptation == result.step_accuracies[0]
    assert result.accuracy == pytest.approx(sum(result.task_accuracies) / 10)
    assert result.std == pytest.approx(torch.tensor(result.task_accuracies).std().item())
    assert result.seconds_per_task > 0
    assert "± " in str(result) and "before adaptation" in str(result)
    assert set(result.to_dict()) >= {"accuracy", "ci95", "before_adaptation", "task_accuracies"}


def test_predict_path_agrees_with_per_step_path():
    learner, tasks = maml(), sampler()
    with_steps = evaluate(learner, tasks, 8)
    plain = evaluate(learner, tasks, 8, per_step=False)
    assert plain.step_accuracies is None
    assert plain.task_accuracies == pytest.approx(with_steps.task_accuracies)


def test_learner_without_inner_steps():
    result = evaluate(Constant(), sampler(), 5)
    assert result.accuracy == pytest.approx(100 / 3) and result.ci95 == pytest.approx(0, abs=1e-5)
    assert result.step_accuracies is None and result.before_adaptation is None


def test_bad_task_count():
    with pytest.raises(ConfigError):
        evaluate(Constant(), sampler(), 0)
    assert math.isfinite(evaluate(Constant(), sampler(), 1).accuracy)


def test_headline_is_after_test_inner_steps_whatever_the_curve_shows():
    learner, tasks = maml(), sampler()  # test_inner_steps=2
    short = evaluate(learner, tasks, 8, steps=1)
    long = evaluate(learner, tasks, 8, steps=5)
    plain = evaluate(learner, tasks, 8, per_step=False)
    assert len(short.step_accuracies) == 2 and len(long.step_accuracies) == 6
    assert short.task_accuracies == pytest.approx(plain.task_accuracies)
    assert long.task_accuracies == pytest.approx(plain.task_accuracies)
    assert long.step_accuracies[2] == pytest.approx(plain.accuracy)


def test_result_records_how_the_learner_ran_its_tasks():
    assert evaluate(maml(), sampler(), 4).execution.startswith("loop: cpu")  # no outer graph: the loop on a CPU


def test_auto_execution_batches_only_many_small_training_tasks_on_cpu():
    """MetaLearner.resolved_execution's rule (benchmarks/bench_execution.py measures it), with its reasons."""
    learner = maml()  # 3-way, second order, execution="auto"

    def pick(tasks=32, queries=1, grad=True, learner=learner):
        support, query = torch.zeros(tasks, 3, 1, 16, 16), torch.zeros(tasks, 3 * queries, 1, 16, 16)
        with torch.set_grad_enabled(grad):
            return learner.resolved_execution(support, query), learner.execution_reason

    assert pick() == ("vmap", "vmap: cpu, 32 tasks x 6 images, meta-training")
    assert pick(queries=4)[0] == "loop"  # 15 images per task: the loop keeps each task in cache
    assert pick(tasks=8)[0] == "loop"
    assert pick(grad=False) == ("loop", "loop: cpu, 32 tasks x 6 images, no outer graph")  # evaluation
    assert pick(learner=build("fomaml", n_way=3, image_size=16, width=4))[0] == "vmap"  # first order too
    assert learner.resolved_execution() == "loop"  # sizes unknown: the loop on a CPU
    learner.execution = "vmap"
    assert pick(queries=15) == ("vmap", "vmap: execution='vmap' was asked for")
