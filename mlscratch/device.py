"""Pick the device: `"auto"` means CUDA when present, else the CPU."""

from __future__ import annotations

import torch

from .errors import ConfigError


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """ "auto" / None -> cuda if available else cpu; anything else is checked and returned."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ConfigError(f"unknown device {device!r}; use auto, cpu or cuda (cuda:1, ...)") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device} requested but CUDA is not available here; use --device cpu or auto")
    return device


def module_device(module: torch.nn.Module) -> torch.device:
    """Where a model's weights live; the CPU for a model without weights (the pixel nearest neighbour)."""
    parameter = next(module.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")
