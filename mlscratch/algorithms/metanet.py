"""Meta Networks (Munkhdalai & Yu, ICML 2017): model-based meta-learning with fast weights.

Two networks of the same shape (conv blocks + two fully connected layers):

- the *base learner* b(W, x) that classifies, with slow weights W;
- the *representation network* u(Q, x) that embeds, with slow weights Q.

Slow weights are learned across tasks by the trainer's Adam. For each task the
meta learner turns loss gradients on the support set (the "meta information")
into *fast weights* in one forward pass, with no gradient steps on the weights:

    g_i  = grad_W loss(b(W, x_i), y_i)                per support example i   (detached: an input)
    W*_i = m(log_sign(g_i))                           example-level fast weights -> memory M = [W*_1 .. W*_n]
    Q*   = d(log_sign(grad_Q loss_emb(x_1..x_n)))     task-level fast weights, d: a coordinate-wise LSTM
    r_i  = u(Q, Q*, x_i)                              memory keys: support representations
    a    = softmax_i cos(u(Q, Q*, x), r_i)            a query reads the memory by attention ...
    W*   = sum_i a_i W*_i                             ... and gets its own fast weights
    y    = b(W, W*, x)                                every layer: relu(slow(x)) + relu(fast(x))

m (a small MLP) and d (an LSTM over the support examples) act on every weight
coordinate separately, so they are tiny and work for any layer shape. Each has
one copy for conv weights and one for fully connected weights, as in the
official Chainer code (tsendeemts/MetaNet). Gradients are preprocessed as in
Andrychowicz et al. (2016) with k = 7; the meta-gradient does not flow through
them (they are inputs, as in the official code).

No BatchNorm (the official model has none): every query is scored from its own
image and the support set only, so queries are independent of each other.

Two additions to the official code, both about the start of training (switch
them off with fast_gain=1.0, centred=False):

- fast_gain: generated fast weights are multiplied by 0.1 x their layer's
  He-init std, so slow and fast paths start on a similar scale (unscaled, the
  logits at init are often 100-1000x larger than the slow path's on Omniglot).
- centred: m and d output their value minus their value for a zero gradient,
  so no gradient means no fast weight. Uncentred, a freshly initialised m or d
  often gives every coordinate the same sign; with inputs >= 0 (images, ReLU
  outputs) relu(conv(x, W*)) is then 0 everywhere: the fast path is dead from
  the start and never gets a gradient (half the seeds of a small model).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from ..errors import ConfigError
from .base import MetaLearner

Weights = dict[str, Tensor]  # parameter name -> tensor (a leading dimension when there is one per example)


def log_and_sign(gradient: Tensor, k: float = 7.0) -> Tensor:
    """Gradient preprocessing of Andrychowicz et al. (2016):  g [...] -> [..., 2].

    (log|g| / k, sign(g))   if |g| >= e^-k
    (-1,         e^k g)     otherwise
    """
    tiny = torch.finfo(gradient.dtype).tiny
    log = (gradient.abs() + tiny).log().div(k).clamp(min=-1.0)
    sign = (gradient * math.exp(k)).clamp(-1.0, 1.0)
    return torch.stack([log, sign], dim=-1)


def augmented(
    layer: Callable[[Tensor, Tensor], Tensor], x: Tensor, slow: Tensor, fast: Tensor | None, relu: bool = True
) -> Tensor:
    """Layer augmentation: act(layer(x, slow)) + act(layer(x, fast)); the slow path alone when fast is None."""
    act = F.relu if relu else (lambda h: h)
    out = act(layer(x, slow))
    return out if fast is None else out + act(layer(x, fast))


class AugmentedConvNet(nn.Module):
    """Conv blocks + 2 FC layers, each able to add fast weights (the official model's shape, no bias, no BN).

    x [M, C, H, W] -> n_blocks x [3x3 conv (width), ReLU, 2x2 max-pool (ceil)] -> FC (hidden), ReLU -> FC (n_out).
    28x28 Omniglot with 5 blocks: 28 -> 14 -> 7 -> 4 -> 2 -> 1, so the conv features are `width` numbers.
    """

    def __init__(
        self,
        n_out: int,
        in_channels: int = 1,
        image_size: int = 28,
        width: int = 64,
        n_blocks: int = 5,
        hidden: int = 64,
    ) -> None:
        super().__init__()
        channels = [in_channels] + [width] * n_blocks
        self.convs = nn.ModuleList(
            nn.Conv2d(a, b, 3, padding=1, bias=False) for a, b in zip(channels, channels[1:], strict=False)
        )
        side = image_size
        for _ in range(n_blocks):
            side = math.ceil(side / 2)
        self.hidden = nn.Linear(width * side * side, hidden, bias=False)
        self.out = nn.Linear(hidden, n_out, bias=False)
        for conv in self.convs:  # He init: no BatchNorm, so keep the signal's scale through the ReLUs
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")

    def embed(self, x: Tensor, fast: Weights | None = None, relu: bool = True) -> Tensor:
        """x: [M, C, H, W] -> hidden layer [M, hidden] (with relu=False: before its ReLU, the representation)."""
        fast = fast or {}
        for i, conv in enumerate(self.convs):
            x = augmented(lambda h, w: F.conv2d(h, w, padding=1), x, conv.weight, fast.get(f"convs.{i}.weight"))
            x = F.max_pool2d(x, 2, ceil_mode=True)
        return augmented(F.linear, x.flatten(1), self.hidden.weight, fast.get("hidden.weight"), relu)

    def forward(self, x: Tensor, fast: Weights | None = None) -> Tensor:
        """x: [M, C, H, W] -> logits [M, n_out]."""
        h = self.embed(x, fast)
        return augmented(F.linear, h, self.out.weight, (fast or {}).get("out.weight"), relu=False)


def chainer_init(linear: nn.Linear) -> nn.Linear:
    """LeCun-normal weights and zero bias (the official Chainer code's defaults): with no constant offset,
    a generated fast weight's sign follows its gradient's sign instead of one shared bias."""
    nn.init.normal_(linear.weight, std=linear.in_features**-0.5)
    nn.init.zeros_(linear.bias)
    return linear


NO_GRADIENT = (-1.0, 0.0)  # log_and_sign(0): the meta information of a zero gradient


class CoordinateMLP(nn.Module):
    """m: one weight coordinate's preprocessed gradient -> its fast weight.  [..., 2] -> [...].

    centred: subtract m(NO_GRADIENT), so a coordinate with zero gradient gets zero fast weight (see MetaNetwork).
    """

    def __init__(self, hidden: int = 20, centred: bool = True) -> None:
        super().__init__()
        self.centred = centred
        layers = [chainer_init(nn.Linear(2, hidden)), chainer_init(nn.Linear(hidden, hidden))]
        self.net = nn.Sequential(layers[0], nn.ReLU(), layers[1], nn.ReLU(), chainer_init(nn.Linear(hidden, 1)))

    def forward(self, meta_info: Tensor) -> Tensor:
        fast = self.net(meta_info).squeeze(-1)
        return fast - self.net(meta_info.new_tensor(NO_GRADIENT)).squeeze(-1) if self.centred else fast


class CoordinateLSTM(nn.Module):
    """d: reads a sequence of T gradients coordinate by coordinate, outputs one fast weight per coordinate.

    [T, *shape, 2] -> [*shape]: the LSTM's batch is the coordinates, its time axis the T support examples.
    centred: subtract the output for T zero gradients (see CoordinateMLP).
    """

    def __init__(self, hidden: int = 20, centred: bool = True) -> None:
        super().__init__()
        self.centred = centred
        self.lstm = nn.LSTM(2, hidden)
        for bias in (self.lstm.bias_ih_l0, self.lstm.bias_hh_l0):  # zero, but remember by default: forget gate 1
            nn.init.zeros_(bias)
        nn.init.ones_(self.lstm.bias_ih_l0[hidden : 2 * hidden].data)
        self.readout = chainer_init(nn.Linear(hidden, 1))

    def forward(self, meta_info: Tensor) -> Tensor:
        steps, shape = meta_info.shape[0], meta_info.shape[1:-1]
        sequences = meta_info.reshape(steps, -1, 2)  # [T, P, 2]
        if self.centred:  # one more coordinate that sees only zero gradients
            sequences = torch.cat([sequences, sequences.new_tensor(NO_GRADIENT).expand(steps, 1, 2)], dim=1)
        states, _ = self.lstm(sequences)  # [T, P(+1), hidden]
        fast = self.readout(states[-1]).squeeze(-1)
        fast = fast[:-1] - fast[-1] if self.centred else fast
        return fast.reshape(shape)


def layer_kind(name: str) -> str:
    """Which generator serves a parameter: "conv" or "fc"."""
    return "conv" if name.startswith("convs.") else "fc"


def per_example_gradients(net: nn.Module, x: Tensor, y: Tensor, names: list[str]) -> Weights:
    """Loss gradient of each example alone, w.r.t. the named parameters (detached: meta information).

    x: [M, C, H, W], y: [M] -> {name: [M, *param.shape]}
    """
    params = {name: p.detach() for name, p in net.named_parameters()}

    def loss(chosen: Weights, xi: Tensor, yi: Tensor) -> Tensor:
        logits = functional_call(net, {**params, **chosen}, (xi[None],))
        return F.cross_entropy(logits, yi[None])

    return vmap(grad(loss), in_dims=(None, 0, 0))({n: params[n] for n in names}, x, y)


class MetaNetwork(MetaLearner):
    """The original Meta Networks, fast-parameterised and layer-augmented throughout (like the official model).

    n_blocks conv blocks of `width` channels + FC `hidden` + FC n_way, for both the base learner and the
    representation network; `generator_hidden` units in the fast-weight MLP m and LSTM d; `k` for log/sign;
    fast_gain and centred: see the module docstring. Train with Adam 1e-3 and clip_grad=10 (the paper's).
    """

    name = "metanet"
    supports_vmap = False  # it vmaps inside each task (per-example gradients, per-query fast weights)

    def __init__(
        self,
        n_way: int = 5,
        in_channels: int = 1,
        image_size: int = 28,
        width: int = 64,
        n_blocks: int = 5,
        hidden: int = 64,
        generator_hidden: int = 20,
        k: float = 7.0,
        fast_gain: float = 0.1,
        centred: bool = True,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        for name, value in (
            ("n_way", n_way),
            ("in_channels", in_channels),
            ("image_size", image_size),
            ("width", width),
            ("n_blocks", n_blocks),
            ("hidden", hidden),
            ("generator_hidden", generator_hidden),
        ):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"metanet: {name} must be a positive integer, got {value!r}")
        if not k > 0:
            raise ConfigError(f"metanet: k (log/sign preprocessing) must be positive, got {k!r}; the paper uses 7")
        if not fast_gain > 0:
            raise ConfigError(f"metanet: fast_gain must be positive, got {fast_gain!r}; the default is 0.1")
        self.k = float(k)
        self.base = AugmentedConvNet(n_way, in_channels, image_size, width, n_blocks, hidden)
        self.representation = AugmentedConvNet(n_way, in_channels, image_size, width, n_blocks, hidden)
        kinds = ("conv", "fc")
        self.example_level = nn.ModuleDict({kind: CoordinateMLP(generator_hidden, centred) for kind in kinds})
        self.task_level = nn.ModuleDict({kind: CoordinateLSTM(generator_hidden, centred) for kind in kinds})
        self.base_names = [name for name, _ in self.base.named_parameters()]
        # The representation is the hidden layer, so its output layer gets no fast weights: it only serves
        # loss_emb, whose gradients are inputs, so no meta-gradient reaches it. It stays a fixed random
        # projection (as in the official code); frozen here to make that explicit.
        self.representation_names = [name for name in self.base_names if name != "out.weight"]
        self.representation.out.weight.requires_grad_(False)
        # Generated fast weights are scaled by fast_gain x their layer's He-init std, sqrt(2 / fan_in): slow and
        # fast paths then start on a similar scale. (An addition to the official code; with fast_gain=1 and no
        # BatchNorm, five layers of mostly same-signed fast weights make the activations explode at init.)
        self.fast_scale = {name: fast_gain * math.sqrt(2 / p[0].numel()) for name, p in self.base.named_parameters()}

    # --- the meta learner's steps, one task at a time ------------------------------------------
    def task_fast_weights(self, support_x: Tensor, support_y: Tensor) -> Weights:
        """Q* = d(log_sign(grad_Q loss_emb)), the LSTM reading the support examples in order.

        support_x: [n, C, H, W] -> {name: [*param.shape]}
        """
        grads = per_example_gradients(self.representation, support_x, support_y, self.representation_names)
        return {
            name: self.task_level[layer_kind(name)](log_and_sign(g, self.k)) * self.fast_scale[name]
            for name, g in grads.items()
        }

    def memory(self, support_x: Tensor, support_y: Tensor) -> Weights:
        """Example-level fast weights W*_i = m(log_sign(grad_W loss_i)).  -> {name: [n, *param.shape]}"""
        grads = per_example_gradients(self.base, support_x, support_y, self.base_names)
        return {
            name: self.example_level[layer_kind(name)](log_and_sign(g, self.k)) * self.fast_scale[name]
            for name, g in grads.items()
        }

    def read_memory(self, query_keys: Tensor, keys: Tensor, memory: Weights) -> Weights:
        """Softmax attention over cosine similarity: query_keys [Q, D], keys [n, D] -> {name: [Q, *shape]}."""
        attention = F.cosine_similarity(query_keys[:, None], keys[None], dim=-1).softmax(dim=-1)  # [Q, n]
        return {name: torch.einsum("qn,n...->q...", attention, m) for name, m in memory.items()}

    def score_task(self, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        """One task: support_x [n, C, H, W], support_y [n], query_x [Q, C, H, W] -> logits [Q, n_way]."""
        task_fast = self.task_fast_weights(support_x, support_y)
        keys = self.representation.embed(support_x, task_fast, relu=False)  # [n, hidden]
        query_keys = self.representation.embed(query_x, task_fast, relu=False)  # [Q, hidden]
        query_fast = self.read_memory(query_keys, keys, self.memory(support_x, support_y))
        # Each query through the base learner with its own fast weights (vmap: a batched conv).
        return vmap(lambda x, fast: self.base(x[None], fast)[0])(query_x, query_fast)
