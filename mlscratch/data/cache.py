"""A small on-disk cache for preprocessed tensors.

Decoding 32,460 PNGs takes seconds; reading them back as one uint8 tensor takes
milliseconds. An entry is stored under a readable name and carries a *key*: the
identity of its sources (path, size, modification time) plus the settings that
produced it. If the key stored in the file differs from the key asked for, the
entry is stale and is rebuilt. Entries are written with `mlscratch.io.atomic_save`
(a temporary file moved into place), so a crash never leaves a half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..io import atomic_save

CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """`$MLSCRATCH_CACHE`, else `~/.cache/mlscratch` (never inside the repository)."""
    env = os.environ.get("MLSCRATCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mlscratch"


def source_identity(paths: list[Path]) -> list[dict[str, Any]]:
    """What makes a source file "the same": absolute path, size and modification time.

    For a folder, the newest modification time and total size of everything inside it.
    """
    identity = []
    for path in paths:
        path = Path(path).resolve()
        if path.is_dir():
            stats = [p.stat() for p in path.rglob("*")] + [path.stat()]
            size, mtime = sum(s.st_size for s in stats), max(s.st_mtime_ns for s in stats)
            identity.append({"path": str(path), "size": size, "mtime_ns": mtime, "files": len(stats)})
        else:
            stat = path.stat()
            identity.append({"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    return identity


def key_digest(key: dict[str, Any]) -> str:
    """A short stable hash of a JSON-able key, for file names."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def cached(
    name: str, key: dict[str, Any], build: Callable[[], dict[str, Any]], cache_dir: Path | str | None = None
) -> tuple[dict[str, Any], bool]:
    """Return (`build()` or its cached copy, whether it came from the cache).

    name:  file stem, e.g. "omniglot-28px-<hash of the source paths>"
    key:   JSON-able dict; a cached entry is used only if its stored key is equal
    build: makes the entry, a dict of tensors, lists, strings and numbers
    """
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = folder / f"{name}.pt"
    full_key = {"cache_version": CACHE_VERSION, **key}
    if path.exists():
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
            if entry.get("key") == full_key:
                return entry["value"], True
        except Exception as error:  # a damaged entry is rebuilt, not fatal
            warnings.warn(f"ignoring unreadable cache file {path} ({error}); rebuilding it", stacklevel=2)
    value = build()
    try:
        atomic_save({"key": full_key, "value": value}, path)
    except OSError as error:  # read-only or full disk: still usable, just slower next time
        warnings.warn(
            f"could not write cache file {path} ({error}); set MLSCRATCH_CACHE to a writable folder", stacklevel=2
        )
    return value, False
