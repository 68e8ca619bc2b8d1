"""Meta Dropout: perturb a backbone's features while it adapts to a task, so the adapted weights generalise.

A few-shot learner fits 1-5 examples per class in its inner loop; noise on the features of those
examples acts like extra, slightly different training examples. Two variants, installed into a
Conv4-shaped backbone (`blocks[i].conv`, `blocks[i].perturb`, `head`) by `install(backbone, mode)`:

- "consistent" (the seed project's "Meta Dropout"): ordinary Bernoulli dropout on each block's
  normalised pre-activation, but with ONE mask per task and per layer, drawn on first use in the task
  and held fixed through all inner steps (and, by default, the query pass); the next task draws fresh
  masks. Masks have the shape of one example's features [C, H, W] and broadcast over the examples of
  the task. Off in eval mode.
- "learned" (Lee, Nam, Yang & Hwang, "Meta Dropout: Learning to Perturb Latent Features for
  Generalization", ICLR 2020): a noise generator with the backbone's shape (one 3x3 conv per block and
  a 1-output linear layer) that only the outer loop trains. For block l with input h:

      z ~ N(mu_phi(h), 1),   pre-activation = conv_theta(h) * softplus(z)        (then BatchNorm, ReLU, pool)
      logits ~ N(head_theta(f), softplus(w_phi . f + b_phi)^2)                   (additive noise, last layer)

  Noise is sampled only on the support set during the inner loop (in training one draw per inner
  step; in evaluation the support loss is averaged over `eval_samples` draws, 30 in the paper);
  queries use the deterministic value z = mu_phi(h) and the noise-free logits.
- "gate" (an ablation, not a published method): the learned variant without its noise. Every pass,
  support and query, uses z = mu_phi(h) and plain logits, so the generator's convs act as a learned
  deterministic feature gate softplus(mu_phi(h)) (the same parameters, less the head's noise scale).
  Comparing it with "learned" tells what the noise (regularisation) adds beyond the extra capacity.

Every task runs inside `task(model)` (an alias of `mlscratch.inner_loop.task_scope`), which clears
the consistent masks on entry and exit; learners compute their inner-loop loss with
`support_loss(model, loss_fn)`, which switches the support-set noise on. Both work the same inside
`torch.func.vmap(..., randomness="different")` (one mask per task) and in a Python loop over tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import vmap

from ..errors import ConfigError
from ..inner_loop import task_scope

MODES = ("none", "consistent", "learned", "gate")
DEFAULT_RATES = (0.05, 0.10, 0.15, 0.05)  # the seed project's tuned per-block drop rates
PAPER_EVAL_SAMPLES = 30  # noise draws averaged in the support loss at meta-test time (Lee et al. 2020)

task = task_scope  # `with meta_dropout.task(model): ...` -- one task (or one vmapped batch of tasks)


@dataclass(frozen=True)
class Settings:
    """What `install` put into a backbone (kept on it as `backbone.meta_dropout`)."""

    mode: str = "none"
    rates: tuple[float, ...] = DEFAULT_RATES
    scale: bool = True
    mask_query: bool = True
    eval_samples: int = PAPER_EVAL_SAMPLES


# --- variant 1: consistent-mask dropout ------------------------------------------------------------------


class ConsistentDropout(nn.Module):
    """Dropout with one mask per task.  h: [M, C, H, W] -> [M, C, H, W] (mask [C, H, W] shared by the M examples).

    rate: drop probability. scale: multiply kept units by 1 / (1 - rate) (inverted dropout), so the
    expected activation is the same with the mask on (training) and off (evaluation).
    mask_query: also apply the task's mask to the query pass (the support pass always uses it).
    """

    def __init__(self, rate: float, scale: bool = True, mask_query: bool = True) -> None:
        super().__init__()
        self.rate, self.scale, self.mask_query = rate, scale, mask_query
        self.mask: Tensor | None = None  # this task's mask, drawn on first use
        self.on_support = False  # set by `support_pass` during the inner loop

    def reset_task(self) -> None:
        self.mask = None

    def forward(self, h: Tensor) -> Tensor:
        if not self.training or self.rate == 0 or not (self.on_support or self.mask_query):
            return h
        if self.mask is None:  # inside vmap(randomness="different") each task draws its own mask
            keep = (torch.rand(h.shape[1:], device=h.device) >= self.rate).to(h.dtype)
            self.mask = keep / (1 - self.rate) if self.scale else keep
        return h * self.mask

    def extra_repr(self) -> str:
        return f"rate={self.rate}, scale={self.scale}, mask_query={self.mask_query}"


# --- variant 2: learned noise (Lee et al. 2020) ----------------------------------------------------------


def _outer_loop_only(module: nn.Module, std: float = 0.02) -> nn.Module:
    """Small-normal weights and zero bias (the official code's init: the noise starts near mu = 0);
    flagged so `inner_loop.split_parameters` keeps it out of inner-loop adaptation."""
    nn.init.normal_(module.weight, std=std)
    nn.init.zeros_(module.bias)
    module.outer_loop_only = True
    return module


class NoisyConv2d(nn.Conv2d):
    """A conv whose output is multiplied by softplus(z), z ~ N(mu(x), 1) on the support set, z = mu(x) otherwise.

    x: [M, C_in, H, W] -> [M, C_out, H, W]. Same parameter names as the conv it replaces, plus
    `noise.*`: mu is a conv of the same shape (the noise generator, trained by the outer loop only).
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            bias=conv.bias is not None,
            device=conv.weight.device,
            dtype=conv.weight.dtype,
        )
        self.load_state_dict(conv.state_dict())
        self.noise = _outer_loop_only(
            nn.Conv2d(
                conv.in_channels,
                conv.out_channels,
                conv.kernel_size,
                conv.stride,
                conv.padding,
                device=conv.weight.device,
            )
        )
        self.on_support = False  # set by `support_pass`: sample the noise
        self.stochastic = True  # False for the "gate" ablation: never sample

    def forward(self, x: Tensor) -> Tensor:
        mu = self.noise(x)
        z = mu + torch.randn_like(mu) if self.on_support and self.stochastic else mu
        return super().forward(x) * F.softplus(z)


