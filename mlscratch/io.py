"""Files written atomically: a temporary file in the target's folder, then `os.replace`.

A crash or Ctrl-C mid-write never leaves a half-written checkpoint, cache entry, download or notebook
behind: readers see the old file or the new one, nothing in between. Every writer in the package uses
these helpers.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

from .errors import require


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any], suffix: str = ".tmp") -> Path:
    """Call write(binary_file) on a temporary file next to `path`, then move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the permissions open() would
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_writable(path: str | Path, what: str = "file") -> Path:
    """Create path's folder and make sure a file can be written there (the probe file is removed), so that a long
    job fails before it starts, not when it saves; ConfigError naming the path and the reason otherwise."""
    path = Path(path)
    try:
        require(not path.is_dir(), f"cannot write the {what} {str(path)!r}: it is a folder; name a file in it")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        require(False, f"cannot write the {what} {str(path)!r} ({error.strerror or error}); choose a writable path")
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_save(obj: Any, path: str | Path) -> Path:
    """torch.save(obj, path), atomically."""
    return atomic_write(path, lambda handle: torch.save(obj, handle))


def write_text(text: str, path: str | Path) -> Path:
    """Write UTF-8 text, atomically."""
    return atomic_write(path, lambda handle: handle.write(text.encode()))


def write_json(data: Any, path: str | Path) -> Path:
    """Write data as indented JSON, atomically."""
    return write_text(json.dumps(data, indent=2) + "\n", path)
