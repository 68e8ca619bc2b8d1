"""Matching Networks (Vinyals, Blundell, Lillicrap, Kavukcuoglu & Wierstra, NeurIPS 2016).

A query is classified by attending over the labelled support set: a softmax over cosine similarities
of its embedding with every support embedding, and the prediction is the attention-weighted sum of the
support labels (one-hot), a soft nearest neighbour:

    a(q, i) = softmax_i( cos(f(x_q), g(x_i)) / temperature )       attention           [Q, N*K]
    P(y = c | x_q) = sum_{i : y_i = c} a(q, i)                       class probabilities [Q, N]

`score_task` returns log P as the logits, so the usual cross-entropy is the paper's loss, -log P(y | x_q).
The paper's temperature is 1; a small one makes the attention hard (the nearest support example wins).

Full context embeddings (`fce=True`, the paper's Appendix A) make both embeddings depend on the whole
support set S. With g'(x), f'(x) the CNN embeddings (one shared CNN, as in the paper):
- g: a bidirectional LSTM reads the support set as a sequence, g(x_i) = g'(x_i) + h_fwd_i + h_bwd_i;
- f: an LSTM runs `fce_steps` (K) steps for each query, attending over g(S) at every step:
      r_{k-1} = sum_i softmax_i(h_{k-1} . g(x_i)) g(x_i)                  read-out
      h^_k, c_k = LSTM(f'(x_q), [h_{k-1}, r_{k-1}], c_{k-1}),  h_k = h^_k + f'(x_q)
  and f(x_q) = h_K (h_0 = c_0 = 0). Feeding [h, r] as the LSTM state is the same as feeding
  [f'(x_q), r] as its input with state h, which is how it is written below.

BatchNorm uses the backbone's "support" mode: queries are normalised with the statistics of their task's
support set, and the attention LSTM runs on each query alone, so each query is scored independently of
the other queries (no transduction). The bidirectional LSTM reads the support set in its given order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..models.conv4 import Conv4
from .base import MetaLearner


class FullContextEmbedding(nn.Module):
    """The paper's g (bidirectional LSTM over the support set) and f (attention LSTM for the queries)."""

    def __init__(self, size: int, steps: int) -> None:
        super().__init__()
        self.steps = steps
        self.support_lstm = nn.LSTM(size, size, bidirectional=True, batch_first=True)
        self.query_lstm = nn.LSTMCell(2 * size, size)  # input [f'(x), r], state h

    def support(self, h_support: Tensor) -> Tensor:
        """g: h_support [n, D] -> [n, D], each embedding plus the forward and backward LSTM states at it."""
        states, _ = self.support_lstm(h_support[None])  # [1, n, 2D]: forward and backward halves
        forward, backward = states[0].chunk(2, dim=-1)
        return h_support + forward + backward

    def query(self, h_query: Tensor, g_support: Tensor) -> Tensor:
        """f: h_query [Q, D], g_support [n, D] -> [Q, D], after `steps` attention steps over the support set."""
        h, c = torch.zeros_like(h_query), torch.zeros_like(h_query)
        for _ in range(self.steps):
            readout = (h @ g_support.T).softmax(-1) @ g_support  # [Q, D]
            h, c = self.query_lstm(torch.cat([h_query, readout], -1), (h, c))
            h = h + h_query
        return h


class MatchingNetwork(MetaLearner):
    """Matching Network on a headless Conv4 embedding (D = `width` numbers on 28x28 images).

    temperature: divides the cosine similarities before the softmax (the paper: 1).
    fce: full context embeddings with `fce_steps` attention steps for each query (the paper's K).
    """

    name = "matching"
    supports_vmap = False  # the number of classes is read from each task's labels

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        width: int = 64,
        bn: str = "support",
        temperature: float = 1.0,
        fce: bool = False,
        fce_steps: int = 5,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if not isinstance(temperature, int | float) or not temperature > 0:
            raise ConfigError(f"temperature must be a positive number, got {temperature!r}")
        if not isinstance(fce, bool):
            raise ConfigError(f"fce must be True or False, got {fce!r}")
        if not isinstance(fce_steps, int) or fce_steps < 1:
            raise ConfigError(f"fce_steps must be a positive integer, got {fce_steps!r}")
        self.embedding = Conv4(None, in_channels, image_size, width, bn=bn)
        self.context = FullContextEmbedding(self.embedding.feature_size, fce_steps) if fce else None

    def embed(self, support_x: Tensor, query_x: Tensor) -> tuple[Tensor, Tensor]:
        """support_x [n, C, H, W], query_x [Q, C, H, W] -> g(support) [n, D], f(queries) [Q, D]."""
        g, f = self.embedding(support_x), self.embedding(query_x, support_x)
        if self.context is not None:
            g = self.context.support(g)
            f = self.context.query(f, g)
        return g, f

    def similarity(self, f_query: Tensor, g_support: Tensor) -> Tensor:
        """Cosine similarities over the temperature.  f_query [Q, D], g_support [n, D] -> [Q, n]."""
        return F.cosine_similarity(f_query[:, None], g_support[None], dim=-1) / self.temperature

    def attention(self, f_query: Tensor, g_support: Tensor) -> Tensor:
        """a(q, i): softmax over the support set.  [Q, D], [n, D] -> [Q, n], each row sums to 1."""
        return self.similarity(f_query, g_support).softmax(-1)

    def score_task(self, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        """One task -> log P(class | query) [Q, N], where P = attention @ one-hot support labels."""
        g_support, f_query = self.embed(support_x, query_x)
        log_attention = self.similarity(f_query, g_support).log_softmax(-1)  # [Q, n]
        one_hot = F.one_hot(support_y, int(support_y.max()) + 1).to(log_attention.dtype)  # [n, N]
        # log(attention @ one_hot), summed in log space: a hard attention (tiny temperature) never gives log 0
        return (log_attention[:, :, None] + one_hot.log()[None]).logsumexp(1)