class NoisyLinear(nn.Linear):
    """A linear head with additive Gaussian noise on the support set.  f: [M, D] -> logits [M, n_way].

    logits = head(f) + softplus(noise(f)) * eps, eps ~ N(0, I); one standard deviation per example,
    shared by all classes (`noise` has one output); noise-free when not sampling.
    """

    def __init__(self, head: nn.Linear) -> None:
        super().__init__(
            head.in_features,
            head.out_features,
            bias=head.bias is not None,
            device=head.weight.device,
            dtype=head.weight.dtype,
        )
        self.load_state_dict(head.state_dict())
        self.noise = _outer_loop_only(nn.Linear(head.in_features, 1, device=head.weight.device))
        self.on_support = False

    def forward(self, f: Tensor) -> Tensor:
        logits = super().forward(f)
        if not self.on_support:
            return logits
        return logits + F.softplus(self.noise(f)) * torch.randn_like(logits)


# --- installing into a backbone and running the inner loop --------------------------------------------


def install(
    backbone: nn.Module,
    mode: str = "none",
    rates: Sequence[float] | None = None,
    scale: bool = True,
    mask_query: bool = True,
    eval_samples: int = PAPER_EVAL_SAMPLES,
) -> nn.Module:
    """Add Meta Dropout to a Conv4-shaped backbone in place (and return it).

    mode: "none" | "consistent" | "learned" | "gate". Consistent: `rates` (one per block, default
    DEFAULT_RATES), `scale`, `mask_query` (see ConsistentDropout). Learned: `eval_samples` noise draws
    averaged in the support loss at evaluation (paper: 30; 0 = no noise at evaluation, faster).
    Gate: the learned variant's modules with their noise switched off (the ablation).
    """
    if mode not in MODES:
        raise ConfigError(f"unknown meta_dropout mode {mode!r}; use one of {', '.join(MODES)}")
    if mode == "none":
        return backbone
    if not (hasattr(backbone, "blocks") and hasattr(backbone, "head")):
        raise ConfigError(
            f"meta_dropout={mode!r} needs a Conv4-shaped backbone (.blocks with .conv and .perturb, and .head); "
            f"got {type(backbone).__name__}: use the default Conv4 backbone or meta_dropout='none'"
        )
    blocks = list(backbone.blocks)
    rates = tuple(float(r) for r in (DEFAULT_RATES if rates is None else rates))
    if len(rates) != len(blocks):
        raise ConfigError(
            f"meta-dropout rates {list(rates)} give {len(rates)} values for {len(blocks)} blocks; "
            f"pass one rate per block, e.g. {list(DEFAULT_RATES[: len(blocks)])}"
        )
    if not all(0.0 <= r < 1.0 for r in rates):
        raise ConfigError(f"meta-dropout rates must lie in [0, 1), got {list(rates)}")
    if not isinstance(eval_samples, int) or eval_samples < 0:
        raise ConfigError(f"eval_samples must be an integer >= 0 (paper: 30), got {eval_samples!r}")
    if getattr(backbone, "meta_dropout", Settings()).mode != "none":
        raise ConfigError("this backbone already has meta dropout installed; build a new backbone instead")
    if mode == "consistent":
        for block, rate in zip(blocks, rates, strict=True):
            block.perturb = ConsistentDropout(rate, scale, mask_query)
    elif mode in ("learned", "gate"):
        for block in blocks:
            block.conv = NoisyConv2d(block.conv)
            block.conv.stochastic = mode == "learned"
        if mode == "learned":  # the gate has no logit noise, so no head noise scale to learn
            backbone.head = NoisyLinear(backbone.head)
    backbone.meta_dropout = Settings(mode, rates, scale, mask_query, eval_samples)
    return backbone


