"""Meta-SGD (Li, Zhou, Chen & Li 2017): MAML that also meta-learns a learning rate for every single weight.

    theta_i' = theta - alpha * grad L_support(theta)        alpha: same shape as theta, elementwise product

The outer loop trains alpha together with theta (alpha reaches the query loss through theta_i'). A rate
sets both the size and the sign of each weight's step, so alpha encodes an update direction, not just a
speed. The rates start at MAML's `inner_lr` and live outside the backbone, so `split_parameters` never
adapts them in the inner loop. The paper adapts in one step, in training and at test time.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..inner_loop import UpdateRule, sgd, split_parameters
from .maml import MAML


def rate_key(name: str) -> str:
    """The learning rate's key for a weight ("blocks.0.conv.weight" -> "blocks_0_conv_weight"; keys have no dots)."""
    return name.replace(".", "_")


class MetaSGD(MAML):
    """MAML with learned per-weight inner learning rates `learning_rates` (it takes every MAML setting)."""

    name = "metasgd"

    def __init__(self, **hparams: Any) -> None:
        super().__init__(**hparams)
        adapted, _ = split_parameters(self.backbone)
        self.learning_rates = nn.ParameterDict(
            {rate_key(name): nn.Parameter(torch.full_like(p, self.inner_lr)) for name, p in adapted.items()}
        )

    def update_rule(self) -> UpdateRule:
        """SGD with a tensor of rates per weight tensor: p - alpha_p * g (elementwise)."""
        adapted, _ = split_parameters(self.backbone)
        return sgd({name: self.learning_rates[rate_key(name)] for name in adapted})
