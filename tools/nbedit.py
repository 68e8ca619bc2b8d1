"""Edit chapter sources in place: `python tools/nbedit.py NOTEBOOK OLD NEW` replaces text in code and markdown cells.

A maintenance helper for the chapters (their JSON is awkward to edit by hand); it keeps the notebook's formatting
(one-space indent, as Jupyter writes it) and fails when OLD is not found, so a stale edit is never silent.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def replace(path: Path, old: str, new: str, count: int = 1) -> int:
    """Replace `old` by `new` in the cells of a notebook; returns how many cells changed (error if none)."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    changed = 0
    for cell in notebook["cells"]:
        source = "".join(cell["source"])
        if old in source:
            cell["source"] = source.replace(old, new).splitlines(keepends=True)
            changed += 1
            if changed == count:
                break
    if not changed:
        raise SystemExit(f"{path}: text not found: {old[:80]!r}")
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return changed


if __name__ == "__main__":
    replace(Path(sys.argv[1]), sys.argv[2], sys.argv[3])
