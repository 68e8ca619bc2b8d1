"""Meta Dropout: consistent per-task masks and the learned noise generator (Lee et al. 2020)."""

from __future__ import annotations

import pytest
import torch

from mlscratch.algorithms import MAML, build
from mlscratch.errors import ConfigError
from mlscratch.inner_loop import split_parameters
from mlscratch.models import meta_dropout
from mlscratch.models.meta_dropout import ConsistentDropout, NoisyConv2d, NoisyLinear
from mlscratch.tasks import TaskBatch

N_WAY, SHOT, QUERY = 3, 2, 2


def tiny_maml(mode: str, execution: str = "loop", **options) -> MAML:
    torch.manual_seed(0)
    return MAML(
        n_way=N_WAY,
        image_size=16,
        width=8,
        inner_steps=2,
        test_inner_steps=2,
        execution=execution,
        meta_dropout=mode,
        meta_dropout_options=options or None,
    )


def random_batch(n_tasks: int, seed: int = 1) -> TaskBatch:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(N_WAY)
    return TaskBatch(
        torch.rand(n_tasks, N_WAY * SHOT, 1, 16, 16, generator=g),
        labels.repeat_interleave(SHOT).repeat(n_tasks, 1),
        torch.rand(n_tasks, N_WAY * QUERY, 1, 16, 16, generator=g),
        labels.repeat_interleave(QUERY).repeat(n_tasks, 1),
    )


def record_masks(model: MAML) -> list[list[torch.Tensor]]:
    """Per block, the mask each forward pass used (loop path only: plain tensors)."""
    seen: list[list[torch.Tensor]] = [[] for _ in model.backbone.blocks]
    for i, block in enumerate(model.backbone.blocks):
        block.perturb.register_forward_hook(lambda m, args, out, i=i: seen[i].append(m.mask.clone()))
    return seen


# --- consistent-mask dropout ------------------------------------------------------------------------


def test_mask_is_fixed_through_inner_steps_and_query_and_fresh_for_the_next_task() -> None:
    model = tiny_maml("consistent")
    seen = record_masks(model)
    model.meta_loss(random_batch(2))
    for masks in seen:  # per task: 2 support forwards (one per inner step) + 1 query forward
        assert len(masks) == 6
        task_a, task_b = masks[:3], masks[3:]
        assert all(torch.equal(task_a[0], m) for m in task_a)
        assert all(torch.equal(task_b[0], m) for m in task_b)
        assert not torch.equal(task_a[0], task_b[0])
    assert all(block.perturb.mask is None for block in model.backbone.blocks)  # cleared after each task


def test_mask_query_false_leaves_queries_unmasked() -> None:
    model = tiny_maml("consistent", mask_query=False)
    batch = random_batch(1)
    params, fixed = split_parameters(model.backbone)
    with meta_dropout.task(model.backbone):
        query = model.logits(params, fixed, batch.query_x[0])
    model.eval()
    assert torch.equal(query, model.logits(params, fixed, batch.query_x[0]))  # same as no dropout at all


@pytest.mark.parametrize("scale", [True, False])
def test_drop_rates_per_layer_are_respected(scale: bool) -> None:
    torch.manual_seed(0)
    rates = meta_dropout.DEFAULT_RATES
    layers = [ConsistentDropout(rate, scale=scale) for rate in rates]
    h = torch.ones(5, 32, 8, 8)
    for layer, rate in zip(layers, rates, strict=True):
        dropped, kept_values = 0, set()
        for _ in range(50):  # 50 tasks x 2048 units
            with meta_dropout.task(layer):
                out = layer(h)
                assert torch.equal(out, layer(h))
            assert torch.equal(out, out[:1].expand_as(out))  # one mask shared by the 5 examples of the task
            dropped += (out[0] == 0).sum().item()
            kept_values |= set(out[out != 0].unique().tolist())
        n = 50 * 32 * 8 * 8
        std = (rate * (1 - rate) / n) ** 0.5
        assert abs(dropped / n - rate) < 5 * std, (rate, dropped / n)
        assert len(kept_values) == 1 and kept_values.pop() == pytest.approx(1 / (1 - rate) if scale else 1.0)


def test_consistent_dropout_is_off_in_eval_mode_and_evaluation_is_deterministic() -> None:
    model = tiny_maml("consistent")
    plain = tiny_maml("none")
    plain.load_state_dict(model.state_dict())
    batch = random_batch(3)
    model.eval()
    plain.eval()
    first = model.predict(*batch[:3])
    assert torch.equal(first, model.predict(*batch[:3]))
    torch.testing.assert_close(first, plain.predict(*batch[:3]))
    model.train()
    torch.testing.assert_close(first, model.predict(*batch[:3]))  # predict is always meta-test: no masks
    with torch.no_grad():
        training_scores = model.run_tasks(*batch[:3])
    assert not torch.allclose(first, training_scores)  # training mode: masks on


