"""Errors that name the problem and the fix.

Every user-facing failure raises a subclass of `MlscratchError`; the CLI turns
them into a one-line message and exit code 2 instead of a traceback.
"""

from __future__ import annotations


class MlscratchError(Exception):
    """Base class: a problem the user can fix (message says how)."""


class ConfigError(MlscratchError, ValueError):
    """Impossible or unknown settings (n_way too large, unknown split, ...)."""


class DataError(MlscratchError, RuntimeError):
    """Missing, corrupted or malformed data on disk or from a download."""


def require(condition: bool, message: str) -> None:
    """Raise ConfigError(message) unless condition holds."""
    if not condition:
        raise ConfigError(message)


def require_choice(name: str, value: object, choices: tuple) -> None:
    """ConfigError naming the setting and its choices unless value is one of them."""
    require(value in choices, f"unknown {name}={value!r}; use one of {', '.join(map(str, choices))}")


def require_count(name: str, value: object, minimum: int = 0, why: str = "") -> None:
    """ConfigError unless value is an integer >= minimum (bool is not a count)."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    require(ok, f"{name} must be an integer >= {minimum}{why}, got {value!r}")


class TrainingDiverged(MlscratchError, FloatingPointError):
    """The meta-loss became NaN or infinite (lower the learning rates or clip the gradients)."""
