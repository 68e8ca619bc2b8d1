"""First-order MAML (Finn et al. 2017, section 5.2): MAML with the inner gradients detached.

The meta-gradient becomes the query gradient at the adapted weights, d L_query(theta') / d theta',
with no Hessian term: cheaper in time and memory, and on Omniglot almost as accurate.
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