def noise_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The learned noise generator's parameters (empty unless mode="learned")."""
    return {name: p for name, p in model.named_parameters() if ".noise." in f".{name}"}


@contextmanager
def support_pass(model: nn.Module) -> Iterator[None]:
    """Inside: forward passes are support-set passes (consistent masks apply, learned noise is sampled).
    Restores the previous state on exit, also after an exception."""
    modules = [m for m in model.modules() if hasattr(m, "on_support")]
    previous = [m.on_support for m in modules]
    try:
        for m in modules:
            m.on_support = True
        yield
    finally:
        for m, value in zip(modules, previous, strict=True):
            m.on_support = value


def support_loss(model: nn.Module, loss_fn: Callable[[], Tensor]) -> Tensor:
    """The inner-loop loss `loss_fn()` with support-set noise on.

    With learned noise in evaluation mode it is the Monte-Carlo mean over `eval_samples` noise draws
    (drawn in one batched call); otherwise one draw (the paper's training setting). A backbone without
    meta dropout just returns loss_fn().
    """
    settings: Settings = getattr(model, "meta_dropout", Settings())
    if settings.mode in ("none", "gate"):  # gate: deterministic, the same on support and queries
        return loss_fn()
    samples = 1
    if settings.mode == "learned" and not model.training:
        samples = settings.eval_samples
    if samples == 0:  # learned noise, evaluation without sampling: deterministic
        return loss_fn()
    with support_pass(model):
        if samples == 1:
            return loss_fn()
        draws = vmap(lambda _: loss_fn(), randomness="different")(torch.arange(samples))
        return draws.mean()


__all__ = [
    "DEFAULT_RATES",
    "MODES",
    "ConsistentDropout",
    "NoisyConv2d",
    "NoisyLinear",
    "Settings",
    "install",
    "noise_parameters",
    "support_loss",
    "support_pass",
    "task",
]