def test_task_scope_restores_state_after_an_exception() -> None:
    model = tiny_maml("consistent")
    x = torch.rand(4, 1, 16, 16)
    with pytest.raises(RuntimeError, match="boom"):
        with meta_dropout.task(model.backbone), meta_dropout.support_pass(model.backbone):
            model.backbone(x)
            assert all(block.perturb.mask is not None for block in model.backbone.blocks)
            raise RuntimeError("boom")
    for block in model.backbone.blocks:
        assert block.perturb.mask is None and block.perturb.on_support is False


# --- learned noise (Lee et al. 2020) -----------------------------------------------------------------


def test_learned_noise_generator_is_outer_loop_only_and_gets_gradient_only_from_the_meta_loss() -> None:
    model = tiny_maml("learned")
    noise = meta_dropout.noise_parameters(model)
    assert len(noise) == 10  # a 3x3 conv per block (weight, bias) and the 1-output head
    adapted, fixed = split_parameters(model.backbone)
    assert not any("noise" in name for name in adapted) and all(f"backbone.{n}" in noise for n in fixed)
    batch = random_batch(2)
    with meta_dropout.task(model.backbone):  # the inner loop alone: noise weights untouched, no gradient
        model.adapt(batch.support_x[0], batch.support_y[0], steps=2)
    assert all(p.grad is None for p in noise.values())
    loss, _ = model.meta_loss(batch)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in noise.values())


def test_learned_noise_is_sampled_on_the_support_set_only() -> None:
    model = tiny_maml("learned")
    x = torch.rand(4, 1, 16, 16)
    query = model.backbone(x)
    assert torch.equal(query, model.backbone(x))  # deterministic outside the support pass
    with meta_dropout.support_pass(model.backbone):
        support_1, support_2 = model.backbone(x), model.backbone(x)
    assert not torch.allclose(support_1, support_2)
    assert isinstance(model.backbone.blocks[0].conv, NoisyConv2d) and isinstance(model.backbone.head, NoisyLinear)


def test_learned_evaluation_is_reproducible_and_deterministic_without_samples() -> None:
    batch = random_batch(2)
    model = tiny_maml("learned", eval_samples=30).eval()
    torch.manual_seed(5)
    first = model.predict(*batch[:3])
    torch.manual_seed(5)
    assert torch.equal(first, model.predict(*batch[:3]))
    assert not torch.equal(first, model.predict(*batch[:3]))  # other noise draws
    quiet = tiny_maml("learned", eval_samples=0).eval()
    assert torch.equal(quiet.predict(*batch[:3]), quiet.predict(*batch[:3]))


def test_paper_eval_averages_the_support_loss_over_noise_samples() -> None:
    model = tiny_maml("learned", eval_samples=30).eval()
    x, y = torch.rand(6, 1, 16, 16), torch.arange(3).repeat(2)
    losses = []
    for _ in range(20):
        loss = meta_dropout.support_loss(
            model.backbone, lambda: torch.nn.functional.cross_entropy(model.backbone(x), y)
        )
        losses.append(loss.item())
    model.train()
    single = [
        meta_dropout.support_loss(
            model.backbone, lambda: torch.nn.functional.cross_entropy(model.backbone(x), y)
        ).item()
        for _ in range(20)
    ]
    assert torch.tensor(losses).std() < 0.5 * torch.tensor(single).std()  # 30-sample mean: less noisy


# --- both variants: vmap and the loop over tasks -----------------------------------------------------


