"""Backbones shared by the algorithms."""

from .conv4 import BN_MODES, Conv4, ConvBlock, TaskBatchNorm

__all__ = ["BN_MODES", "Conv4", "ConvBlock", "TaskBatchNorm"]
