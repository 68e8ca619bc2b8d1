"""First-order MAML (Finn et al. 2017, section 5.2): MAML with the inner gradients detached.

The meta-gradient becomes the query gradient at the adapted weights, d L_query(theta') / d theta',
with no Hessian term: cheaper in time and memory. Converged, it is almost as accurate on Omniglot (Nichol et al.
2018: 98.3 vs 98.7, 5-way 1-shot), but it gets there more slowly: with MAML's recipe the zoo measured 93.9% after
10,000 iterations, where MAML had 97.5% after 2,600 (`python -m mlscratch zoo list`).
"""

from __future__ import annotations

from typing import Any

from .maml import MAML


class FOMAML(MAML):
    """MAML with first_order=True (it takes every other MAML setting)."""

    name = "fomaml"
    fixed = {"first_order": True}

    def __init__(self, **hparams: Any) -> None:
        super().__init__(**hparams, **self.fixed)