@pytest.mark.parametrize("mode", ["consistent", "learned"])
def test_vmap_and_loop_paths_agree(mode: str) -> None:
    """Same seed, one task: the same masks / noise draws, the same meta-loss and meta-gradient.

    Gradients are compared first-order: in torch 2.14 the second-order gradient of F.batch_norm under
    vmap differs from the loop's even without meta dropout (see the meta-dropout report); the loss matches.
    """
    batch = random_batch(1)
    results = {}
    for execution in ("vmap", "loop"):
        model = tiny_maml(mode, execution)
        model.first_order = True
        torch.manual_seed(0)  # (seed 3 hits a near-tie in a max-pool whose argmax flips at 1e-7 between paths)
        loss, _ = model.meta_loss(batch)
        loss.backward()
        # first order: the head's noise std only acts through the (detached) inner gradient -> grad None
        results[execution] = (loss.detach(), [p.grad for p in model.parameters()])
    torch.testing.assert_close(results["vmap"][0], results["loop"][0])
    for g_vmap, g_loop in zip(results["vmap"][1], results["loop"][1], strict=True):
        assert (g_vmap is None) == (g_loop is None)
        if g_vmap is not None:
            torch.testing.assert_close(g_vmap, g_loop, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("execution", ["vmap", "loop"])
@pytest.mark.parametrize("mode", ["consistent", "learned"])
def test_each_task_of_a_batch_gets_its_own_noise(mode: str, execution: str) -> None:
    one = random_batch(1)
    same_task_4_times = TaskBatch(*(t.expand(4, *t.shape[1:]) for t in one))
    model = tiny_maml(mode, execution)
    logits = model.run_tasks(*same_task_4_times[:3])
    assert all(not torch.allclose(logits[0], logits[i]) for i in (1, 2, 3))
    model.eval()
    model.backbone.meta_dropout = meta_dropout.Settings(mode, eval_samples=0)
    logits = model.run_tasks(*same_task_4_times[:3])
    assert all(torch.allclose(logits[0], logits[i], atol=1e-5) for i in (1, 2, 3))


# --- configuration -----------------------------------------------------------------------------------


def test_hparams_rebuild_the_same_model() -> None:
    model = tiny_maml("consistent", rates=[0.1, 0.2, 0.3, 0.0], scale=False)
    rebuilt = build("maml", **model.hparams)
    rebuilt.load_state_dict(model.state_dict())
    assert [b.perturb.rate for b in rebuilt.backbone.blocks] == [0.1, 0.2, 0.3, 0.0]
    learned = tiny_maml("learned")
    clone = build("maml", **learned.hparams)
    clone.load_state_dict(learned.state_dict())  # same parameter names, noise generator included


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"rates": [0.1, 0.2]}, "one rate per block"),
        ({"rates": [0.1, 0.2, 1.0, 0.1]}, r"\[0, 1\)"),
        ({"eval_samples": -1}, "eval_samples"),
    ],
)
def test_bad_settings_raise_config_errors(options: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        tiny_maml("consistent", **options)
    with pytest.raises(ConfigError, match="unknown meta_dropout mode"):
        tiny_maml("gaussian")


# --- the "gate" ablation: the learned variant without its noise ---------------------------------------


def test_gate_is_the_learned_generator_without_noise() -> None:
    """The learned generator's convs (not the head's noise scale), no sampling anywhere, and they still learn."""
    gate, learned = tiny_maml("gate"), tiny_maml("learned")
    learned_convs = {n for n in meta_dropout.noise_parameters(learned) if not n.startswith("backbone.head.")}
    assert meta_dropout.noise_parameters(gate).keys() == learned_convs and len(learned_convs) == 8
    x = torch.rand(4, 1, 16, 16)
    with meta_dropout.support_pass(gate.backbone):
        support = gate.backbone(x), gate.backbone(x)
    torch.testing.assert_close(support[0], support[1], rtol=0, atol=0)  # no noise on the support set
    torch.testing.assert_close(support[0], gate.backbone(x), rtol=0, atol=0)  # support == query pass
    loss, _ = gate.meta_loss(random_batch(2))
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in meta_dropout.noise_parameters(gate).values())
    mu_block1 = gate.backbone.blocks[0].conv.noise  # the gate is softplus(mu): with mu -> -inf a feature is off
    with torch.no_grad():
        mu_block1.bias.fill_(-30.0)
        mu_block1.weight.zero_()
    assert gate.backbone.blocks[0].conv(x).abs().max() < 1e-6


def test_chapter_comparison_pairs_each_variant_on_the_same_tasks(capsys: pytest.CaptureFixture) -> None:
    from mlscratch.course.ch04_meta_dropout import compare_trained, verdict

    maml = torch.tensor([90.0, 80.0, 100.0, 70.0])
    accuracies = {
        "MAML": maml,
        "Meta Dropout (learned)": maml + torch.tensor([2.0, 3.0, 2.0, 3.0]),  # better on every task
        "consistent dropout": maml,
        "learned gate, no noise": maml + torch.tensor([2.0, 3.0, 2.0, 3.0]),
    }
    summary = compare_trained(accuracies, dict.fromkeys(accuracies, 2600))
    assert summary["zoo_learned_minus_maml"][0] == 2.5 and summary["zoo_learned_minus_maml"][1] > 0
    assert summary["zoo_consistent_minus_maml"] == [0.0, 0.0]
    assert summary["zoo_learned_minus_gate"] == [0.0, 0.0]  # the noise adds nothing here
    assert summary["zoo_learned_minus_consistent"][0] == 2.5
    assert summary["zoo_gate_iterations"] == 2600 and summary["zoo_maml_accuracy"] == 85.0
    printed = capsys.readouterr().out
    assert "better" in printed and "what noise adds" in printed
    assert verdict((-1.0, 0.5)) == "worse" and verdict((0.4, 0.5)) == "no detectable difference"


def test_chapter_observations_read_the_noise_effect_from_its_sign() -> None:
    from mlscratch.course.ch04_meta_dropout import trained_observations

    maml = torch.tensor([90.0, 80.0, 100.0, 70.0])
    gate = maml + torch.tensor([1.0, 2.0, 1.0, 2.0])
    iterations = dict.fromkeys(("MAML", "Meta Dropout (learned)", "learned gate, no noise"), 2600)
    for noise, reading in ((gate, "adds nothing detectable"), (gate + 2, "helps"), (gate - 2, "costs accuracy")):
        accuracies = {"MAML": maml, "Meta Dropout (learned)": noise, "learned gate, no noise": gate}
        text = trained_observations(accuracies, iterations).data
        assert reading in text and "maml-gate-5w1s (2,600 iterations) 86.50" in text
        assert "better on 4 tasks" in text  # the gate beats MAML on every task
